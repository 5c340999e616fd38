-- aiquota 0.3.0 -> 0.4.0: the fast path reads its configuration from a per-backend cache.
-- * quota._forget_meter_config and the statement triggers forget_meter_config on the configuration tables
--   (accounts, user_limits, plans, plan_limits, plan_bursts, meters): a write to any of them makes every backend
--   forget its cached plan configuration when the writing transaction commits (src/meter_cache.rs).
-- No table changes.

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
