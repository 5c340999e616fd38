-- aiquota 0.5.0 -> 0.6.0
-- * The engine's C functions (consume, check, status, reserve, commit, release, _ensure_account) pin their search
--   path themselves, to pg_catalog alone, for the whole call (extension/src/search_path.rs), instead of through a
--   SET search_path clause, which PostgreSQL applies as a configuration change (set, then restore) on every call.
--   They stay SECURITY DEFINER and keep SET plan_cache_mode. Between installing the 0.6.0 library and running
--   this update the engine refuses to run, as after every version change (extension/src/version.rs).

ALTER FUNCTION quota.consume(text, text, bigint, text, jsonb) RESET search_path;
ALTER FUNCTION quota.check(text, text, bigint) RESET search_path;
ALTER FUNCTION quota.status(text) RESET search_path;
ALTER FUNCTION quota.reserve(text, text, bigint, interval, text) RESET search_path;
ALTER FUNCTION quota.commit(uuid, bigint, text, boolean) RESET search_path;
ALTER FUNCTION quota.release(uuid, text) RESET search_path;
ALTER FUNCTION quota._ensure_account(text) RESET search_path;
