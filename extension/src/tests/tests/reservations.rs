//! Reserve, then settle: holds count like usage, commit charges the actual amount (capped by the limits),
//! release frees everything, expired holds stop counting by themselves, and the ledger stays consistent.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    fn reserve(args: &str) -> (bool, Option<String>) {
        let sql = format!("SELECT allowed, reservation_id::text FROM quota.reserve({args})");
        Spi::connect(|c| {
            let row = c
                .select(&sql, None, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .first();
            (
                row.get::<bool>(1).unwrap().unwrap(),
                row.get::<String>(2).unwrap(),
            )
        })
    }

    fn settle(sql: &str) -> (String, i64, bool, Option<i64>) {
        Spi::connect(|c| {
            let row = c
                .select(sql, None, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .first();
            (
                row.get::<String>(1).unwrap().unwrap(),
                row.get::<i64>(2).unwrap().unwrap(),
                row.get::<bool>(3).unwrap().unwrap(),
                row.get::<i64>(4).unwrap(),
            )
        })
    }

    #[pg_test]
    fn a_hold_counts_against_the_limit_until_settled() {
        at("2026-03-10 12:00:00+00");
        let (allowed, id) = reserve("'h1', 'ai_tokens', 4000");
        assert!(allowed);
        let id = id.expect("a reservation id");
        assert_eq!(
            one::<i64>("SELECT held FROM quota.check('h1', 'ai_tokens')"),
            Some(4000)
        );
        assert_eq!(
            one::<i64>("SELECT remaining FROM quota.check('h1', 'ai_tokens')"),
            Some(6000)
        );
        let (allowed, _, _, reason, ..) = consume("'h1', 'ai_tokens', 7000");
        assert!(!allowed);
        assert!(reason
            .unwrap()
            .contains("(0 used, 4000 held, 7000 requested)"));
        assert!(consume("'h1', 'ai_tokens', 6000").0);
        // Less than the hold: the rest is freed, only the actual amount is charged.
        let (state, charged, capped, used) = settle(&format!(
            "SELECT state, charged, capped, used FROM quota.commit('{id}', 2500)"
        ));
        assert_eq!(
            (state.as_str(), charged, capped, used),
            ("committed", 2500, false, Some(8500))
        );
        assert_eq!(
            one::<i64>("SELECT held FROM quota.check('h1', 'ai_tokens')"),
            Some(0)
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
        assert_eq!(
            one::<String>(
                "SELECT metadata->>'reservation_id' FROM quota.ledger WHERE amount = 2500"
            )
            .as_deref(),
            Some(id.as_str())
        );
        assert_eq!(
            one::<String>(&format!(
                "SELECT state || ' ' || actual || ' ' || charged || ' ' || (settled_at IS NOT NULL) \
                 FROM quota.reservations WHERE id = '{id}'"
            ))
            .as_deref(),
            Some("committed 2500 2500 true")
        );
        expect_sqlstate(&format!("PERFORM quota.commit('{id}', 1)"), "55000");
        expect_sqlstate(&format!("PERFORM quota.release('{id}')"), "55000");
    }

    #[pg_test]
    fn more_than_the_hold_is_charged_up_to_what_the_limits_allow() {
        at("2026-03-10 12:00:00+00");
        consume("'h2', 'ai_tokens', 7000");
        let (_, id) = reserve("'h2', 'ai_tokens', 1000");
        let id = id.unwrap();
        let (_, charged, capped, used) = settle(&format!(
            "SELECT state, charged, capped, used FROM quota.commit('{id}', 5000)"
        ));
        assert_eq!((charged, capped, used), (3000, true, Some(10000)));
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
        // The row says what was charged, not the whole actual amount it was settled at first.
        assert_eq!(
            one::<String>(&format!(
                "SELECT state || ' ' || actual || ' ' || charged FROM quota.reservations WHERE id = '{id}'"
            ))
            .as_deref(),
            Some("committed 5000 3000")
        );
    }

    #[pg_test]
    fn with_overage_the_whole_actual_is_charged_past_the_limit() {
        at("2026-03-10 12:00:00+00");
        consume("'h2o', 'ai_tokens', 7000");
        let (_, id) = reserve("'h2o', 'ai_tokens', 1000");
        let id = id.unwrap();
        let (state, charged, capped, used) = settle(&format!(
        "SELECT state, charged, capped, used FROM quota.commit('{id}', 5000, 'h2o', p_overage => true)"
    ));
        assert_eq!(
            (state.as_str(), charged, capped, used),
            ("committed", 5000, false, Some(12000))
        );
        // Every window of the meter took it, in one ledger row of the full amount; the next call is denied.
        assert_eq!(
            one::<i64>("SELECT max(used) FROM quota.status('h2o') WHERE meter = 'ai_tokens'"),
            Some(12000)
        );
        assert_eq!(
            one::<i64>(&format!(
                "SELECT amount FROM quota.ledger WHERE metadata->>'reservation_id' = '{id}'"
            )),
            Some(5000)
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.ledger WHERE user_id = 'h2o'"),
            Some(2)
        );
        assert!(!consume("'h2o', 'ai_tokens', 1").0);
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
        let (_, id) = reserve("'h2p', 'ai_tokens', 10");
        expect_sqlstate(
            &format!("PERFORM quota.commit('{}', 5, NULL, NULL)", id.unwrap()),
            "22004",
        );
    }

    #[pg_test]
    fn release_frees_the_hold_and_charges_nothing() {
        at("2026-03-10 12:00:00+00");
        let (_, id) = reserve("'h3', 'ai_requests', 10");
        assert!(!consume("'h3'").0);
        let (state, charged, _, _) = settle(&format!(
            "SELECT state, charged, capped, used FROM quota.release('{}')",
            id.unwrap()
        ));
        assert_eq!((state.as_str(), charged), ("released", 0));
        assert!(consume("'h3'").0);
        assert_eq!(
            one::<i64>("SELECT sum(amount)::bigint FROM quota.ledger WHERE user_id = 'h3'"),
            Some(1)
        );
    }

    #[pg_test]
    fn an_expired_hold_stops_counting_without_any_job() {
        at("2026-03-10 12:00:00+00");
        let (_, id) = reserve("'h4', 'ai_requests', 8, '1 minute'");
        assert!(!consume("'h4', 'ai_requests', 3").0);
        at("2026-03-10 12:01:00+00");
        assert_eq!(one::<i64>("SELECT held FROM quota.check('h4')"), Some(0));
        let (allowed, used, ..) = consume("'h4', 'ai_requests', 3");
        assert!(allowed);
        assert_eq!(used, 3);
        assert_eq!(
            one::<i64>("SELECT held FROM quota.counters WHERE user_id = 'h4'"),
            Some(0)
        );
        assert_eq!(
            one::<i64>("SELECT denied FROM quota.counters WHERE user_id = 'h4'"),
            Some(1)
        );
        expect_sqlstate(
            &format!("PERFORM quota.commit('{}', 8)", id.unwrap()),
            "55000",
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
    }

    #[pg_test]
    fn a_repeated_reserve_key_returns_the_same_reservation() {
        at("2026-03-10 12:00:00+00");
        let (_, first) = reserve("'h5', 'ai_tokens', 100, '5 minutes', 'call-1'");
        let (_, again) = reserve("'h5', 'ai_tokens', 100, '5 minutes', 'call-1'");
        assert_eq!(first, again);
        assert_eq!(
            one::<bool>(
                "SELECT replayed FROM quota.reserve('h5', 'ai_tokens', 100, '5 minutes', 'call-1')"
            ),
            Some(true)
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.reservations WHERE user_id = 'h5'"),
            Some(1)
        );
        // The same key on consume is a different request.
        assert!(consume("'h5', 'ai_tokens', 100, 'call-1'").0);
    }

    #[pg_test]
    fn reservations_reject_bad_arguments() {
        expect_sqlstate(
            "PERFORM quota.reserve('h6', 'ai_tokens', 10, NULL)",
            "22004",
        );
        expect_sqlstate(
            "PERFORM quota.reserve('h6', 'ai_tokens', 10, '0 seconds')",
            "22023",
        );
        expect_sqlstate(
            "PERFORM quota.reserve('h6', 'ai_tokens', 10, '2 days')",
            "22023",
        );
        expect_sqlstate("PERFORM quota.reserve('h6', 'ai_tokens', 0)", "22023");
        expect_sqlstate("PERFORM quota.commit(NULL, 1)", "22004");
        expect_sqlstate("PERFORM quota.commit(gen_random_uuid(), 1)", "P0002");
        expect_sqlstate("PERFORM quota.release(gen_random_uuid())", "P0002");
        let (_, id) = reserve("'h6', 'ai_tokens', 10");
        expect_sqlstate(
            &format!("PERFORM quota.commit('{}', -1)", id.unwrap()),
            "22023",
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.ledger"), Some(0));
    }

    #[pg_test]
    fn a_reservation_settles_only_for_its_own_user_when_one_is_named() {
        at("2026-03-10 12:00:00+00");
        let (_, id) = reserve("'h7', 'ai_requests', 2");
        let id = id.unwrap();
        // Another user's id looks exactly like an unknown one: nothing to learn, nothing settled.
        expect_sqlstate(&format!("PERFORM quota.commit('{id}', 1, 'h8')"), "P0002");
        expect_sqlstate(&format!("PERFORM quota.release('{id}', 'h8')"), "P0002");
        expect_sqlstate(&format!("PERFORM quota.release('{id}', '')"), "22023");
        assert_eq!(one::<i64>("SELECT held FROM quota.check('h7')"), Some(2));
        let (state, charged, ..) = settle(&format!(
            "SELECT state, charged, capped, used FROM quota.commit('{id}', 1, 'h7')"
        ));
        assert_eq!((state.as_str(), charged), ("committed", 1));
    }

    #[pg_test]
    fn commit_with_overage_charges_what_was_spent_and_denies_until_the_window_resets() {
        // free: 10,000 ai_tokens a month. A call held 100 tokens, the upstream reported 12,500.
        at("2026-03-10 12:00:00+00");
        let (_, id) = reserve("'ov1', 'ai_tokens', 100");
        let id = id.expect("a reservation id");
        let (state, charged, capped, used) = settle(&format!(
        "SELECT state, charged, capped, used FROM quota.commit('{id}', 12500, 'ov1', p_overage => true)"
    ));
        assert_eq!(
            (state.as_str(), charged, capped, used),
            ("committed", 12500, false, Some(12500))
        );
        assert_eq!(
            one::<String>("SELECT status || ' ' || remaining FROM quota.check('ov1', 'ai_tokens')")
                .as_deref(),
            Some("exceeded 0")
        );
        assert_eq!(
            one::<i64>("SELECT sum(amount)::bigint FROM quota.ledger WHERE user_id = 'ov1'"),
            Some(12500)
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.verify()"), Some(0));
        // The next call is denied (and so is a reserve) until the month resets; then the overage is gone.
        assert!(!consume("'ov1', 'ai_tokens', 1").0);
        assert!(!reserve("'ov1', 'ai_tokens', 1").0);
        at("2026-04-01 00:00:00+00");
        assert!(consume("'ov1', 'ai_tokens', 1").0);
        // Without overage the same commit is capped at what the limits allow, as before.
        at("2026-04-02 00:00:00+00");
        let (_, second) = reserve("'ov1', 'ai_tokens', 100");
        let second = second.expect("a reservation id");
        let (_, charged, capped, _) = settle(&format!(
            "SELECT state, charged, capped, used FROM quota.commit('{second}', 12500, 'ov1')"
        ));
        assert_eq!((charged, capped), (9999, true));
        expect_sqlstate(
            &format!("PERFORM quota.commit('{id}', 1, 'ov1', NULL)"),
            "22004",
        );
    }

    #[pg_test]
    fn settled_and_long_expired_reservations_are_purged_and_open_holds_never() {
        at("2026-03-01 12:00:00+00");
        let (_, settled) = reserve("'pr1', 'ai_tokens', 10");
        run(&format!("SELECT quota.commit('{}', 5)", settled.unwrap()));
        reserve("'pr1', 'ai_tokens', 10"); // expires 12:05, never settled
        at("2026-03-31 11:00:00+00");
        let (_, open) = reserve("'pr1', 'ai_tokens', 10");
        assert_eq!(
            one::<i64>("SELECT quota.purge_reservations('30 days')"),
            Some(0)
        );
        at("2026-04-01 12:30:00+00");
        // The settled one and the long-expired hold go; the open one (taken 31 March) stays, and so does its hold.
        assert_eq!(
            one::<i64>("SELECT quota.purge_reservations('30 days')"),
            Some(2)
        );
        assert_eq!(
            one::<String>("SELECT id::text FROM quota.reservations WHERE user_id = 'pr1'"),
            open
        );
        expect_sqlstate("PERFORM quota.purge_reservations('1 hour')", "22023");
        expect_sqlstate("PERFORM quota.purge_reservations(NULL)", "22004");
    }

    /// The tables reserve, commit and a keyed consume write check their values with domains (0.7.0), not table
    /// CHECK constraints, which PostgreSQL would parse again in every statement that writes them; the rules and
    /// their SQLSTATE (23514) are those of the constraints they replace, and the engine reads the columns back.
    #[pg_test]
    fn reservation_and_key_values_are_checked_by_domains() {
        let insert = |amount: &str, state: &str| {
            format!(
                "INSERT INTO quota.reservations (user_id, meter, amount, state, expires_at, created_at) \
                 VALUES ('d1', 'ai_tokens', {amount}, '{state}', now() + interval '1 minute', now())"
            )
        };
        expect_sqlstate(&insert("0", "held"), "23514");
        expect_sqlstate(&insert("-5", "held"), "23514");
        expect_sqlstate(&insert("5", "open"), "23514");
        run(&insert("5", "held"));
        expect_sqlstate(
            "UPDATE quota.reservations SET state = 'cancelled' WHERE user_id = 'd1'",
            "23514",
        );
        let key = |k: &str| {
            format!(
                "INSERT INTO quota.idempotency_keys (user_id, key, meter, amount, created_at) \
                 VALUES ('d1', '{k}', 'ai_tokens', 1, now())"
            )
        };
        expect_sqlstate(&key(""), "23514");
        expect_sqlstate(&key(&"k".repeat(301)), "23514");
        run(&key(&"k".repeat(300)));
        assert_eq!(
            one::<i64>(
                "SELECT count(*) FROM quota.reservations WHERE user_id = 'd1' AND state = 'held'"
            ),
            Some(1)
        );
        assert_eq!(
            one::<String>(
                "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint \
                 WHERE conrelid IN ('quota.reservations'::regclass, 'quota.idempotency_keys'::regclass) \
                   AND contype = 'c'"
            ),
            None
        );
        // The engine reads the domain columns as their base types: a reservation held, committed and read back.
        at("2026-03-10 12:00:00+00");
        let (allowed, id) = reserve("'d2', 'ai_tokens', 500");
        assert!(allowed);
        let id = id.unwrap();
        let (state, charged, ..) = settle(&format!(
            "SELECT state, charged, capped, used FROM quota.commit('{id}', 400)"
        ));
        assert_eq!((state.as_str(), charged), ("committed", 400));
    }

    /// A commit finds its reservation by id, in the plan PostgreSQL keeps for `close_reservation.sql` (the
    /// generic one): never through the partial index of open holds, which would visit every open hold of every
    /// user, and every settled one not yet vacuumed, on each commit.
    #[pg_test]
    fn a_commit_finds_its_reservation_by_id_however_many_there_are() {
        at("2026-03-10 12:00:00+00");
        // Many settled reservations and few open ones, as on a busy server between vacuums.
        run(
            "SELECT quota.commit((quota.reserve('g' || g, 'ai_tokens', 10)).reservation_id, 5) \
             FROM generate_series(1, 400) g",
        );
        run("ANALYZE quota.reservations");
        run("SET LOCAL plan_cache_mode = force_generic_plan");
        // Untyped: the statement's parameters take their types from where they are used.
        run(&format!(
            "PREPARE close_test AS {}",
            include_str!("../../statements/close_reservation.sql")
        ));
        let params = one::<i32>(
            "SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = 'close_test'",
        )
        .unwrap();
        let args = ["NULL", "NULL", "'committed'", "1", "1", "now()", "'held'"];
        let explain = format!(
            "EXPLAIN EXECUTE close_test({})",
            args[..params as usize].join(", ")
        );
        let plan: Vec<String> = Spi::connect(|c| {
            c.select(&explain, None, &[])
                .unwrap_or_else(|e| panic!("{explain}: {e}"))
                .map(|row| row.get::<String>(1).unwrap().unwrap_or_default())
                .collect()
        });
        let plan = plan.join("\n");
        run("DEALLOCATE close_test");
        assert!(
            plan.contains("using reservations_id_key") && !plan.contains("reservations_open_idx"),
            "close_reservation.sql's kept plan does not find the reservation by id:\n{plan}"
        );
    }

    #[pg_test]
    fn a_table_analysed_while_empty_is_still_searched_by_key() {
        at("2026-03-10 12:00:00+00");
        // A new deployment, or any table vacuumed or analysed while it held nothing: its statistics say empty,
        // and a plan built on them scans the table. Kept, such a plan would scan every settled reservation on
        // every commit until autovacuum's next ANALYZE.
        run("TRUNCATE quota.reservations");
        run("ANALYZE quota.reservations");
        // TRUNCATE and ANALYZE count scans of their own.
        let scans = || {
            one::<i64>(
                "SELECT seq_scan FROM pg_stat_xact_user_tables \
                 WHERE relid = 'quota.reservations'::regclass",
            )
            .unwrap_or_default()
        };
        let before = scans();
        run(
            "SELECT quota.commit((quota.reserve('g' || g, 'ai_tokens', 10)).reservation_id, 5) \
             FROM generate_series(1, 300) g",
        );
        assert_eq!(
            scans() - before,
            0,
            "commits scanned quota.reservations instead of finding each reservation by its id"
        );
    }
}
