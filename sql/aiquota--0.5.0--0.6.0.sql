-- aiquota 0.5.0 -> 0.6.0
-- * The engine's C functions (consume, check, status, reserve, commit, release, _ensure_account) lose their SET
--   clauses, which PostgreSQL applies as configuration changes (set, then restore) on every call:
--   - search_path: the library pins it itself, to pg_catalog alone, for the whole call
--     (extension/src/search_path.rs);
--   - plan_cache_mode = force_generic_plan: the engine's statements are small and index-driven, and PostgreSQL's
--     own choice settles on their generic plans (it was forced for the large statement of 0.3.0).
--   They stay SECURITY DEFINER. Between installing the 0.6.0 library and running this update the engine refuses
--   to run, as after every version change (extension/src/version.rs).

ALTER FUNCTION quota.consume(text, text, bigint, text, jsonb) RESET ALL;
ALTER FUNCTION quota.check(text, text, bigint) RESET ALL;
ALTER FUNCTION quota.status(text) RESET ALL;
ALTER FUNCTION quota.reserve(text, text, bigint, interval, text) RESET ALL;
ALTER FUNCTION quota.commit(uuid, bigint, text, boolean) RESET ALL;
ALTER FUNCTION quota.release(uuid, text) RESET ALL;
ALTER FUNCTION quota._ensure_account(text) RESET ALL;
