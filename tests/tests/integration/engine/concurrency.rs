//! Proves, with real concurrent sessions, that quota.consume never overspends, never counts twice, never
//! deadlocks on a meter with several limits, and that one user's calls never wait for another's.

use std::time::{Duration, Instant};

use aiquota_tests::*;

#[test]
fn stress_200_concurrent_consumes_allow_exactly_10() {
    let db = fresh_db("stress");
    let results = concurrently(&db, 200, |c, _| {
        allowed(c, "SELECT allowed FROM quota.consume('hot-user')")
    });
    assert_eq!(results.iter().filter(|a| **a).count(), 10);
    let mut c = connect(&db);
    assert_eq!(
        count(
            &mut c,
            "SELECT used FROM quota.counters WHERE user_id = 'hot-user'"
        ),
        10
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT denied FROM quota.counters WHERE user_id = 'hot-user'"
        ),
        190
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM quota.ledger WHERE user_id = 'hot-user'"
        ),
        10
    );
    assert_consistent(&mut c);
}

#[test]
fn first_requests_race_creates_one_account_with_the_default_plan() {
    let db = fresh_db("first_race");
    let results = concurrently(&db, 100, |c, _| {
        allowed(c, "SELECT allowed FROM quota.consume('newcomer')")
    });
    assert_eq!(results.iter().filter(|a| **a).count(), 10);
    let mut c = connect(&db);
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM quota.accounts WHERE user_id = 'newcomer' AND plan = 'free'"
        ),
        1
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM quota.counters WHERE user_id = 'newcomer'"
        ),
        1
    );
    assert_consistent(&mut c);
}

#[test]
fn several_limits_on_one_meter_never_deadlock_or_overspend() {
    let db = fresh_db("multi_limit");
    let mut c = connect(&db);
    c.batch_execute(
        "SELECT quota.create_plan('tight', 'Tight');
         SELECT quota.set_plan_limit('tight', 'ai_requests', 'hour', 3);
         SELECT quota.set_plan_limit('tight', 'ai_requests', 'day', 10);
         SELECT quota.set_plan_limit('tight', 'ai_requests', 'month', 100);
         SELECT quota.assign_plan('team', 'tight');",
    )
    .unwrap();
    for hour in ["10", "11"] {
        let results = concurrently(&db, 50, move |c, _| {
            c.batch_execute(&format!("SET quota.now = '2026-03-10 {hour}:15:00+00'"))
                .unwrap();
            // Any error (a deadlock would be 40P01) fails the test through the panic.
            allowed(c, "SELECT allowed FROM quota.consume('team')")
        });
        assert_eq!(results.iter().filter(|a| **a).count(), 3, "hour {hour}");
    }
    assert_eq!(
        count(
            &mut c,
            "SELECT used FROM quota.counters WHERE user_id = 'team' AND period = 'day'"
        ),
        6
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT used FROM quota.counters WHERE user_id = 'team' AND period = 'month'"
        ),
        6
    );
    assert_consistent(&mut c);
}

#[test]
fn a_key_raced_20_times_charges_once_and_replays_19_times() {
    let db = fresh_db("idem_race");
    let results = concurrently(&db, 20, |c, _| {
        let row = c
            .query_one("SELECT allowed, used, replayed FROM quota.consume('k-user', 'ai_tokens', 5, 'same-key')", &[])
            .unwrap();
        (
            row.get::<_, bool>(0),
            row.get::<_, i64>(1),
            row.get::<_, bool>(2),
        )
    });
    assert!(
        results.iter().all(|(a, used, _)| *a && *used == 5),
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|(_, _, replayed)| *replayed).count(),
        19
    );
    let mut c = connect(&db);
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM quota.ledger WHERE user_id = 'k-user'"
        ),
        1
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT used FROM quota.counters WHERE user_id = 'k-user'"
        ),
        5
    );
    let err = c
        .query_one(
            "SELECT * FROM quota.consume('k-user', 'ai_tokens', 6, 'same-key')",
            &[],
        )
        .expect_err("a different request under the same key must fail");
    assert_eq!(err.code().map(|s| s.code()), Some("42710"));
}

#[test]
fn different_users_never_block_each_other() {
    let db = fresh_db("no_blocking");
    let mut a = connect(&db);
    let mut b = connect(&db);
    a.batch_execute("SELECT quota.consume('user-1')").unwrap(); // both accounts exist beforehand
    b.batch_execute("SELECT quota.consume('user-2')").unwrap();
    a.batch_execute("BEGIN; SELECT quota.consume('user-1');")
        .unwrap();
    // A wait on A's locks would end in 55P03 here; lock_timeout counts only time spent waiting on a lock,
    // so a slow host cannot fail this, only a lock shared between the two users can.
    b.batch_execute("SET lock_timeout = '5s'").unwrap();
    assert!(allowed(
        &mut b,
        "SELECT allowed FROM quota.consume('user-2')"
    ));
    assert!(allowed(
        &mut b,
        "SELECT allowed FROM quota.consume('brand-new-user')"
    ));
    a.batch_execute("COMMIT").unwrap();
}

/// Session B's consume must wait for A's open transaction on the same user, then decide on A's outcome.
fn blocked_until_a_finishes(a_finishes_with: &str, preload: i64) -> (bool, i64) {
    let db = fresh_db(&format!(
        "step_{}_{preload}",
        a_finishes_with.to_lowercase()
    ));
    let mut a = connect(&db);
    for _ in 0..preload {
        a.batch_execute("SELECT quota.consume('u')").unwrap();
    }
    a.batch_execute("BEGIN; SELECT quota.consume('u');")
        .unwrap();
    let b_db = db.clone();
    let b = std::thread::spawn(move || {
        let mut b = connect(&b_db);
        b.batch_execute("SET application_name = 'session_b'")
            .unwrap();
        let row = b
            .query_one("SELECT allowed, used FROM quota.consume('u')", &[])
            .unwrap();
        (row.get::<_, bool>(0), row.get::<_, i64>(1))
    });
    let mut observer = connect(&db);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = count(
            &mut observer,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'session_b' AND wait_event_type = 'Lock'",
        );
        if waiting == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "session B never waited for A's lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!b.is_finished(), "B finished while A still held the lock");
    a.batch_execute(a_finishes_with).unwrap();
    let result = b.join().unwrap();
    assert_consistent(&mut observer);
    result
}

#[test]
fn a_waiting_session_sees_the_committed_charge() {
    assert_eq!(blocked_until_a_finishes("COMMIT", 0), (true, 2));
    assert_eq!(blocked_until_a_finishes("COMMIT", 9), (false, 10));
}

#[test]
fn a_waiting_session_sees_nothing_of_a_rolled_back_charge() {
    assert_eq!(blocked_until_a_finishes("ROLLBACK", 0), (true, 1));
    assert_eq!(blocked_until_a_finishes("ROLLBACK", 9), (true, 10));
}

#[test]
fn mixed_random_traffic_keeps_counters_equal_to_the_ledger() {
    let db = fresh_db("invariant");
    concurrently(&db, 20, |c, worker| {
        // A small deterministic generator: no extra dependency, same traffic on every run.
        let mut x = (worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for i in 0..30 {
            let user = format!("mix-{}", next(4));
            let (meter, amount) = if next(2) == 0 {
                ("ai_requests", 1)
            } else {
                ("ai_tokens", 1 + next(900) as i64)
            };
            let key = if next(3) == 0 {
                format!("'k-{worker}-{}'", i % 5)
            } else {
                "NULL".to_string()
            };
            let sql =
                format!("SELECT allowed FROM quota.consume('{user}', '{meter}', {amount}, {key})");
            // A key reused with a different amount is refused (42710); anything else must succeed.
            if let Err(e) = c.query_one(&sql, &[]) {
                assert_eq!(e.code().map(|s| s.code()), Some("42710"), "{sql}: {e}");
            }
        }
    });
    let mut c = connect(&db);
    assert_consistent(&mut c);
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM quota.counters c WHERE c.used > (SELECT \"limit\" FROM quota.plan_limits \
             WHERE plan = 'free' AND meter = c.meter AND period = c.period)"
        ),
        0,
        "a counter went over its limit"
    );
}

#[test]
fn an_upgrade_committed_elsewhere_applies_to_the_very_next_call() {
    let db = fresh_db("upgrade");
    let mut app = connect(&db);
    for _ in 0..10 {
        app.batch_execute("SELECT quota.consume('buyer')").unwrap();
    }
    assert!(!allowed(
        &mut app,
        "SELECT allowed FROM quota.consume('buyer')"
    ));
    connect(&db)
        .batch_execute("SELECT quota.assign_plan('buyer', 'pro')")
        .unwrap();
    let row = app
        .query_one(
            "SELECT allowed, used, \"limit\", plan FROM quota.consume('buyer')",
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            row.get::<_, bool>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2),
            row.get::<_, String>(3)
        ),
        (true, 11, 50, "pro".to_string())
    );
}

#[test]
fn concurrent_reserves_and_consumes_never_overspend() {
    let db = fresh_db("reserve_race");
    // 40 sessions: half reserve 1 and commit 1, half consume 1, all at once, on a 10/day user.
    let results = concurrently(&db, 40, |c, i| {
        if i % 2 == 0 {
            let row = c
                .query_one("SELECT allowed, reservation_id::text FROM quota.reserve('shared', 'ai_requests', 1)", &[])
                .unwrap();
            let allowed: bool = row.get(0);
            if let Some(id) = row.get::<_, Option<String>>(1) {
                let charged: i64 = c
                    .query_one(
                        "SELECT charged FROM quota.commit($1::text::uuid, 1)",
                        &[&id],
                    )
                    .unwrap()
                    .get(0);
                assert_eq!(charged, 1);
            }
            allowed
        } else {
            allowed(c, "SELECT allowed FROM quota.consume('shared')")
        }
    });
    assert_eq!(results.iter().filter(|a| **a).count(), 10);
    let mut c = connect(&db);
    assert_eq!(
        count(
            &mut c,
            "SELECT used FROM quota.counters WHERE user_id = 'shared'"
        ),
        10
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT held FROM quota.counters WHERE user_id = 'shared'"
        ),
        0
    );
    assert_consistent(&mut c);
}

#[test]
fn concurrent_consumes_spend_credits_exactly_once() {
    let db = fresh_db("credit_race");
    connect(&db)
        .batch_execute(
            "SELECT quota.grant('topped', 'ai_requests', 3, now() + interval '1 day', 'promo'); \
             SELECT quota.grant('topped', 'ai_requests', 2)",
        )
        .unwrap();
    // 10 from the free plan's day, then 5 from credits: 15 of 60, however the calls interleave.
    let results = concurrently(&db, 60, |c, _| {
        allowed(c, "SELECT allowed FROM quota.consume('topped')")
    });
    assert_eq!(results.iter().filter(|a| **a).count(), 15);
    let mut c = connect(&db);
    assert_eq!(
        count(&mut c, "SELECT sum(remaining)::bigint FROM quota.grants"),
        0
    );
    assert_eq!(
        count(&mut c, "SELECT sum(credits)::bigint FROM quota.ledger"),
        5
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT sum(requests)::bigint FROM quota.usage_daily WHERE user_id = 'topped'"
        ),
        15
    );
    assert_consistent(&mut c);
}

#[test]
fn concurrent_calls_never_exceed_the_burst() {
    let db = fresh_db("burst_race");
    connect(&db)
        .batch_execute(
            "SELECT quota.assign_plan('bursty', 'pro'); \
             SELECT quota.set_plan_burst('pro', 'ai_requests', 1, '1 hour', 4)",
        )
        .unwrap();
    let results = concurrently(&db, 40, |c, _| {
        allowed(c, "SELECT allowed FROM quota.consume('bursty')")
    });
    assert_eq!(results.iter().filter(|a| **a).count(), 4);
    let mut c = connect(&db);
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM quota.ledger WHERE user_id = 'bursty'"
        ),
        4
    );
    assert_consistent(&mut c);
}

#[test]
fn plan_changes_and_a_day_change_under_load_keep_counters_rollup_and_solo_exact() {
    let db = fresh_db("solo_stress");
    connect(&db)
        .batch_execute(
            "INSERT INTO quota.plans (key, name) VALUES ('stress_one', 'One window'), ('stress_two', 'Two');
             INSERT INTO quota.plan_limits (plan, meter, period, \"limit\") VALUES
                 ('stress_one', 'ai_requests', 'day', 100000),
                 ('stress_two', 'ai_requests', 'day', 100000), ('stress_two', 'ai_requests', 'month', 100000);
             INSERT INTO quota.accounts (user_id, plan) SELECT 'solo-' || i, 'stress_one' FROM generate_series(0, 3) i;
",
        )
        .unwrap();
    // Worker 0 moves users between a one-window and a two-window plan (a move to two windows makes the next call
    // create a month row beside the day row the others charge on the fast path); the rest consume, half of them
    // just before and half just after a UTC midnight, so counter rows fold their carried rollup while others
    // charge them. The users' first rows are created under this churn too, by calls that disagree on the plan
    // (creation_turn.rs: without giving the turn back, such calls deadlocked in about half of the runs).
    concurrently(&db, 12, |c, worker| {
        let mut x = (worker as u64 + 7).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for i in 0..40 {
            let user = format!("solo-{}", next(4));
            if worker == 0 {
                c.batch_execute(&format!(
                    "UPDATE quota.accounts SET plan = CASE plan WHEN 'stress_one' THEN 'stress_two' \
                     ELSE 'stress_one' END WHERE user_id = '{user}'"
                ))
                .unwrap();
                continue;
            }
            let now = if i < 20 {
                "2026-03-09 23:59:59+00"
            } else {
                "2026-03-10 00:00:01+00"
            };
            c.batch_execute(&format!("SET quota.now = '{now}'"))
                .unwrap();
            let sql = format!("SELECT allowed FROM quota.consume('{user}', 'ai_requests', 1)");
            assert!(allowed(c, &sql), "{sql} was denied");
        }
    });
    let mut c = connect(&db);
    assert_consistent(&mut c);
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM quota.ledger"),
        11 * 40,
        "every call charged once"
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM (SELECT user_id, (created_at AT TIME ZONE 'UTC')::date AS day, meter, \
             sum(amount) AS amount, count(*) AS requests FROM quota.ledger GROUP BY 1, 2, 3) l \
             FULL JOIN quota.usage_daily u USING (user_id, day, meter) \
             WHERE l.amount IS DISTINCT FROM u.amount OR l.requests IS DISTINCT FROM u.requests"
        ),
        0,
        "quota.usage_daily differs from the ledger's daily sums"
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT count(*) FROM quota.counters c WHERE c.solo AND EXISTS (SELECT 1 FROM quota.counters o \
             WHERE o.user_id = c.user_id AND o.meter = c.meter AND o.period <> c.period)"
        ),
        0,
        "a counter row is marked solo beside another row of its meter"
    );
}

#[test]
fn a_prepared_transaction_keeps_the_turn_to_create_rows_until_it_commits() {
    let db = fresh_db("prepared_turn");
    let mut admin = connect(&db);
    admin
        .batch_execute(
            "INSERT INTO quota.plans (key, name) VALUES ('turn_two', 'Two windows');
             INSERT INTO quota.plan_limits (plan, meter, period, \"limit\") VALUES
                 ('turn_two', 'ai_requests', 'day', 100), ('turn_two', 'ai_requests', 'month', 100);
             INSERT INTO quota.accounts (user_id, plan) VALUES ('turn-2pc', 'free');",
        )
        .unwrap();
    // A failed run must not leave the prepared transaction behind: it would keep the database from being dropped.
    struct Prepared(String);
    impl Drop for Prepared {
        fn drop(&mut self) {
            // (After COMMIT PREPARED this fails with "does not exist", which is the good case.)
            if let Ok(mut c) = std::panic::catch_unwind(|| connect(&self.0)) {
                let _ = c.batch_execute("ROLLBACK PREPARED 'turn-2pc'");
            }
        }
    }
    let _cleanup = Prepared(db.clone());
    // The first call creates the day row (the only one: solo) and is prepared; its session then goes away, as a
    // transaction manager's may. Meanwhile the plan gains a month limit.
    {
        let mut first = connect(&db);
        first
            .batch_execute("BEGIN; SELECT quota.consume('turn-2pc');")
            .unwrap();
        admin
            .batch_execute("UPDATE quota.accounts SET plan = 'turn_two' WHERE user_id = 'turn-2pc'")
            .unwrap();
        first
            .batch_execute("PREPARE TRANSACTION 'turn-2pc'")
            .unwrap();
    }
    // A call on the new plan must wait for the prepared transaction's turn, then see its day row: both rows
    // charged, neither left solo.
    let db2 = db.clone();
    let second = std::thread::spawn(move || {
        let mut c = connect(&db2);
        allowed(&mut c, "SELECT allowed FROM quota.consume('turn-2pc')")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !second.is_finished(),
        "the second call did not wait for the prepared transaction"
    );
    admin.batch_execute("COMMIT PREPARED 'turn-2pc'").unwrap();
    assert!(second.join().unwrap());
    let rows: Vec<(String, i64, bool)> = admin
        .query(
            "SELECT period::text, used, solo FROM quota.counters WHERE user_id = 'turn-2pc' ORDER BY period",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("day".to_string(), 2, false),
            ("month".to_string(), 2, false)
        ]
    );
    assert_consistent(&mut admin);
}
