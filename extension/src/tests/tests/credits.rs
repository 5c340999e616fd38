//! Credits: spent only after the plan's allowance, earliest expiry first, all or nothing with the limits.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    fn credits_left(user: &str) -> Option<i64> {
        one::<i64>(&format!(
        "SELECT COALESCE(sum(remaining), 0)::bigint FROM quota.credits('{user}') WHERE meter = 'ai_requests'"
    ))
    }

    fn credits_used(args: &str) -> (bool, i64) {
        let sql = format!("SELECT allowed, credits_used FROM quota.consume({args})");
        Spi::connect(|c| {
            let row = c
                .select(&sql, None, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .first();
            (
                row.get::<bool>(1).unwrap().unwrap(),
                row.get::<i64>(2).unwrap().unwrap(),
            )
        })
    }

    #[pg_test]
    fn credits_are_spent_once_the_allowance_is_used_up() {
        at("2026-03-10 12:00:00+00");
        run("SELECT quota.grant('c1', 'ai_requests', 5, p_actor => 'ops@example.com')");
        for _ in 0..10 {
            assert_eq!(credits_used("'c1'"), (true, 0));
        }
        assert_eq!(credits_used("'c1'"), (true, 1));
        assert_eq!(credits_left("c1"), Some(4));
        // Asking beyond what is left is refused whole, and nothing is spent.
        assert_eq!(credits_used("'c1', 'ai_requests', 5"), (false, 0));
        assert_eq!(credits_left("c1"), Some(4));
        assert_eq!(credits_used("'c1', 'ai_requests', 4"), (true, 4));
        assert_eq!(credits_used("'c1'"), (false, 0));
        assert_eq!(
            one::<i64>("SELECT sum(credits)::bigint FROM quota.ledger WHERE user_id = 'c1'"),
            Some(5)
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
        assert_eq!(
            one::<String>(
                "SELECT actor FROM quota.audit_log WHERE action = 'grant' AND target = 'c1'"
            )
            .as_deref(),
            Some("ops@example.com")
        );
    }

    #[pg_test]
    fn the_earliest_expiry_is_spent_first_and_expired_credits_do_not_count() {
        at("2026-03-10 12:00:00+00");
        run("SELECT quota.grant('c2', 'ai_requests', 3, '2026-03-12 00:00+00', 'promo-late')");
        run("SELECT quota.grant('c2', 'ai_requests', 3, NULL, 'top-up')");
        run("SELECT quota.grant('c2', 'ai_requests', 3, '2026-03-11 00:00+00', 'promo-early')");
        run("SELECT quota.consume('c2', 'ai_requests', 10)");
        assert_eq!(credits_used("'c2', 'ai_requests', 4"), (true, 4));
        assert_eq!(
            one::<String>(
                "SELECT string_agg(source || '=' || remaining, ',' ORDER BY id) FROM quota.grants"
            )
            .as_deref(),
            Some("promo-late=2,top-up=3,promo-early=0")
        );
        // A day later the early promotion has expired (it was spent anyway) and tomorrow's allowance is fresh.
        at("2026-03-12 06:00:00+00");
        assert_eq!(credits_left("c2"), Some(3));
        run("SELECT quota.consume('c2', 'ai_requests', 10)");
        assert_eq!(credits_used("'c2', 'ai_requests', 4"), (false, 0));
        assert_eq!(credits_used("'c2', 'ai_requests', 3"), (true, 3));
    }

    #[pg_test]
    fn credits_cover_the_largest_overflow_across_every_window() {
        run("SELECT quota.create_plan('tight', 'Tight')");
        run("SELECT quota.set_plan_limit('tight', 'ai_requests', 'hour', 3)");
        run("SELECT quota.set_plan_limit('tight', 'ai_requests', 'day', 5)");
        run("SELECT quota.assign_plan('c3', 'tight')");
        at("2026-03-10 12:00:00+00");
        run("SELECT quota.grant('c3', 'ai_requests', 10)");
        run("SELECT quota.consume('c3', 'ai_requests', 3)");
        // Hour past its limit by 1, day still has room: 1 credit.
        assert_eq!(credits_used("'c3'"), (true, 1));
        assert_eq!(credits_used("'c3'"), (true, 1));
        // Now the day is full too: the whole request comes from credits, once (not once per window).
        assert_eq!(credits_used("'c3', 'ai_requests', 2"), (true, 2));
        assert_eq!(credits_left("c3"), Some(6));
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
    }

    #[pg_test]
    fn check_counts_credits_without_spending_them() {
        at("2026-03-10 12:00:00+00");
        run("SELECT quota.consume('c4', 'ai_requests', 10)");
        assert_eq!(
            one::<bool>("SELECT allowed FROM quota.check('c4')"),
            Some(false)
        );
        run("SELECT quota.grant('c4', 'ai_requests', 2)");
        assert_eq!(
            one::<i64>("SELECT credits_used FROM quota.check('c4', 'ai_requests', 2)"),
            Some(2)
        );
        assert_eq!(
            one::<bool>("SELECT allowed FROM quota.check('c4', 'ai_requests', 3)"),
            Some(false)
        );
        assert_eq!(credits_left("c4"), Some(2));
    }

    #[pg_test]
    fn grant_rejects_bad_arguments_and_changes_nothing() {
        at("2026-03-10 12:00:00+00");
        expect_sqlstate("PERFORM quota.grant('c5', 'ai_requests', NULL)", "22004");
        expect_sqlstate("PERFORM quota.grant(NULL, 'ai_requests', 1)", "22004");
        expect_sqlstate("PERFORM quota.grant('c5', 'ai_requests', 0)", "22023");
        expect_sqlstate("PERFORM quota.grant('c5', 'nope', 1)", "22023");
        expect_sqlstate(
            "PERFORM quota.grant('c5', 'ai_requests', 1, '2026-03-10 11:00+00')",
            "22023",
        );
        expect_sqlstate(
            "PERFORM quota.grant('c5', 'ai_requests', 1, NULL, '')",
            "22023",
        );
        expect_sqlstate("PERFORM quota.grant('', 'ai_requests', 1)", "22023");
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.grants"), Some(0));
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.accounts WHERE user_id = 'c5'"),
            Some(0)
        );
    }

    #[pg_test]
    fn a_request_above_the_limit_is_never_refused_for_good_while_credits_could_cover_it() {
        at("2026-03-10 12:00:00+00");
        run("SELECT quota.consume('c6', 'ai_requests', 10)");
        run("SELECT quota.grant('c6', 'ai_requests', 15)");
        // Now 25 would need 25 credits; tomorrow only 15: come back at midnight.
        let (allowed, _, _, reason, retry, _) = consume("'c6', 'ai_requests', 25");
        assert!(!allowed);
        assert_eq!(retry, Some(12 * 3600));
        assert!(!reason.unwrap().contains("never"));
        // 30 needs 20 even in a fresh window: never, on these credits.
        let (allowed, _, _, reason, retry, _) = consume("'c6', 'ai_requests', 30");
        assert!(!allowed);
        assert_eq!(retry, None);
        assert!(reason.unwrap().contains("can never be allowed"));
        at("2026-03-11 00:00:00+00");
        assert_eq!(credits_used("'c6', 'ai_requests', 25"), (true, 15));
    }

    #[pg_test]
    fn credits_never_lift_a_burst_limit() {
        run("SELECT quota.set_plan_burst('free', 'ai_requests', 1, '1 minute', 2)");
        at("2026-03-10 12:00:00+00");
        run("SELECT quota.grant('c7', 'ai_requests', 100)");
        run("SELECT quota.consume('c7', 'ai_requests', 2)");
        assert_eq!(
            one::<String>("SELECT period FROM quota.check('c7') WHERE NOT allowed").as_deref(),
            Some("burst")
        );
        assert_eq!(credits_used("'c7'"), (false, 0));
        assert_eq!(credits_left("c7"), Some(100));
    }
}
