//! Admin operations and roles: per-user overrides, resets that keep the ledger consistent, usage views,
//! least-privilege roles and row-level security for end users.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    #[pg_test]
    fn set_limit_overrides_and_null_removes_the_override() {
        at("2026-03-10 12:00:00+00");
        run("SELECT quota.set_limit('a1', 'ai_requests', 'day', 2, 'admin-7')");
        assert!(consume("'a1'").0);
        assert!(consume("'a1'").0);
        assert!(!consume("'a1'").0);
        run("SELECT quota.set_limit('a1', 'ai_requests', 'day', NULL)");
        assert!(consume("'a1'").0);
        assert_eq!(
            one::<i64>("SELECT \"limit\" FROM quota.check('a1')"),
            Some(10)
        );
        assert_eq!(
        one::<String>("SELECT string_agg(actor, ',' ORDER BY id) FROM quota.audit_log WHERE action = 'set_limit'").as_deref(),
        Some("admin-7,postgres")
    );
        expect_sqlstate(
            "PERFORM quota.set_limit('a1', 'ai_requests', 'year', 5)",
            "22023",
        );
        expect_sqlstate(
            "PERFORM quota.set_limit('a1', 'ai_requests', 'day', -5)",
            "22023",
        );
    }

    #[pg_test]
    fn reset_usage_zeroes_current_windows_and_keeps_the_ledger_consistent() {
        run("SELECT quota.create_plan('tight', 'Tight')");
        run("SELECT quota.set_plan_limit('tight', 'ai_requests', 'hour', 3)");
        run("SELECT quota.set_plan_limit('tight', 'ai_requests', 'day', 10)");
        run("SELECT quota.set_plan_limit('tight', 'ai_tokens', 'month', NULL)");
        run("SELECT quota.assign_plan('a2', 'tight')");
        at("2026-03-10 10:00:00+00");
        consume("'a2'");
        at("2026-03-10 11:00:00+00");
        for _ in 0..3 {
            consume("'a2'");
        }
        consume("'a2', 'ai_tokens', 700");
        assert!(!consume("'a2'").0);
        assert_eq!(
            one::<i64>("SELECT quota.reset_usage('a2', 'ai_requests', 'support')"),
            Some(2)
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
        assert_eq!(
            one::<i64>("SELECT used FROM quota.counters WHERE user_id = 'a2' AND period = 'day'"),
            Some(0)
        );
        assert_eq!(
            one::<i64>(
                "SELECT used FROM quota.counters WHERE user_id = 'a2' AND meter = 'ai_tokens'"
            ),
            Some(700)
        );
        let (allowed, used, ..) = consume("'a2'");
        assert!(allowed);
        assert_eq!(used, 1);
        // History is kept: usage today and all time still count what was consumed before the reset.
        assert_eq!(
        one::<i64>("SELECT today FROM quota.user_usage('a2') WHERE meter = 'ai_requests' AND period = 'day'"),
        Some(5)
    );
        assert_eq!(
            one::<i64>("SELECT all_time FROM quota.user_usage('a2') WHERE meter = 'ai_tokens'"),
            Some(700)
        );
        assert_eq!(one::<i64>("SELECT quota.reset_usage('a2')"), Some(3));
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.audit_log WHERE action = 'reset_usage'"),
            Some(2)
        );
    }

    #[pg_test]
    fn quota_api_may_consume_but_not_administer() {
        run("CREATE ROLE aiquota_api_tester NOLOGIN IN ROLE quota_api");
        run("SET LOCAL ROLE aiquota_api_tester");
        assert!(consume("'r1'").0);
        assert_eq!(
            one::<bool>("SELECT allowed FROM quota.check('r1')"),
            Some(true)
        );
        expect_sqlstate("PERFORM quota.assign_plan('r1', 'admin')", "42501");
        expect_sqlstate("PERFORM quota.reset_usage('r1')", "42501");
        expect_sqlstate("PERFORM * FROM quota.counters", "42501");
        run("RESET ROLE");
        run("CREATE ROLE aiquota_admin_tester NOLOGIN IN ROLE quota_admin");
        run("SET LOCAL ROLE aiquota_admin_tester");
        run("SELECT quota.assign_plan('r1', 'pro')");
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.ledger"), Some(1));
        assert!(consume("'r1'").0);
        run("RESET ROLE");
    }

    #[pg_test]
    fn end_users_read_only_their_own_rows() {
        run("CREATE FUNCTION public.test_uid() RETURNS text LANGUAGE sql STABLE AS $$ SELECT current_setting('test.uid', true) $$");
        run("GRANT EXECUTE ON FUNCTION public.test_uid() TO PUBLIC");
        run("SET LOCAL quota.user_id_function = 'public.test_uid'");
        consume("'alice'");
        consume("'alice'");
        consume("'bob'");
        run("SELECT quota.grant('alice', 'ai_requests', 5), quota.grant('bob', 'ai_requests', 7)");
        run("CREATE ROLE aiquota_end_user_tester NOLOGIN IN ROLE quota_reader");
        run("SET LOCAL test.uid = 'alice'");
        run("SET LOCAL ROLE aiquota_end_user_tester");
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.ledger"), Some(2));
        assert_eq!(
            one::<String>("SELECT string_agg(DISTINCT user_id, ',') FROM quota.counters")
                .as_deref(),
            Some("alice")
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.accounts"), Some(1));
        assert_eq!(
            one::<i64>("SELECT sum(requests)::bigint FROM quota.usage_daily"),
            Some(2)
        );
        assert_eq!(
            one::<i64>("SELECT sum(remaining)::bigint FROM quota.grants"),
            Some(5)
        );
        expect_sqlstate("UPDATE quota.grants SET remaining = 1000", "42501");
        expect_sqlstate("PERFORM * FROM quota.payments", "42501");
        expect_sqlstate("PERFORM quota.grant('alice', 'ai_requests', 1000)", "42501");
        expect_sqlstate("PERFORM quota.analytics()", "42501");
        expect_sqlstate("UPDATE quota.counters SET used = 0", "42501");
        expect_sqlstate(
            "INSERT INTO quota.user_limits VALUES ('alice', 'ai_requests', 'day', 1000)",
            "42501",
        );
        expect_sqlstate("PERFORM quota.consume('alice')", "42501");
        run("RESET ROLE");
        run("SET LOCAL quota.user_id_function = ''");
        run("SET LOCAL ROLE aiquota_end_user_tester");
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.ledger"), Some(0));
        run("RESET ROLE");
    }
}
