//! Analytics over the daily rollup: the numbers match the ledger, and no analytics function reads the ledger.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    fn analytics_setup() {
        at("2026-03-09 10:00:00+00");
        run("SELECT quota.consume('an1', 'ai_requests', 4)");
        run("SELECT quota.consume('an2', 'ai_requests', 1)");
        at("2026-03-10 09:00:00+00");
        run("SELECT quota.consume('an1', 'ai_requests', 10)");
        run("SELECT quota.consume('an1')"); // denied
        run("SELECT quota.consume('an2', 'ai_requests', 2)");
        run("SELECT quota.consume('an3')");
        run("SELECT quota.consume('an3', 'ai_tokens', 500)");
        at("2026-03-10 12:00:00+00");
    }

    #[pg_test]
    fn the_rollup_matches_the_ledger() {
        analytics_setup();
        assert_eq!(
        one::<i64>(
            "SELECT count(*) FROM (SELECT user_id, (created_at AT TIME ZONE 'UTC')::date AS day, meter, \
             sum(amount) AS amount, count(*) AS requests FROM quota.ledger GROUP BY 1, 2, 3) l \
             FULL JOIN quota.usage_daily u USING (user_id, day, meter) \
             WHERE l.amount IS DISTINCT FROM u.amount OR l.requests IS DISTINCT FROM u.requests"
        ),
        Some(0)
    );
        assert_eq!(
            one::<i64>("SELECT sum(denials)::bigint FROM quota.usage_daily"),
            Some(1)
        );
    }

    #[pg_test]
    fn analytics_reports_the_day() {
        analytics_setup();
        let sql =
            "SELECT total_users, active_users, users_at_limit, usage, requests, usage_all_time, \
               avg_usage_per_active_user::text, denials FROM quota.analytics()";
        Spi::connect(|c| {
            let row = c.select(sql, None, &[]).unwrap().first();
            assert_eq!(row.get::<i64>(1).unwrap(), Some(3));
            assert_eq!(row.get::<i64>(2).unwrap(), Some(3));
            assert_eq!(row.get::<i64>(3).unwrap(), Some(1));
            assert_eq!(row.get::<i64>(4).unwrap(), Some(13));
            assert_eq!(row.get::<i64>(5).unwrap(), Some(3));
            assert_eq!(row.get::<i64>(6).unwrap(), Some(18));
            assert_eq!(row.get::<String>(7).unwrap().as_deref(), Some("4.33"));
            assert_eq!(row.get::<i64>(8).unwrap(), Some(1));
        });
        assert_eq!(
            one::<i64>("SELECT usage FROM quota.analytics('2026-03-09')"),
            Some(5)
        );
        // Yesterday may still receive late commits, so nothing is cached yet; two days on, it is, and agrees.
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.daily_totals"),
            Some(0)
        );
        at("2026-03-11 12:00:00+00");
        assert_eq!(
            one::<i64>("SELECT usage_all_time FROM quota.analytics()"),
            Some(18)
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.daily_totals"),
            Some(1)
        );
        at("2026-03-10 12:00:00+00");
        assert_eq!(
            one::<i64>("SELECT usage_all_time FROM quota.analytics()"),
            Some(18)
        );
        assert_eq!(
            one::<i64>("SELECT requests_all_time FROM quota.analytics()"),
            Some(5)
        );
        assert_eq!(
            one::<i64>("SELECT usage FROM quota.analytics(p_meter => 'ai_tokens')"),
            Some(500)
        );
    }

    #[pg_test]
    fn top_users_usage_history_and_predictions() {
        analytics_setup();
        assert_eq!(
        one::<String>("SELECT string_agg(user_id || ':' || usage, ',' ORDER BY rank) FROM quota.top_users(2)").as_deref(),
        Some("an1:10,an2:2")
    );
        assert_eq!(
        one::<String>("SELECT string_agg(user_id || ':' || usage, ',' ORDER BY rank) FROM quota.top_users(10, 'week')")
            .as_deref(),
        Some("an1:14,an2:3,an3:1")
    );
        assert_eq!(
        one::<String>("SELECT string_agg(usage::text, ',' ORDER BY day) FROM quota.usage_history('an1', 3)").as_deref(),
        Some("0,4,10")
    );
        // an2 used 2 of 10 in the 12 hours since midnight: at that pace the day runs out in 48 more hours, after
        // the window resets, so no exhaustion is predicted; an1 is already out.
        assert_eq!(
            one::<f64>(
                "SELECT rate_per_hour FROM quota.predict_exhaustion('an2') WHERE period = 'day'"
            ),
            Some(2.0 / 12.0)
        );
        assert_eq!(
            one::<bool>("SELECT exhausts_at IS NULL FROM quota.predict_exhaustion('an2')"),
            Some(true)
        );
        assert_eq!(
            one::<String>(
                "SELECT exhausts_at::text FROM quota.predict_exhaustion('an1'), \
                       (SELECT set_config('timezone', 'UTC', true)) s"
            )
            .as_deref(),
            Some("2026-03-10 12:00:00+00")
        );
        // With a day limit of 3, an2's pace (one per 6 hours) uses up the last one at 18:00.
        run("SELECT quota.set_limit('an2', 'ai_requests', 'day', 3)");
        assert_eq!(
            one::<String>(
                "SELECT exhausts_at::text FROM quota.predict_exhaustion('an2'), \
                       (SELECT set_config('timezone', 'UTC', true)) s"
            )
            .as_deref(),
            Some("2026-03-10 18:00:00+00")
        );
    }

    #[pg_test]
    fn analytics_never_read_the_ledger() {
        analytics_setup();
        let before = one::<i64>(
            "SELECT COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0) FROM pg_stat_xact_user_tables \
                             WHERE relid = 'quota.ledger'::regclass",
        );
        run("SELECT * FROM quota.analytics()");
        run("SELECT * FROM quota.analytics('2026-03-09')");
        run("SELECT * FROM quota.top_users(10, 'all_time')");
        run("SELECT * FROM quota.usage_history('an1', 30)");
        let after = one::<i64>(
            "SELECT COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0) FROM pg_stat_xact_user_tables \
                            WHERE relid = 'quota.ledger'::regclass",
        );
        assert_eq!(before, after);
    }

    #[pg_test]
    fn analytics_work_read_only_and_a_denial_is_not_a_use() {
        analytics_setup();
        run("SELECT quota.consume('an4', 'ai_requests', 11)");
        assert_eq!(
            one::<bool>("SELECT last_at IS NULL FROM quota.usage_daily WHERE user_id = 'an4'"),
            Some(true)
        );
        at("2026-03-12 12:00:00+00");
        run("SET LOCAL transaction_read_only = on");
        assert_eq!(
            one::<i64>("SELECT usage_all_time FROM quota.analytics()"),
            Some(18)
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.daily_totals"),
            Some(0)
        );
    }

    #[pg_test]
    fn analytics_reject_bad_arguments() {
        expect_sqlstate("PERFORM quota.top_users(0)", "22023");
        expect_sqlstate("PERFORM quota.top_users(10, 'decade')", "22023");
        expect_sqlstate("PERFORM quota.top_users(NULL)", "22004");
        expect_sqlstate("PERFORM quota.usage_history('x', 0)", "22023");
        expect_sqlstate("PERFORM quota.usage_history('x', NULL)", "22004");
        expect_sqlstate("PERFORM quota.analytics(p_meter => 'nope')", "22023");
        expect_sqlstate(
            "PERFORM quota.predict_exhaustion('', 'ai_requests')",
            "22023",
        );
    }
}
