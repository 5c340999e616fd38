//! Bad input: a specific SQLSTATE, and nothing changed.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    #[pg_test]
    fn consume_rejects_bad_arguments_with_specific_sqlstates() {
        expect_sqlstate("PERFORM quota.consume(NULL)", "22004");
        expect_sqlstate("PERFORM quota.consume('')", "22023");
        expect_sqlstate("PERFORM quota.consume('   ')", "22023");
        expect_sqlstate(
            &format!("PERFORM quota.consume('{}')", "x".repeat(256)),
            "22023",
        );
        expect_sqlstate("PERFORM quota.consume('b1', NULL)", "22004");
        expect_sqlstate("PERFORM quota.consume('b1', 'no_such_meter')", "22023");
        expect_sqlstate("PERFORM quota.consume('b1', 'ai_requests', 0)", "22023");
        expect_sqlstate("PERFORM quota.consume('b1', 'ai_requests', -3)", "22023");
        expect_sqlstate("PERFORM quota.consume('b1', 'ai_requests', NULL)", "22004");
        expect_sqlstate(
            "PERFORM quota.consume('b1', 'ai_requests', 1000000000001)",
            "22023",
        );
        expect_sqlstate("PERFORM quota.consume('b1', 'ai_requests', 1, '')", "22023");
        expect_sqlstate(
            "PERFORM quota.consume('b1', 'ai_requests', 1, NULL, '[1, 2]')",
            "22023",
        );
        expect_sqlstate("PERFORM quota.check(NULL)", "22004");
        expect_sqlstate("PERFORM quota.status('')", "22023");
        // The undeclared-meter call got as far as creating the account; its error rolled that back too.
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.accounts"), Some(0));
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.ledger"), Some(0));
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.counters"), Some(0));
    }

    #[pg_test]
    fn admin_functions_reject_bad_arguments() {
        expect_sqlstate("PERFORM quota.assign_plan('b2', 'no_such_plan')", "P0002");
        expect_sqlstate("PERFORM quota.assign_plan('b2', NULL)", "22004");
        expect_sqlstate("PERFORM quota.assign_plan(NULL, 'pro')", "22004");
        expect_sqlstate("PERFORM quota.set_timezone('b2', 'Mars/Olympus')", "22023");
        expect_sqlstate("PERFORM quota.set_timezone('b2', 'EST5EDT+junk')", "22023");
        expect_sqlstate("PERFORM quota.create_plan('Bad Key', 'x')", "22023");
        expect_sqlstate("PERFORM quota.create_plan('ok', '')", "22023");
        expect_sqlstate(
            "PERFORM quota.set_plan_limit('free', 'ai_requests', 'fortnight', 1)",
            "22023",
        );
        expect_sqlstate(
            "PERFORM quota.set_plan_limit('free', 'ai_requests', 'day', -1)",
            "22023",
        );
        expect_sqlstate(
            "PERFORM quota.set_plan_limit('nope', 'ai_requests', 'day', 1)",
            "P0002",
        );
        expect_sqlstate(
            "PERFORM quota.set_plan_limit('free', 'nope', 'day', 1)",
            "22023",
        );
        expect_sqlstate("PERFORM quota.purge_idempotency_keys('1 hour')", "22023");
        expect_sqlstate(
            "SET LOCAL quota.now = 'not a time'; PERFORM quota.consume('b3')",
            "22023",
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.accounts"), Some(0));
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.audit_log"), Some(0));
    }

    #[pg_test]
    fn the_ledger_is_append_only() {
        run("SELECT quota.consume('b4')");
        expect_sqlstate("UPDATE quota.ledger SET amount = 0", "55000");
        expect_sqlstate("DELETE FROM quota.ledger", "55000");
        expect_sqlstate("TRUNCATE quota.ledger", "55000");
        assert_eq!(
            one::<i64>("SELECT sum(amount)::bigint FROM quota.ledger"),
            Some(1)
        );
    }

    #[pg_test]
    fn purging_idempotency_keys_checks_its_argument_and_uses_the_quota_clock() {
        expect_sqlstate("PERFORM quota.purge_idempotency_keys(NULL)", "22004");
        expect_sqlstate("PERFORM quota.purge_idempotency_keys('1 hour')", "22023");
        at("2026-03-10 12:00:00+00");
        consume("'ik1', 'ai_requests', 1, 'k-1'");
        at("2026-03-12 12:00:00+00");
        consume("'ik1', 'ai_requests', 1, 'k-2'");
        assert_eq!(
            one::<i64>("SELECT quota.purge_idempotency_keys('24 hours')"),
            Some(1)
        );
        assert_eq!(
            one::<String>("SELECT string_agg(key, ',') FROM quota.idempotency_keys").as_deref(),
            Some("k-2")
        );
    }

    #[pg_test]
    fn metadata_is_bounded_by_a_setting() {
        let big = format!("{{\"note\": \"{}\"}}", "x".repeat(3000));
        // 2 KiB by default: every allowed call stores its metadata, so it must not become free storage.
        expect_sqlstate(
            &format!("PERFORM quota.consume('md1', 'ai_requests', 1, NULL, '{big}')"),
            "22023",
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.ledger WHERE user_id = 'md1'"),
            Some(0)
        );
        run("SET LOCAL quota.max_metadata_bytes = 4096");
        assert!(consume(&format!("'md1', 'ai_requests', 1, NULL, '{big}'")).0);
    }
}
