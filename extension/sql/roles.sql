-- Least-privilege roles and row-level security.
--
-- quota_api    may execute the user-facing functions (consume, check, status, reserve, commit, release) and read a
--              user's credits (quota.credits), nothing else: it is what app backends and the API's user routes use.
-- quota_payments may start orders and record or revoke verified payments (create_order, attach_order, find_order,
--              record_payment, revoke_payment): only the payment verifier (the API's payment routes) holds it,
--              since recording a payment gives a user a paid plan.
-- quota_admin  may execute every admin function and read every table; it is also a quota_api.
-- quota_reader end users (e.g. Supabase's `authenticated`, granted this role): with RLS on and FORCE'd they read
--              only their own rows, identified by the function named in quota.user_id_function, and change
--              nothing.
-- Roles are cluster-wide, so they are created only when missing (the extension may live in several databases).
-- The engine's SECURITY DEFINER functions run as the extension's owner, a superuser, which RLS never restricts.

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'quota_api') THEN
        CREATE ROLE quota_api NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'quota_admin') THEN
        CREATE ROLE quota_admin NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'quota_payments') THEN
        CREATE ROLE quota_payments NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'quota_reader') THEN
        CREATE ROLE quota_reader NOLOGIN;
    END IF;
END
$roles$;

GRANT USAGE ON SCHEMA quota TO quota_api, quota_admin, quota_payments, quota_reader;
GRANT quota_api TO quota_admin;

GRANT EXECUTE ON FUNCTION quota.consume(text, text, bigint, text, jsonb) TO quota_api;
GRANT EXECUTE ON FUNCTION quota.check(text, text, bigint) TO quota_api;
GRANT EXECUTE ON FUNCTION quota.status(text) TO quota_api;
GRANT EXECUTE ON FUNCTION quota.reserve(text, text, bigint, interval, text) TO quota_api;
GRANT EXECUTE ON FUNCTION quota.commit(uuid, bigint, text, boolean) TO quota_api;
GRANT EXECUTE ON FUNCTION quota.release(uuid, text) TO quota_api;
GRANT EXECUTE ON FUNCTION quota.create_order(text, text, text) TO quota_payments;
GRANT EXECUTE ON FUNCTION quota.attach_order(text, text) TO quota_payments;
GRANT EXECUTE ON FUNCTION quota.find_order(text, text, text) TO quota_payments;
GRANT EXECUTE ON FUNCTION quota.record_payment(text, text, text, text, bigint, text, jsonb, text) TO quota_payments;
GRANT EXECUTE ON FUNCTION quota.revoke_payment(text, text, text, text) TO quota_payments;

GRANT EXECUTE ON FUNCTION quota.verify() TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.purge_idempotency_keys(interval) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.purge_reservations(interval) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.define_meter(text, text, text, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.create_plan(text, text, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.set_plan_limit(text, text, text, bigint, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.remove_plan_limit(text, text, text, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.assign_plan(text, text, timestamptz, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.set_timezone(text, text, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.set_limit(text, text, text, bigint, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.reset_usage(text, text, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.user_usage(text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.set_plan_rollover(text, text, text, bigint, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.set_plan_burst(text, text, bigint, interval, bigint, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.define_product(text, text, interval, bigint, text, boolean, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.grant(text, text, bigint, timestamptz, text, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.credits(text) TO quota_api, quota_admin;
GRANT EXECUTE ON FUNCTION quota.analytics(date, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.top_users(int, text, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.usage_history(text, int, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.predict_exhaustion(text, text) TO quota_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA quota TO quota_admin;

-- The id of the end user this session acts for, from the function quota.user_id_function names. The name is
-- cast to regproc first, so only an existing function can be called and no other SQL can be smuggled in.
CREATE FUNCTION quota.current_user_id() RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_fn text := pg_catalog.current_setting('quota.user_id_function', true);
    v_id text;
BEGIN
    IF v_fn IS NULL OR pg_catalog.btrim(v_fn) = '' THEN
        RETURN NULL;
    END IF;
    EXECUTE pg_catalog.format('SELECT %s()::text', v_fn::regproc) INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION quota.current_user_id() IS
    'The end user''s id for row-level security: the result of the function named by quota.user_id_function '
    '(e.g. auth.uid), or NULL when none is configured (end-user roles then see no rows).';
GRANT EXECUTE ON FUNCTION quota.current_user_id() TO quota_reader;

-- End users read their own account, limits, counters and ledger; nothing else, and they write nothing.
DO $rls$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['accounts', 'user_limits', 'counters', 'ledger', 'grants', 'daily_rollup', 'bursts'] LOOP
        EXECUTE pg_catalog.format('ALTER TABLE quota.%I ENABLE ROW LEVEL SECURITY', v_table);
        EXECUTE pg_catalog.format('ALTER TABLE quota.%I FORCE ROW LEVEL SECURITY', v_table);
        EXECUTE pg_catalog.format(
            'CREATE POLICY own_rows ON quota.%I FOR SELECT TO quota_reader '
            'USING (user_id = (SELECT quota.current_user_id()))', v_table);
        EXECUTE pg_catalog.format(
            'CREATE POLICY admin_reads_all ON quota.%I FOR SELECT TO quota_admin USING (true)', v_table);
        EXECUTE pg_catalog.format('GRANT SELECT ON quota.%I TO quota_reader', v_table);
    END LOOP;
END
$rls$;
GRANT SELECT ON quota.meters, quota.plans, quota.plan_limits TO quota_reader;
-- A security_invoker view: what a reader sees of it is what the policies above let it see of counters and
-- daily_rollup.
GRANT SELECT ON quota.usage_daily TO quota_reader;
