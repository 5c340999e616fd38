//! The per-backend configuration cache of the fast paths (extension/src/meter_cache.rs) never outlives a change:
//! sessions that each hold a cached plan see every kind of configuration change on their very next call, inside
//! a long transaction too, and nothing read in a rolled-back transaction or under REPEATABLE READ is kept.

use aiquota_tests::*;

/// The limit of the binding window of one consume of `ai_requests` for `user`.
fn limit(c: &mut Client, user: &str) -> i64 {
    c.query_one(
        "SELECT \"limit\" FROM quota.consume($1, 'ai_requests', 1)",
        &[&user],
    )
    .unwrap_or_else(|e| panic!("consume for {user}: {e}"))
    .get(0)
}

/// Two sessions that have each served `user` a few times (so each holds the user's configuration).
fn two_warm_sessions(db: &str, user: &str) -> (Client, Client) {
    let (mut a, mut b) = (connect(db), connect(db));
    for _ in 0..3 {
        assert_eq!(limit(&mut a, user), 10);
        assert_eq!(limit(&mut b, user), 10);
    }
    (a, b)
}

#[test]
fn two_sessions_with_a_cached_plan_see_a_plan_change_on_their_next_call() {
    let db = fresh_db("cache_plan_change");
    let (mut a, mut b) = two_warm_sessions(&db, "carol");
    connect(&db)
        .batch_execute("SELECT quota.assign_plan('carol', 'pro')")
        .unwrap();
    assert_eq!(limit(&mut a, "carol"), 50, "session a kept the old plan");
    assert_eq!(limit(&mut b, "carol"), 50, "session b kept the old plan");
    assert_consistent(&mut a);
}

#[test]
fn cached_sessions_see_limit_override_and_plan_limit_changes_at_once() {
    let db = fresh_db("cache_limits");
    let (mut a, mut b) = two_warm_sessions(&db, "dave");
    let mut admin = connect(&db);
    admin
        .batch_execute("SELECT quota.set_limit('dave', 'ai_requests', 'day', 25)")
        .unwrap();
    assert_eq!(limit(&mut a, "dave"), 25);
    assert_eq!(limit(&mut b, "dave"), 25);
    admin
        .batch_execute(
            "DELETE FROM quota.user_limits WHERE user_id = 'dave';
             SELECT quota.set_plan_limit('free', 'ai_requests', 'day', 12)",
        )
        .unwrap();
    assert_eq!(limit(&mut a, "dave"), 12);
    assert_eq!(limit(&mut b, "dave"), 12);
}

#[test]
fn a_burst_limit_added_to_a_cached_plan_applies_on_the_next_call() {
    let db = fresh_db("cache_burst");
    let (mut a, mut b) = two_warm_sessions(&db, "erin");
    connect(&db)
        .batch_execute("SELECT quota.set_plan_burst('free', 'ai_requests', 1, '1 hour', 1)")
        .unwrap();
    // One call passes the new burst limit (erin has not used it yet), the next one is refused by it.
    let allowed = |c: &mut Client| -> bool {
        c.query_one("SELECT allowed FROM quota.consume('erin')", &[])
            .unwrap()
            .get(0)
    };
    assert!(allowed(&mut a));
    assert!(!allowed(&mut b), "session b ignored the burst limit");
    assert!(!allowed(&mut a), "session a ignored the burst limit");
}

#[test]
fn a_change_committed_during_a_long_transaction_applies_to_its_next_call() {
    let db = fresh_db("cache_long_tx");
    let (mut a, _b) = two_warm_sessions(&db, "frank");
    a.batch_execute("BEGIN").unwrap();
    assert_eq!(limit(&mut a, "frank"), 10);
    connect(&db)
        .batch_execute("SELECT quota.assign_plan('frank', 'pro')")
        .unwrap();
    assert_eq!(limit(&mut a, "frank"), 50);
    a.batch_execute("COMMIT").unwrap();
}

#[test]
fn what_a_rolled_back_transaction_read_is_forgotten() {
    let db = fresh_db("cache_rollback");
    let mut a = connect(&db);
    // An account created (pro) and cached inside a transaction that rolls back (a plain INSERT, as a new user's
    // first call makes: no invalidation is sent) ...
    a.batch_execute("BEGIN; INSERT INTO quota.accounts (user_id, plan) VALUES ('gina', 'pro')")
        .unwrap();
    assert_eq!(limit(&mut a, "gina"), 50);
    assert_eq!(limit(&mut a, "gina"), 50);
    a.batch_execute("ROLLBACK").unwrap();
    // ... and then created for real on another plan, by another plain INSERT.
    connect(&db)
        .batch_execute("INSERT INTO quota.accounts (user_id, plan) VALUES ('gina', 'free')")
        .unwrap();
    assert_eq!(limit(&mut a, "gina"), 10, "the rolled-back plan was kept");
    assert_eq!(limit(&mut a, "gina"), 10);
}

#[test]
fn repeatable_read_neither_uses_nor_fills_the_cache() {
    let db = fresh_db("cache_repeatable_read");
    let (mut a, _b) = two_warm_sessions(&db, "hank");
    a.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
        .unwrap();
    connect(&db)
        .batch_execute("SELECT quota.assign_plan('hank', 'pro')")
        .unwrap();
    // The transaction's snapshot predates the change: it decides on the old plan, as any read in it would ...
    assert_eq!(limit(&mut a, "hank"), 10);
    a.batch_execute("COMMIT").unwrap();
    // ... and what it read there is not kept for later transactions.
    assert_eq!(limit(&mut a, "hank"), 50);
    assert_consistent(&mut a);
}

#[test]
fn a_session_with_a_cached_plan_reports_status_and_check_on_the_new_plan() {
    let db = fresh_db("cache_status");
    let (mut a, _b) = two_warm_sessions(&db, "ivy");
    let status_limit = |c: &mut Client| -> i64 {
        c.query_one(
            "SELECT \"limit\" FROM quota.status('ivy') WHERE meter = 'ai_requests'",
            &[],
        )
        .unwrap()
        .get(0)
    };
    let check_limit = |c: &mut Client| -> i64 {
        c.query_one(
            "SELECT \"limit\" FROM quota.check('ivy', 'ai_requests', 1)",
            &[],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(status_limit(&mut a), 10);
    assert_eq!(check_limit(&mut a), 10);
    connect(&db)
        .batch_execute("SELECT quota.assign_plan('ivy', 'pro')")
        .unwrap();
    assert_eq!(status_limit(&mut a), 50, "status kept the old plan");
    assert_eq!(check_limit(&mut a), 50, "check kept the old plan");
}
