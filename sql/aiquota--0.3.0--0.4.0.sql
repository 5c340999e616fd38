-- aiquota 0.3.0 -> 0.4.0: the fast path reads its configuration from a per-backend cache.
-- * quota._forget_meter_config and the statement triggers forget_meter_config on the configuration tables
--   (accounts, user_limits, plans, plan_limits, plan_bursts, meters): a write to any of them makes every backend
--   forget its cached plan configuration when the writing transaction commits (src/meter_cache.rs).
-- * quota.decision and quota.reservation gain limits (jsonb): every limited window of the meter and its limit,
--   so a caller building RateLimit-Policy needs no second call (quota.status).
-- * quota.counters and quota.ledger check their columns with the domains quota.non_negative and
--   quota.period_name instead of CHECK constraints (PostgreSQL re-reads CHECK constraints in every statement that
--   writes a table; a domain's check is cached and runs only for assigned columns). Same rules, same SQLSTATE
--   (23514); the existing rows are verified, not rewritten.

CREATE FUNCTION quota._forget_meter_config(p_table oid) RETURNS void
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'forget_meter_config_wrapper';
COMMENT ON FUNCTION quota._forget_meter_config(oid) IS
    'Internal: queues a relcache invalidation of p_table, so every backend forgets its cached plan configuration '
    'when the calling transaction commits.';
REVOKE ALL ON FUNCTION quota._forget_meter_config(oid) FROM PUBLIC;

CREATE FUNCTION quota._meter_config_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM quota._forget_meter_config(TG_RELID);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION quota._meter_config_changed() IS
    'Internal: statement trigger on the configuration tables; see quota._forget_meter_config.';
REVOKE ALL ON FUNCTION quota._meter_config_changed() FROM PUBLIC;

CREATE TRIGGER forget_meter_config AFTER UPDATE OR DELETE OR TRUNCATE ON quota.accounts
    FOR EACH STATEMENT EXECUTE FUNCTION quota._meter_config_changed();
CREATE TRIGGER forget_meter_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON quota.user_limits
    FOR EACH STATEMENT EXECUTE FUNCTION quota._meter_config_changed();
CREATE TRIGGER forget_meter_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON quota.plans
    FOR EACH STATEMENT EXECUTE FUNCTION quota._meter_config_changed();
CREATE TRIGGER forget_meter_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON quota.plan_limits
    FOR EACH STATEMENT EXECUTE FUNCTION quota._meter_config_changed();
CREATE TRIGGER forget_meter_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON quota.plan_bursts
    FOR EACH STATEMENT EXECUTE FUNCTION quota._meter_config_changed();
CREATE TRIGGER forget_meter_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON quota.meters
    FOR EACH STATEMENT EXECUTE FUNCTION quota._meter_config_changed();

-- The domains get their checks only after the columns use them: a column changed to a domain that already has
-- a check is rewritten, while adding the check to the domain afterwards only verifies the rows (a scan).
CREATE DOMAIN quota.non_negative AS bigint;
COMMENT ON DOMAIN quota.non_negative IS 'A count or amount that cannot go below zero (counters, ledger credits).';
CREATE DOMAIN quota.period_name AS text;
COMMENT ON DOMAIN quota.period_name IS 'A calendar window: hour, day, week (ISO, from Monday) or month.';

ALTER TABLE quota.counters
    DROP CONSTRAINT counters_period_check,
    DROP CONSTRAINT counters_used_check,
    DROP CONSTRAINT counters_denied_check,
    DROP CONSTRAINT counters_held_check,
    DROP CONSTRAINT counters_carry_check,
    ALTER COLUMN period TYPE quota.period_name,
    ALTER COLUMN used TYPE quota.non_negative,
    ALTER COLUMN denied TYPE quota.non_negative,
    ALTER COLUMN held TYPE quota.non_negative,
    ALTER COLUMN carry TYPE quota.non_negative;
ALTER TABLE quota.ledger
    DROP CONSTRAINT ledger_reset_period_check,
    DROP CONSTRAINT ledger_credits_check,
    ALTER COLUMN reset_period TYPE quota.period_name,
    ALTER COLUMN credits TYPE quota.non_negative;

ALTER DOMAIN quota.non_negative ADD CONSTRAINT non_negative_check CHECK (VALUE >= 0);
ALTER DOMAIN quota.period_name ADD CONSTRAINT period_name_check CHECK (VALUE IN ('hour', 'day', 'week', 'month'));

ALTER TYPE quota.decision ADD ATTRIBUTE limits jsonb;
ALTER TYPE quota.reservation ADD ATTRIBUTE limits jsonb;
COMMENT ON TYPE quota.decision IS
    'A quota decision. used/limit/remaining/resets_at/period describe the binding window (least remaining; on '
    'denial, the window that denied). "limit" NULL means unlimited; remaining is net of held (amounts held by '
    'open reservations). replayed is true when an idempotency key returned an earlier decision. limits maps every '
    'limited window of the meter to its limit (carried allowance included), e.g. {"day": 10, "month": 300}.';
