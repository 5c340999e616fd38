//! Plans: assignment effective at once, expiry falling back to the default plan, the users-table trigger.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    #[pg_test]
    fn assign_plan_lifts_the_limit_for_the_very_next_call() {
        at("2026-03-10 12:00:00+00");
        for _ in 0..10 {
            consume("'p1'");
        }
        assert!(!consume("'p1'").0);
        run("SELECT quota.assign_plan('p1', 'pro')");
        let (allowed, used, ..) = consume("'p1'");
        assert!(allowed);
        assert_eq!(used, 11);
        assert_eq!(
            one::<String>("SELECT plan FROM quota.check('p1')").as_deref(),
            Some("pro")
        );
        assert_eq!(
            one::<i64>("SELECT \"limit\" FROM quota.check('p1')"),
            Some(50)
        );
        assert_eq!(
        one::<String>("SELECT details->>'to' FROM quota.audit_log WHERE action = 'assign_plan' AND target = 'p1'")
            .as_deref(),
        Some("pro")
    );
    }

    #[pg_test]
    fn an_expired_plan_falls_back_to_the_default_plan() {
        at("2026-03-10 12:00:00+00");
        run("SELECT quota.assign_plan('p2', 'pro', '2026-03-17 12:00:00+00')");
        for _ in 0..12 {
            assert!(consume("'p2'").0);
        }
        at("2026-03-17 12:00:00+00");
        assert_eq!(
            one::<String>("SELECT plan FROM quota.check('p2')").as_deref(),
            Some("free")
        );
        assert!(consume("'p2'").0);
        expect_sqlstate(
            "PERFORM quota.assign_plan('p2', 'pro', '2026-03-01 00:00+00')",
            "22023",
        );
    }

    #[pg_test]
    fn new_users_get_the_default_plan_guc() {
        run("SET LOCAL quota.default_plan = 'pro'");
        consume("'p3'");
        assert_eq!(
            one::<String>("SELECT plan FROM quota.accounts WHERE user_id = 'p3'").as_deref(),
            Some("pro")
        );
        run("SET LOCAL quota.default_plan = 'nope'");
        expect_sqlstate("PERFORM quota.consume('p4')", "P0002");
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.accounts WHERE user_id = 'p4'"),
            Some(0)
        );
    }

    #[pg_test]
    fn the_trigger_gives_every_new_user_row_the_default_plan() {
        run("CREATE TABLE public.app_users (uid uuid PRIMARY KEY DEFAULT gen_random_uuid(), email text)");
        run(
            "CREATE TRIGGER give_quota AFTER INSERT ON public.app_users \
         FOR EACH ROW EXECUTE FUNCTION quota.assign_default_plan('uid')",
        );
        run("INSERT INTO public.app_users (email) VALUES ('a@example.com'), ('b@example.com')");
        assert_eq!(
        one::<i64>("SELECT count(*) FROM quota.accounts a JOIN public.app_users u ON a.user_id = u.uid::text \
                    WHERE a.plan = 'free'"),
        Some(2)
    );
        // An existing account (already upgraded) is left alone.
        run("SELECT quota.assign_plan('00000000-0000-0000-0000-000000000001', 'pro')");
        run("INSERT INTO public.app_users (uid) VALUES ('00000000-0000-0000-0000-000000000001')");
        assert_eq!(
        one::<String>("SELECT plan FROM quota.accounts WHERE user_id = '00000000-0000-0000-0000-000000000001'")
            .as_deref(),
        Some("pro")
    );
        run("CREATE TABLE public.bad_users (id int)");
        run(
            "CREATE TRIGGER give_quota AFTER INSERT ON public.bad_users \
         FOR EACH ROW EXECUTE FUNCTION quota.assign_default_plan('user_id')",
        );
        expect_sqlstate("INSERT INTO public.bad_users VALUES (1)", "42703");
    }

    #[pg_test]
    fn the_trigger_never_runs_the_table_owners_code_as_the_extension_owner() {
        // The users table belongs to another role, which adds a column of its own (enum) type with a cast to json that
        // records who runs it. Reading the whole row (to_jsonb(NEW)) ran that cast as the extension's owner.
        run("CREATE ROLE tenant NOLOGIN");
        run("CREATE SCHEMA tenant_s AUTHORIZATION tenant");
        run("CREATE TABLE public.who_ran (runner text)");
        run("GRANT INSERT ON public.who_ran TO tenant");
        run("CREATE TABLE public.tenant_users (id text PRIMARY KEY)");
        run("ALTER TABLE public.tenant_users OWNER TO tenant");
        run(
            "CREATE TRIGGER give_quota AFTER INSERT ON public.tenant_users \
         FOR EACH ROW EXECUTE FUNCTION quota.assign_default_plan('id')",
        );
        run("SET LOCAL ROLE tenant");
        run("CREATE TYPE tenant_s.hostile AS ENUM ('h')");
        run("CREATE FUNCTION tenant_s.hostile_json(tenant_s.hostile) RETURNS json LANGUAGE plpgsql AS \
         $$ BEGIN INSERT INTO public.who_ran VALUES (current_user); RETURN '{}'; END $$");
        run("CREATE CAST (tenant_s.hostile AS json) WITH FUNCTION tenant_s.hostile_json(tenant_s.hostile)");
        run("ALTER TABLE public.tenant_users ADD COLUMN h tenant_s.hostile");
        run("INSERT INTO public.tenant_users VALUES ('t1', 'h')");
        run("RESET ROLE");
        assert_eq!(one::<i64>("SELECT count(*) FROM public.who_ran"), Some(0));
        assert_eq!(
            one::<String>("SELECT plan FROM quota.accounts WHERE user_id = 't1'").as_deref(),
            Some("free")
        );
        // An id column of a type whose text form the table owner could define is refused, and nothing runs.
        run("CREATE TABLE public.typed_users (id tenant_s.hostile)");
        run(
            "CREATE TRIGGER give_quota AFTER INSERT ON public.typed_users \
         FOR EACH ROW EXECUTE FUNCTION quota.assign_default_plan('id')",
        );
        expect_sqlstate("INSERT INTO public.typed_users VALUES ('h')", "42804");
        assert_eq!(one::<i64>("SELECT count(*) FROM public.who_ran"), Some(0));
        // Integer ids are read as their text form.
        run("CREATE TABLE public.int_users (id bigint)");
        run(
            "CREATE TRIGGER give_quota AFTER INSERT ON public.int_users \
         FOR EACH ROW EXECUTE FUNCTION quota.assign_default_plan('id')",
        );
        run("INSERT INTO public.int_users VALUES (42)");
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.accounts WHERE user_id = '42'"),
            Some(1)
        );
    }

    #[pg_test]
    fn plans_and_limits_are_administered_with_functions() {
        run("SELECT quota.create_plan('team', 'Team')");
        run("SELECT quota.set_plan_limit('team', 'ai_requests', 'week', 100)");
        run("SELECT quota.set_plan_limit('team', 'ai_tokens', 'month', NULL)");
        run("SELECT quota.assign_plan('p5', 'team')");
        assert_eq!(
            one::<i64>("SELECT \"limit\" FROM quota.check('p5')"),
            Some(100)
        );
        assert_eq!(
            one::<i64>("SELECT \"limit\" FROM quota.check('p5', 'ai_tokens')"),
            None
        );
        run("SELECT quota.remove_plan_limit('team', 'ai_tokens', 'month')");
        assert_eq!(
            one::<bool>("SELECT allowed FROM quota.check('p5', 'ai_tokens')"),
            Some(false)
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.audit_log WHERE target = 'team'"),
            Some(4)
        );
    }

    #[pg_test]
    fn every_function_is_documented_for_psql() {
        let undocumented = one::<String>(
        "SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p \
         WHERE p.pronamespace = 'quota'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL",
    );
        assert_eq!(undocumented, None, "functions without COMMENT ON");
    }

    #[pg_test]
    fn a_plain_role_can_neither_call_nor_read_anything() {
        run("CREATE ROLE aiquota_plain_tester NOLOGIN");
        run("GRANT USAGE ON SCHEMA quota TO aiquota_plain_tester");
        run("SET LOCAL ROLE aiquota_plain_tester");
        expect_sqlstate("PERFORM quota.consume('x')", "42501");
        expect_sqlstate("PERFORM quota.assign_plan('x', 'admin')", "42501");
        expect_sqlstate("PERFORM * FROM quota.status('x')", "42501");
        expect_sqlstate("PERFORM * FROM quota.ledger", "42501");
        expect_sqlstate("PERFORM * FROM quota.accounts", "42501");
        expect_sqlstate("SET quota.now = '2020-01-01 00:00+00'", "42501");
        expect_sqlstate("SET quota.default_plan = 'admin'", "42501");
        run("RESET ROLE");
    }

    #[pg_test]
    fn a_before_trigger_is_refused_instead_of_dropping_the_row() {
        run("CREATE TABLE public.early_users (id text PRIMARY KEY)");
        run(
            "CREATE TRIGGER give_quota BEFORE INSERT ON public.early_users \
         FOR EACH ROW EXECUTE FUNCTION quota.assign_default_plan('id')",
        );
        expect_sqlstate("INSERT INTO public.early_users VALUES ('e1')", "0A000");
        assert_eq!(
            one::<i64>("SELECT count(*) FROM public.early_users"),
            Some(0)
        );
    }

    #[pg_test]
    fn a_period_the_plan_stops_limiting_is_still_counted_for_when_it_returns() {
        run("SELECT quota.create_plan('hourly', 'Hourly')");
        run("SELECT quota.set_plan_limit('hourly', 'ai_requests', 'hour', 5)");
        run("SELECT quota.set_plan_limit('hourly', 'ai_requests', 'day', 100)");
        run("SELECT quota.create_plan('daily', 'Daily')");
        run("SELECT quota.set_plan_limit('daily', 'ai_requests', 'day', 100)");
        at("2026-03-10 12:00:00+00");
        run("SELECT quota.assign_plan('sw1', 'hourly')");
        for _ in 0..3 {
            assert!(consume("'sw1'").0);
        }
        run("SELECT quota.assign_plan('sw1', 'daily')");
        assert!(consume("'sw1'").0);
        run("SELECT quota.assign_plan('sw1', 'hourly')");
        // 3 + 1 + this one: the hour has seen 5 requests, whatever plan each was made under.
        let (allowed, used, _, _, _, period) = consume("'sw1'");
        assert!(allowed);
        assert_eq!((used, period.as_deref()), (5, Some("hour")));
        assert!(!consume("'sw1'").0);
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
    }

    #[pg_test]
    fn a_limit_added_mid_window_counts_the_usage_already_in_it() {
        at("2026-03-10 12:00:00+00");
        for _ in 0..4 {
            consume("'mid1'");
        }
        run("SELECT quota.set_limit('mid1', 'ai_requests', 'hour', 5)");
        assert_eq!(
            one::<i64>("SELECT used FROM quota.check('mid1') AS d WHERE period = 'hour'"),
            Some(4)
        );
        let (allowed, used, _, _, _, period) = consume("'mid1'");
        assert!(allowed);
        assert_eq!((used, period.as_deref()), (5, Some("hour")));
        assert!(!consume("'mid1'").0);
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
    }

    #[pg_test]
    fn a_timezone_change_recounts_the_new_window_from_the_ledger() {
        at("2026-03-10 12:00:00+00");
        for _ in 0..3 {
            consume("'tz1'");
        }
        // 17:30 in Kolkata: its day began at 18:30 UTC on the 9th, so the three requests are in it.
        run("SELECT quota.set_timezone('tz1', 'Asia/Kolkata')");
        let (_, used, ..) = consume("'tz1'");
        assert_eq!(used, 4);
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
    }
}
