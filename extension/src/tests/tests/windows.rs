//! Calendar windows: hour, day, ISO week, month, in the account's timezone, DST-correct, reset lazily.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    fn ts(sql: &str) -> String {
        one::<String>(&format!("SELECT ({sql})::text")).expect("a timestamp")
    }

    #[pg_test]
    fn window_bounds_in_utc() {
        run("SET LOCAL timezone = 'UTC'");
        let at = "'2026-03-11 15:42:07+00'::timestamptz"; // a Wednesday
        assert_eq!(
            ts(&format!("quota.window_start('hour', {at}, 'UTC')")),
            "2026-03-11 15:00:00+00"
        );
        assert_eq!(
            ts(&format!("quota.window_start('day', {at}, 'UTC')")),
            "2026-03-11 00:00:00+00"
        );
        assert_eq!(
            ts(&format!("quota.window_start('week', {at}, 'UTC')")),
            "2026-03-09 00:00:00+00"
        );
        assert_eq!(
            ts(&format!("quota.window_start('month', {at}, 'UTC')")),
            "2026-03-01 00:00:00+00"
        );
        assert_eq!(
            ts("quota.window_end('month', '2026-02-01 00:00+00', 'UTC')"),
            "2026-03-01 00:00:00+00"
        );
        assert_eq!(
            ts("quota.window_end('week', '2026-03-09 00:00+00', 'UTC')"),
            "2026-03-16 00:00:00+00"
        );
    }

    #[pg_test]
    fn half_hour_zones_cut_hours_at_local_boundaries() {
        run("SET LOCAL timezone = 'UTC'");
        // Asia/Kolkata is UTC+05:30: local 21:12 is 15:42 UTC, its hour began at 15:30 UTC.
        assert_eq!(
            ts("quota.window_start('hour', '2026-03-11 15:42:07+00', 'Asia/Kolkata')"),
            "2026-03-11 15:30:00+00"
        );
        assert_eq!(
            ts("quota.window_start('day', '2026-03-11 15:42:07+00', 'Asia/Kolkata')"),
            "2026-03-10 18:30:00+00"
        );
    }

    #[pg_test]
    fn dst_days_last_23_and_25_hours() {
        run("SET LOCAL timezone = 'UTC'");
        // 2026-03-08: New York springs forward; the local day runs 05:00 UTC to 04:00 UTC next day (23 hours).
        assert_eq!(
            ts("quota.window_start('day', '2026-03-08 23:30+00', 'America/New_York')"),
            "2026-03-08 05:00:00+00"
        );
        assert_eq!(
            ts("quota.window_end('day', '2026-03-08 05:00+00', 'America/New_York')"),
            "2026-03-09 04:00:00+00"
        );
        // 2026-11-01: it falls back; that local day lasts 25 hours.
        assert_eq!(
            ts("quota.window_end('day', '2026-11-01 04:00+00', 'America/New_York')"),
            "2026-11-02 05:00:00+00"
        );
        // The repeated 01:00-02:00 hour is two distinct hourly windows.
        assert_eq!(
            ts("quota.window_start('hour', '2026-11-01 05:30+00', 'America/New_York')"),
            "2026-11-01 05:00:00+00"
        );
        assert_eq!(
            ts("quota.window_start('hour', '2026-11-01 06:30+00', 'America/New_York')"),
            "2026-11-01 06:00:00+00"
        );
    }

    #[pg_test]
    fn usage_resets_lazily_when_a_new_window_begins() {
        at("2026-03-10 23:59:00+00");
        for _ in 0..10 {
            assert!(consume("'w1'").0);
        }
        assert!(!consume("'w1'").0);
        at("2026-03-11 00:00:00+00");
        let (allowed, used, ..) = consume("'w1'");
        assert!(allowed);
        assert_eq!(used, 1);
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
    }

    #[pg_test]
    fn account_timezone_moves_the_day_boundary() {
        run("SELECT quota.set_timezone('w2', 'America/New_York')");
        // 2026-03-08 23:30 in New York (03:30 UTC on the 9th) is still the 8th there: 30 minutes to reset.
        at("2026-03-09 03:30:00+00");
        for _ in 0..10 {
            consume("'w2'");
        }
        let (allowed, _, _, reason, retry, _) = consume("'w2'");
        assert!(!allowed);
        assert_eq!(retry, Some(30 * 60));
        assert_eq!(
            reason.as_deref(),
            Some("Daily limit of 10 ai_requests reached. Resets in 30m.")
        );
        assert_eq!(
        one::<String>("SELECT resets_at::text FROM quota.check('w2') AS d, (SELECT set_config('timezone', 'UTC', true)) s")
            .as_deref(),
        Some("2026-03-09 04:00:00+00")
    );
        at("2026-03-09 04:00:00+00");
        assert!(consume("'w2'").0);
    }

    #[pg_test]
    fn default_timezone_guc_applies_to_accounts_without_one() {
        run("SET LOCAL quota.default_timezone = 'Asia/Kolkata'");
        at("2026-03-10 18:00:00+00"); // 23:30 in Kolkata
        assert_eq!(consume("'w3'").4, None);
        assert_eq!(
        one::<i32>("SELECT (extract(epoch FROM resets_at - '2026-03-10 18:00:00+00'::timestamptz))::int FROM quota.check('w3')"),
        Some(30 * 60)
    );
    }

    #[pg_test]
    fn a_blank_default_timezone_is_utc_and_a_padded_one_is_trimmed_on_every_path() {
        // consume, check, status and commit read the setting in place (gucs::with_string); the rule is the
        // one quota.default_timezone() reports.
        let seconds_to = |sql: &str| {
            one::<i32>(&format!(
                "SELECT (extract(epoch FROM resets_at - '2026-03-31 12:00:00+00'::timestamptz))::int \
                 FROM ({sql}) r LIMIT 1"
            ))
        };
        let paths = |user: &str| {
            [
                seconds_to(&format!("SELECT * FROM quota.consume('{user}', 'ai_requests', 1)")),
                seconds_to(&format!("SELECT * FROM quota.check('{user}', 'ai_requests')")),
                seconds_to(&format!(
                    "SELECT * FROM quota.status('{user}') WHERE meter = 'ai_requests'"
                )),
                seconds_to(&format!(
                    "SELECT * FROM quota.commit((quota.reserve('{user}', 'ai_tokens', 10)).reservation_id, 5)"
                )),
            ]
        };
        at("2026-03-31 12:00:00+00");
        run("SET LOCAL quota.default_timezone = '   '");
        assert_eq!(
            one::<String>("SELECT quota.default_timezone()").as_deref(),
            Some("UTC")
        );
        // Midnight UTC: 12 h away, for the day and (the last day of March) for the month.
        assert_eq!(paths("tz1"), [Some(43_200); 4]);
        run("SET LOCAL quota.default_timezone = '  Asia/Kolkata '");
        assert_eq!(
            one::<String>("SELECT quota.default_timezone()").as_deref(),
            Some("Asia/Kolkata")
        );
        // Midnight in Kolkata is 18:30 UTC: 6 h 30 min away.
        assert_eq!(paths("tz2"), [Some(23_400); 4]);
    }

    #[pg_test]
    fn unused_allowance_rolls_over_up_to_the_cap() {
        run("SELECT quota.create_plan('saver', 'Saver')");
        run("SELECT quota.set_plan_limit('saver', 'ai_requests', 'day', 10)");
        run("SELECT quota.set_plan_rollover('saver', 'ai_requests', 'day', 5)");
        run("SELECT quota.assign_plan('r1', 'saver')");
        let limit =
            || one::<i64>("SELECT \"limit\" FROM quota.status('r1') WHERE meter = 'ai_requests'");
        at("2026-03-10 12:00:00+00");
        run("SELECT quota.consume('r1', 'ai_requests', 4)");
        assert_eq!(limit(), Some(10));
        // 6 left unused, capped at 5: tomorrow allows 15, and says so before the first call of the day.
        at("2026-03-11 08:00:00+00");
        assert_eq!(limit(), Some(15));
        assert!(consume("'r1', 'ai_requests', 15").0);
        assert!(!consume("'r1'").0);
        // Everything used: nothing carries.
        at("2026-03-12 08:00:00+00");
        assert_eq!(limit(), Some(10));
        run("SELECT quota.consume('r1', 'ai_requests', 1)");
        // The 13th passes without a call: the 14th carries the cap, recounted from the ledger.
        at("2026-03-14 08:00:00+00");
        assert_eq!(limit(), Some(15));
        assert!(consume("'r1', 'ai_requests', 15").0);
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
        expect_sqlstate(
            "PERFORM quota.set_plan_rollover('saver', 'ai_requests', 'hour', 5)",
            "P0002",
        );
        expect_sqlstate(
            "PERFORM quota.set_plan_rollover('saver', 'ai_requests', 'day', -1)",
            "22023",
        );
    }
}
