-- The backends' configuration cache (src/meter_cache.rs) and what keeps it true: every statement that writes a
-- table the fast path's configuration comes from queues a relcache invalidation of that table, which PostgreSQL
-- delivers to every backend when the transaction commits; each backend then forgets what it kept.
-- accounts invalidates on UPDATE, DELETE and TRUNCATE only: a new user's first call inserts an account, and a user
-- without one is never cached, so an INSERT cannot make an entry stale (one rolled back is forgotten on abort).

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
