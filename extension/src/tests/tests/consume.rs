//! consume: counting, denial without usage change, idempotency, multi-limit all-or-nothing, check.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    #[pg_test]
    fn counts_until_the_limit_then_denies_with_a_readable_reason() {
        at("2026-03-10 20:15:00+00");
        for i in 1..=10 {
            let (allowed, used, ..) = consume("'u1'");
            assert!(allowed, "call {i}");
            assert_eq!(used, i);
        }
        let (allowed, used, status, reason, retry, period) = consume("'u1'");
        assert!(!allowed);
        assert_eq!(used, 10);
        assert_eq!(status, "exceeded");
        assert_eq!(period.as_deref(), Some("day"));
        assert_eq!(
            reason.as_deref(),
            Some("Daily limit of 10 ai_requests reached. Resets in 3h 45m.")
        );
        assert_eq!(retry, Some(3 * 3600 + 45 * 60));
        // The denial changed no usage and wrote no ledger row, but was counted.
        assert_eq!(
            one::<i64>("SELECT used FROM quota.counters WHERE user_id = 'u1'"),
            Some(10)
        );
        assert_eq!(
            one::<i64>("SELECT denied FROM quota.counters WHERE user_id = 'u1'"),
            Some(1)
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.ledger WHERE user_id = 'u1'"),
            Some(10)
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
    }

    #[pg_test]
    fn status_thresholds_follow_the_gucs() {
        at("2026-03-10 12:00:00+00");
        let statuses: Vec<String> = (0..10).map(|_| consume("'u2'").2).collect();
        assert_eq!(
            statuses,
            [
                "normal", "normal", "normal", "normal", "normal", "warning", "warning", "warning",
                "critical", "exceeded"
            ]
        );
        run("SET LOCAL quota.warning_threshold = 0.3");
        run("SET LOCAL quota.critical_threshold = 0.5");
        assert_eq!(
            one::<String>("SELECT status FROM quota.check('u3')").as_deref(),
            Some("normal")
        );
        for _ in 0..3 {
            consume("'u3'");
        }
        assert_eq!(
            one::<String>("SELECT status FROM quota.check('u3')").as_deref(),
            Some("warning")
        );
        consume("'u3'");
        consume("'u3'");
        assert_eq!(
            one::<String>("SELECT status FROM quota.check('u3')").as_deref(),
            Some("critical")
        );
    }

    #[pg_test]
    fn a_request_larger_than_what_is_left_is_refused_whole() {
        at("2026-03-10 12:00:00+00");
        let (allowed, used, ..) = consume("'u4', 'ai_tokens', 9000");
        assert!(allowed);
        assert_eq!(used, 9000);
        let (allowed, used, _, reason, retry, _) = consume("'u4', 'ai_tokens', 1500");
        assert!(!allowed);
        assert_eq!(used, 9000);
        assert!(reason
            .unwrap()
            .contains("would be exceeded (9000 used, 1500 requested)"));
        assert!(retry.is_some());
        // More than the whole limit can never pass: no retry time is offered.
        let (allowed, _, _, reason, retry, _) = consume("'u4', 'ai_tokens', 20000");
        assert!(!allowed);
        assert!(reason.unwrap().contains("can never be allowed"));
        assert_eq!(retry, None);
        assert_eq!(
            one::<i64>("SELECT sum(amount)::bigint FROM quota.ledger WHERE user_id = 'u4'"),
            Some(9000)
        );
    }

    #[pg_test]
    fn idempotency_key_replays_the_first_decision_and_charges_once() {
        at("2026-03-10 12:00:00+00");
        let first = consume("'u5', 'ai_tokens', 250, 'req-1', '{\"model\": \"m\"}'");
        assert!(first.0);
        let again = consume("'u5', 'ai_tokens', 250, 'req-1', '{\"model\": \"m\"}'");
        assert_eq!((again.0, again.1), (true, 250));
        assert_eq!(one::<bool>("SELECT replayed FROM quota.consume('u5', 'ai_tokens', 250, 'req-1', '{\"model\": \"m\"}')"), Some(true));
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.ledger WHERE user_id = 'u5'"),
            Some(1)
        );
        assert_eq!(
            one::<i64>(
                "SELECT used FROM quota.counters WHERE user_id = 'u5' AND meter = 'ai_tokens'"
            ),
            Some(250)
        );
        // Same key, different request: refused, nothing charged.
        expect_sqlstate(
            "PERFORM quota.consume('u5', 'ai_tokens', 251, 'req-1', '{\"model\": \"m\"}')",
            "42710",
        );
        expect_sqlstate(
            "PERFORM quota.consume('u5', 'ai_requests', 250, 'req-1', '{\"model\": \"m\"}')",
            "42710",
        );
        expect_sqlstate(
            "PERFORM quota.consume('u5', 'ai_tokens', 250, 'req-1', '{\"model\": \"x\"}')",
            "42710",
        );
        // Keys are per user.
        assert!(consume("'u6', 'ai_tokens', 250, 'req-1', '{\"model\": \"m\"}'").0);
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.ledger"), Some(2));
    }

    #[pg_test]
    fn a_keyed_call_for_a_user_served_before_claims_charges_and_replays_once() {
        at("2026-03-10 12:00:00+00");
        // Served before: the key's turn, the row charged by the fast path (fast_charge.sql), the key recorded.
        assert!(consume("'u5k', 'ai_tokens', 1").0);
        let first = consume("'u5k', 'ai_tokens', 250, 'req-1'");
        assert_eq!((first.0, first.1), (true, 251));
        assert_eq!(
            one::<String>(
                "SELECT (decision->>'used') || ' ' || (decision->>'allowed') FROM quota.idempotency_keys \
                 WHERE user_id = 'u5k' AND key = 'req-1'"
            )
            .as_deref(),
            Some("251 true")
        );
        assert_eq!(
            one::<bool>("SELECT replayed AND used = 251 FROM quota.consume('u5k', 'ai_tokens', 250, 'req-1')"),
            Some(true)
        );
        expect_sqlstate(
            "PERFORM quota.consume('u5k', 'ai_tokens', 249, 'req-1')",
            "42710",
        );
        assert_eq!(
            one::<String>(
                "SELECT count(*) || ' ' || sum(amount) || ' ' || count(idempotency_key) FROM quota.ledger \
                 WHERE user_id = 'u5k'"
            )
            .as_deref(),
            Some("2 251 1")
        );
        // Not charged by the fast path (the amount does not fit): the general path denies and no key is
        // recorded, so a retry is decided afresh.
        assert!(!consume("'u5k', 'ai_tokens', 9800, 'req-2'").0);
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.idempotency_keys WHERE user_id = 'u5k'"),
            Some(1)
        );
        // Charged by the general path (a new window), then recorded.
        at("2026-04-01 00:00:01+00");
        let (allowed, used, ..) = consume("'u5k', 'ai_tokens', 9800, 'req-2'");
        assert_eq!((allowed, used), (true, 9800));
        assert_eq!(
            one::<bool>("SELECT replayed FROM quota.consume('u5k', 'ai_tokens', 9800, 'req-2')"),
            Some(true)
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
    }

    /// Under READ COMMITTED a keyed call writes its key's row once, with the decision, after the charge (0.7.0,
    /// key_turn.rs); it used to claim the row first and then update it, or delete it after a denial.
    #[pg_test]
    fn a_keyed_call_writes_its_key_row_once_and_a_denial_writes_none() {
        at("2026-03-10 12:00:00+00");
        assert!(consume("'u5w', 'ai_tokens', 1").0);
        let writes = || {
            one::<String>(
                "SELECT n_tup_ins || ' ' || n_tup_upd || ' ' || n_tup_del FROM pg_stat_xact_user_tables \
                 WHERE relid = 'quota.idempotency_keys'::regclass",
            )
        };
        let before = writes();
        assert!(consume("'u5w', 'ai_tokens', 250, 'req-1'").0);
        assert!(!consume("'u5w', 'ai_tokens', 100000, 'req-2'").0);
        assert!(one::<bool>(
            "SELECT replayed FROM quota.consume('u5w', 'ai_tokens', 250, 'req-1')"
        )
        .unwrap());
        assert_eq!(before.as_deref(), Some("0 0 0"));
        assert_eq!(writes().as_deref(), Some("1 0 0"));
        assert_eq!(
            one::<String>(
                "SELECT string_agg(key || ':' || (decision->>'used'), ',') FROM quota.idempotency_keys \
                 WHERE user_id = 'u5w'"
            )
            .as_deref(),
            Some("req-1:251")
        );
    }

    #[pg_test]
    fn a_denied_keyed_attempt_stores_no_key_so_a_retry_is_evaluated_afresh() {
        at("2026-03-10 12:00:00+00");
        run("SELECT quota.consume('u7', 'ai_tokens', 10000)");
        assert!(!consume("'u7', 'ai_tokens', 1, 'k'").0);
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.idempotency_keys WHERE user_id = 'u7'"),
            Some(0)
        );
        at("2026-04-01 00:00:01+00");
        assert!(consume("'u7', 'ai_tokens', 1, 'k'").0);
    }

    #[pg_test]
    fn every_limit_of_a_meter_is_checked_and_consumed_all_or_nothing() {
        run("SELECT quota.create_plan('tight', 'Tight')");
        run("SELECT quota.set_plan_limit('tight', 'ai_requests', 'hour', 3)");
        run("SELECT quota.set_plan_limit('tight', 'ai_requests', 'day', 5)");
        run("SELECT quota.assign_plan('u8', 'tight')");
        at("2026-03-10 10:05:00+00");
        for _ in 0..3 {
            assert!(consume("'u8'").0);
        }
        let (allowed, used, _, reason, retry, period) = consume("'u8'");
        assert!(!allowed);
        assert_eq!((used, period.as_deref()), (3, Some("hour")));
        assert_eq!(
            reason.as_deref(),
            Some("Hourly limit of 3 ai_requests reached. Resets in 55m.")
        );
        assert_eq!(retry, Some(55 * 60));
        // The day window did not keep the refused request's amount.
        assert_eq!(
            one::<i64>("SELECT used FROM quota.counters WHERE user_id = 'u8' AND period = 'day'"),
            Some(3)
        );
        at("2026-03-10 11:00:00+00");
        // Binding window: the day (2 left) now binds rather than the fresh hour (3 left).
        let (allowed, used, _, _, _, period) = consume("'u8'");
        assert!(allowed);
        assert_eq!((used, period.as_deref()), (4, Some("day")));
        assert!(consume("'u8'").0);
        let (allowed, _, _, reason, _, period) = consume("'u8'");
        assert!(!allowed);
        assert_eq!(period.as_deref(), Some("day"));
        assert!(reason
            .unwrap()
            .starts_with("Daily limit of 5 ai_requests reached."));
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
    }

    #[pg_test]
    fn the_limits_field_is_the_jsonb_object_of_every_window_and_a_replay_returns_it_unchanged() {
        run("SELECT quota.create_plan('two', 'Two windows')");
        run("SELECT quota.set_plan_limit('two', 'ai_requests', 'month', 1000)");
        run("SELECT quota.set_plan_limit('two', 'ai_requests', 'hour', 3)");
        run("SELECT quota.assign_plan('u9', 'two')");
        at("2026-03-10 10:05:00+00");
        // Built in place (types.rs): equal, as jsonb and as text, to what jsonb_in makes of the same object,
        // keys in jsonb's order (shorter first), on the general path's decision and on a replay of it.
        let expected = "'{\"hour\": 3, \"month\": 1000}'::jsonb";
        let live = format!(
            "SELECT limits = {expected} AND limits::text = {expected}::text FROM quota.consume('u9', 'ai_requests', 1, 'k-limits')"
        );
        assert_eq!(one::<bool>(&live), Some(true));
        assert_eq!(one::<bool>(&live), Some(true));
        assert_eq!(
            one::<String>(
                "SELECT limits::text FROM quota.consume('u9', 'ai_requests', 1, 'k-limits')"
            ),
            Some("{\"hour\": 3, \"month\": 1000}".into())
        );
        assert_eq!(
            one::<bool>("SELECT replayed FROM quota.consume('u9', 'ai_requests', 1, 'k-limits')"),
            Some(true)
        );
        // The fast path's decision (one window) and check's, with a limit past i32.
        run("SELECT quota.create_plan('one', 'One window')");
        run("SELECT quota.set_plan_limit('one', 'ai_tokens', 'day', 5000000000)");
        run("SELECT quota.assign_plan('u10', 'one')");
        run("SELECT quota.consume('u10', 'ai_tokens', 1)");
        assert_eq!(
            one::<String>("SELECT limits::text FROM quota.consume('u10', 'ai_tokens', 1)"),
            Some("{\"day\": 5000000000}".into())
        );
        assert_eq!(
            one::<String>("SELECT limits::text FROM quota.check('u10', 'ai_tokens', 1)"),
            Some("{\"day\": 5000000000}".into())
        );
        // An unlimited window has no entry; a meter outside the plan an empty object.
        assert_eq!(
            one::<String>("SELECT limits::text FROM quota.consume('u10', 'ai_requests', 1)"),
            Some("{}".into())
        );
    }

    #[pg_test]
    fn the_decision_a_keyed_call_stores_is_the_jsonb_that_jsonb_in_makes_of_its_text() {
        use serde_json::json;
        // Built in place (jsonb.rs): every kind of value a decision has, and some it has not.
        let built = json!({
            "allowed": true, "replayed": false, "reason": null, "used": i64::MIN, "limit": i64::MAX,
            "meter": "ai_requests", "quoted": "a \"b\" \\ ü € \n", "": "empty key",
            "limits": {"month": 1000, "hour": 3, "day": 0},
            "list": [1, "two", null, [true, false], {}], "empty": {}, "none": []
        });
        assert!(crate::jsonb::buildable(&built));
        // pgrx's way (printed and parsed): a fraction, an unsigned integer past i64.
        let printed = [json!({"fraction": 1.5}), json!({"big": u64::MAX})];
        assert!(printed.iter().all(|v| !crate::jsonb::buildable(v)));
        for v in std::iter::once(&built)
            .chain(&printed)
            .chain(&[json!({}), json!([1, 2])])
        {
            let same = Spi::get_one_with_args::<bool>(
                "SELECT $1::jsonb = $2::jsonb AND $1::text = $2::text",
                &[crate::jsonb::jsonb_arg(v), pgrx::JsonB(v.clone()).into()],
            )
            .unwrap_or_else(|e| panic!("{v}: {e}"));
            assert_eq!(same, Some(true), "{v}");
        }
        // What a keyed consume stores, and that its replay reads it back.
        at("2026-03-10 10:05:00+00");
        run("SELECT quota.consume('u11', 'ai_requests', 1, 'k-stored')");
        assert_eq!(
            one::<String>(
                "SELECT decision->>'plan' || ' ' || (decision->>'used') || ' ' || (decision->'limits')::text \
                 || ' ' || (decision->>'resets_at') FROM quota.idempotency_keys WHERE key = 'k-stored'"
            ),
            Some("free 1 {\"day\": 10} 2026-03-11T00:00:00Z".into())
        );
        assert_eq!(
            one::<bool>(
                "SELECT replayed AND used = 1 AND remaining = 9 FROM quota.consume('u11', 'ai_requests', 1, 'k-stored')"
            ),
            Some(true)
        );
    }

    #[pg_test]
    fn the_metadata_a_call_writes_is_the_jsonb_that_jsonb_in_makes_of_its_text() {
        at("2026-03-10 10:05:00+00");
        // Built in place (jsonb.rs), and pgrx's way (a fraction is not built in place).
        let built = r#"{"model": "gpt-4o", "quoted": "a \"b\" ü €", "n": -3, "": "", "nested": {"k": [1, null, true]}}"#;
        let printed = r#"{"model": "gpt-4o", "temperature": 0.7}"#;
        run("SELECT quota.consume('u12', 'ai_requests', 1)");
        for (i, metadata) in [built, printed].into_iter().enumerate() {
            // The fast path (a user served before), the general path (a user's first call) and a keyed call.
            let key = format!("'k-meta-{i}'");
            let user = format!("u{}", 13 + i);
            for (user, key) in [("u12", "NULL"), (&user, "NULL"), ("u12", &key)] {
                run(&format!(
                    "SELECT quota.consume('{user}', 'ai_requests', 1, {key}, '{metadata}'::jsonb)"
                ));
            }
            let same = format!(
                "metadata = '{metadata}'::jsonb AND metadata::text = ('{metadata}'::jsonb)::text"
            );
            assert_eq!(
                one::<i64>(&format!("SELECT count(*) FROM quota.ledger WHERE {same}")),
                Some(3),
                "{metadata}"
            );
            assert_eq!(
                one::<i64>(&format!(
                    "SELECT count(*) FROM quota.idempotency_keys WHERE {same}"
                )),
                Some(1),
                "{metadata}"
            );
        }
    }

    #[pg_test]
    fn a_meter_the_plan_does_not_include_is_denied_with_a_reason() {
        run("SELECT quota.define_meter('images', 'images')");
        let (allowed, _, status, reason, retry, _) = consume("'u9', 'images'");
        assert!(!allowed);
        assert_eq!(status, "exceeded");
        assert_eq!(
            reason.as_deref(),
            Some("Plan 'free' does not include meter 'images'.")
        );
        assert_eq!(retry, None);
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.ledger"), Some(0));
    }

    #[pg_test]
    fn unlimited_plans_count_but_never_deny() {
        run("SELECT quota.assign_plan('root', 'admin')");
        for _ in 0..25 {
            assert!(consume("'root'").0);
        }
        let limit = one::<i64>("SELECT \"limit\" FROM quota.check('root')");
        assert_eq!(limit, None);
        assert_eq!(one::<i64>("SELECT used FROM quota.check('root')"), Some(25));
        assert_eq!(
            one::<String>("SELECT status FROM quota.check('root')").as_deref(),
            Some("normal")
        );
    }

    #[pg_test]
    fn check_decides_without_consuming_or_creating_an_account() {
        assert_eq!(
            one::<bool>("SELECT allowed FROM quota.check('ghost')"),
            Some(true)
        );
        assert_eq!(
            one::<bool>("SELECT allowed FROM quota.check('ghost', 'ai_requests', 11)"),
            Some(false)
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.accounts WHERE user_id = 'ghost'"),
            Some(0)
        );
        consume("'ghost'");
        assert_eq!(one::<i64>("SELECT used FROM quota.check('ghost')"), Some(1));
        assert_eq!(one::<i64>("SELECT used FROM quota.check('ghost')"), Some(1));
    }

    #[pg_test]
    fn per_user_overrides_replace_and_extend_the_plan() {
        consume("'u10'");
        // The day override replaces the plan's 10; the hour one adds a limit the plan lacks (and counts the request
        // already made in this hour).
        run("INSERT INTO quota.user_limits VALUES ('u10', 'ai_requests', 'day', 2), ('u10', 'ai_requests', 'hour', 5)");
        let (allowed, _, _, _, _, period) = consume("'u10'");
        assert!(allowed);
        assert_eq!(period.as_deref(), Some("day"));
        let (allowed, _, _, _, _, period) = consume("'u10'");
        assert!(!allowed);
        assert_eq!(period.as_deref(), Some("day"));
        let rows =
            one::<i64>("SELECT count(*) FROM quota.status('u10') WHERE meter = 'ai_requests'");
        assert_eq!(rows, Some(2));
    }

    #[pg_test]
    fn a_request_above_any_limit_is_refused_for_good_even_when_another_window_also_denies() {
        run("SELECT quota.create_plan('small', 'Small')");
        run("SELECT quota.set_plan_limit('small', 'ai_requests', 'hour', 3)");
        run("SELECT quota.set_plan_limit('small', 'ai_requests', 'day', 4)");
        run("SELECT quota.assign_plan('nv1', 'small')");
        at("2026-03-10 12:00:00+00");
        consume("'nv1'");
        // The day would also deny (1 + 4 > 4) and resets later, but the hour can never take 4.
        let (allowed, _, _, reason, retry, period) = consume("'nv1', 'ai_requests', 4");
        assert!(!allowed);
        assert_eq!((retry, period.as_deref()), (None, Some("hour")));
        assert!(reason.unwrap().contains("can never be allowed"));
    }

    #[pg_test]
    fn a_burst_limit_spaces_calls_and_says_exactly_when_the_next_passes() {
        run("SELECT quota.set_plan_burst('free', 'ai_requests', 1, '10 seconds', 3)");
        at("2026-03-10 12:00:00+00");
        for _ in 0..3 {
            assert!(consume("'b1'").0);
        }
        let (allowed, used, _, reason, retry, period) = consume("'b1'");
        assert!(!allowed);
        assert_eq!(
            (used, retry, period.as_deref()),
            (3, Some(10), Some("burst"))
        );
        assert_eq!(
            reason.as_deref(),
            Some("Burst limit of 3 ai_requests reached. Resets in 10s.")
        );
        // The denial charged nothing anywhere: the day still shows 3, the ledger 3 rows.
        assert_eq!(one::<i64>("SELECT used FROM quota.status('b1') WHERE meter = 'ai_requests' AND period = 'day'"), Some(3));
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.ledger WHERE user_id = 'b1'"),
            Some(3)
        );
        at("2026-03-10 12:00:04+00");
        assert_eq!(
            one::<i32>("SELECT retry_after_s FROM quota.check('b1')"),
            Some(6)
        );
        at("2026-03-10 12:00:10+00");
        assert!(consume("'b1'").0);
        assert!(!consume("'b1'").0);
        // More than the burst can never pass; the calendar limit still applies with it.
        let (allowed, _, _, reason, retry, _) = consume("'b1', 'ai_requests', 4");
        assert!(!allowed);
        assert_eq!(retry, None);
        assert!(reason.unwrap().contains("can never be allowed"));
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
    }

    #[pg_test]
    fn a_burst_limit_alone_admits_a_meter_and_a_commit_is_not_rate_limited() {
        run("SELECT quota.create_plan('burst_only', 'Burst only')");
        run("SELECT quota.set_plan_burst('burst_only', 'ai_tokens', 100, '1 second', 1000)");
        run("SELECT quota.set_plan_limit('burst_only', 'ai_requests', 'day', 100)");
        run("SELECT quota.set_plan_burst('burst_only', 'ai_requests', 1, '1 minute', 1)");
        run("SELECT quota.assign_plan('b2', 'burst_only')");
        at("2026-03-10 12:00:00+00");
        let (allowed, used, _, _, _, period) = consume("'b2', 'ai_tokens', 600");
        assert!(allowed);
        assert_eq!((used, period.as_deref()), (600, Some("burst")));
        let (allowed, _, _, _, retry, _) = consume("'b2', 'ai_tokens', 500");
        assert!(!allowed);
        assert_eq!(retry, Some(1));
        // Reserve takes the one call the burst allows; its commit charges without asking the burst again.
        let id =
            one::<String>("SELECT reservation_id::text FROM quota.reserve('b2', 'ai_requests', 1)")
                .unwrap();
        assert!(!consume("'b2'").0);
        assert_eq!(
            one::<i64>(&format!("SELECT charged FROM quota.commit('{id}', 1)")),
            Some(1)
        );
        expect_sqlstate(
            "PERFORM quota.set_plan_burst('burst_only', 'ai_tokens', 0)",
            "22023",
        );
        expect_sqlstate(
            "PERFORM quota.set_plan_burst('burst_only', 'ai_tokens', 1, '2 days')",
            "22023",
        );
        expect_sqlstate(
            "PERFORM quota.set_plan_burst('burst_only', 'ai_tokens', 1, NULL)",
            "22004",
        );
    }
}
