//! The daily rollup a fast-path call carries on its counter row: quota.usage_daily sums it with the stored rows,
//! exactly, before and after the general path folds it, and it outlives the counter row.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    /// Rows where quota.usage_daily and the ledger's UTC-day sums of usage disagree.
    fn rollup_vs_ledger() -> Option<i64> {
        one::<i64>(
            "SELECT count(*) FROM (SELECT user_id, (created_at AT TIME ZONE 'UTC')::date AS day, meter, \
             sum(amount) AS amount, count(*) AS requests, max(created_at) AS last_at FROM quota.ledger \
             WHERE reset_period IS NULL GROUP BY 1, 2, 3) l \
             FULL JOIN quota.usage_daily u USING (user_id, day, meter) \
             WHERE l.amount IS DISTINCT FROM u.amount OR l.requests IS DISTINCT FROM u.requests \
                OR l.last_at IS DISTINCT FROM u.last_at",
        )
    }

    #[pg_test]
    fn fast_calls_are_carried_on_the_counter_row_and_folded_on_the_next_day() {
        at("2026-03-09 10:00:00+00");
        consume("'ro1', 'ai_requests', 1"); // first call: the general path creates the row
        at("2026-03-09 10:05:00+00");
        consume("'ro1', 'ai_requests', 2");
        at("2026-03-09 23:59:00+00");
        consume("'ro1', 'ai_requests', 3");
        // The two fast calls wrote no rollup row: the counter row carries them.
        assert_eq!(
            one::<String>(
                "SELECT rollup_day || ' ' || rollup_amount || ' ' || rollup_requests || ' ' || rollup_last_at \
                 FROM quota.counters WHERE user_id = 'ro1' AND meter = 'ai_requests'"
            )
            .as_deref(),
            Some("2026-03-09 5 2 2026-03-09 23:59:00+00")
        );
        assert_eq!(
            one::<i64>("SELECT requests FROM quota.daily_rollup WHERE user_id = 'ro1'"),
            Some(1)
        );
        assert_eq!(
            one::<String>(
                "SELECT amount || ' ' || requests || ' ' || last_at FROM quota.usage_daily WHERE user_id = 'ro1'"
            )
            .as_deref(),
            Some("6 3 2026-03-09 23:59:00+00")
        );
        assert_eq!(rollup_vs_ledger(), Some(0));

        // The next UTC day: the first call folds yesterday into the stored rollup, later ones carry today.
        at("2026-03-10 00:10:00+00");
        consume("'ro1', 'ai_requests', 4");
        at("2026-03-10 00:20:00+00");
        consume("'ro1', 'ai_requests', 1");
        assert_eq!(
            one::<String>(
                "SELECT amount || ' ' || requests FROM quota.daily_rollup \
                 WHERE user_id = 'ro1' AND day = '2026-03-09'"
            )
            .as_deref(),
            Some("6 3")
        );
        assert_eq!(
            one::<String>(
                "SELECT rollup_day || ' ' || rollup_amount || ' ' || rollup_requests FROM quota.counters \
                 WHERE user_id = 'ro1' AND meter = 'ai_requests'"
            )
            .as_deref(),
            Some("2026-03-10 1 1")
        );
        assert_eq!(
            one::<String>(
                "SELECT string_agg(day || '=' || amount || '/' || requests, ' ' ORDER BY day) \
                 FROM quota.usage_daily WHERE user_id = 'ro1'"
            )
            .as_deref(),
            Some("2026-03-09=6/3 2026-03-10=5/2")
        );
        assert_eq!(rollup_vs_ledger(), Some(0));
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
    }

    #[pg_test]
    fn a_day_carried_on_a_counter_row_outlives_the_row() {
        at("2026-03-09 10:00:00+00");
        for _ in 0..3 {
            consume("'ro2', 'ai_requests', 2");
            consume("'ro3', 'ai_requests', 1");
        }
        assert_eq!(
            one::<i64>("SELECT sum(rollup_requests)::bigint FROM quota.counters"),
            Some(4)
        );
        // An account deleted: its counter rows go, what they carried stays in the rollup (as the ledger stays).
        run("DELETE FROM quota.accounts WHERE user_id = 'ro2'");
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.counters WHERE user_id = 'ro2'"),
            Some(0)
        );
        assert_eq!(
            one::<String>(
                "SELECT amount || ' ' || requests FROM quota.usage_daily WHERE user_id = 'ro2'"
            )
            .as_deref(),
            Some("6 3")
        );
        // The table truncated: the same for every row.
        run("TRUNCATE quota.counters");
        assert_eq!(
            one::<String>(
                "SELECT amount || ' ' || requests FROM quota.usage_daily WHERE user_id = 'ro3'"
            )
            .as_deref(),
            Some("3 3")
        );
        assert_eq!(rollup_vs_ledger(), Some(0));
    }

    #[pg_test]
    fn analytics_count_the_carried_part() {
        at("2026-03-10 09:00:00+00");
        for _ in 0..4 {
            consume("'ro4', 'ai_requests', 1");
        }
        consume("'ro5', 'ai_tokens', 300");
        consume("'ro5', 'ai_tokens', 200");
        assert_eq!(
            one::<i64>("SELECT usage FROM quota.analytics(NULL, 'ai_requests')"),
            Some(4)
        );
        assert_eq!(
            one::<i64>("SELECT usage FROM quota.analytics(NULL, 'ai_tokens')"),
            Some(500)
        );
        assert_eq!(
            one::<i64>("SELECT all_time FROM quota.user_usage('ro5') WHERE meter = 'ai_tokens'"),
            Some(500)
        );
    }
}
