//! The outcome of a consume is certain to the client: a `503` with `Retry-After` is never charged (the
//! statement was cancelled, or never sent), a connection lost mid-statement is `outcome-unknown` without
//! `Retry-After`, and the `Idempotency-Key` the API returns with every consume settles it on a retry.

use std::time::Duration;

use aiquota_tests::{cut, http::*};
use futures_util::future::join_all;

/// Waits until `n` API backends wait on a lock.
async fn wait_for_lock_waiters(db: &tokio_postgres::Client, n: i64) {
    for _ in 0..250 {
        if lock_waiters(db).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} API backends never waited on the lock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_503_is_charged_when_a_locked_row_outlasts_the_request_timeout() {
    locked_row_outlasts_the_timeout("http_outcome_locked", 2).await;
}

/// The same with no per-user limit in the way: all 40 go for the 16 connections; those that get one are
/// cancelled at the deadline, the others give up waiting for one, and neither kind may be charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_503_is_charged_after_a_long_pool_wait_either() {
    locked_row_outlasts_the_timeout("http_outcome_pool_wait", 64).await;
}

async fn locked_row_outlasts_the_timeout(name: &str, per_user: usize) {
    let app = TestApp::start_with(name, |c| {
        c.request_timeout = Duration::from_secs(1);
        c.user_concurrency = per_user;
    })
    .await;
    let t = user_token("olga");
    assert_eq!(app.consume_status(&t).await, 200);
    let admin = sql(&app.db).await;
    let locked = lock_counters(&app.db, "olga").await;
    // 40 consumes at once, more than the pool holds; the row stays locked for 1.5 timeouts, so statements
    // that got a connection late are still running when it is released.
    let calls = (0..40).map(|i| {
        let req = app
            .post("/v1/quota/consume", &t)
            .json(&serde_json::json!({"metadata": {"i": i}}));
        async move {
            let res = req.send().await.unwrap();
            let retry_after = res.headers().contains_key("retry-after");
            let status = res.status().as_u16();
            let kind = body(res).await["type"].as_str().unwrap_or("").to_string();
            (status, retry_after, kind)
        }
    });
    let unlock = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        locked.release().await;
    };
    let (answers, ()) = tokio::join!(join_all(calls), unlock);
    // Anything still running on the server would commit now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let allowed = answers.iter().filter(|a| a.0 == 200).count() as i64;
    let retryable = answers
        .iter()
        .filter(|a| a.0 == 503 && a.1 && a.2 == "/problems/unavailable")
        .count();
    let rows = ledger_rows(&admin, "olga").await;
    println!(
        "allowed {allowed}, 503 with Retry-After {retryable}, ledger rows {rows} (1 before the lock)"
    );
    assert!(
        answers.iter().all(|a| a.0 == 200 || (a.0 == 503 && a.1)),
        "only 200 or 503 + Retry-After: {answers:?}"
    );
    assert!(
        retryable >= 20,
        "most waited past the deadline: {answers:?}"
    );
    assert_eq!(
        rows,
        1 + allowed,
        "{} of the 503s were charged",
        rows - 1 - allowed
    );
    // The pool is healthy afterwards.
    assert_eq!(app.consume_status(&t).await, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_consume_returns_an_idempotency_key_that_replays_it() {
    let app = TestApp::start("http_outcome_keys").await;
    let t = user_token("omar");
    let res = app.consume(&t).await;
    assert_eq!(res.status(), 200);
    let key = res.headers()["idempotency-key"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!key.is_empty());
    let again = app.consume(&t).await;
    assert_ne!(
        again.headers()["idempotency-key"].to_str().unwrap(),
        key,
        "a new key per request"
    );
    let replay = app
        .post("/v1/quota/consume", &t)
        .header("idempotency-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.headers()["idempotency-key"].to_str().unwrap(), key);
    let d = body(replay).await;
    assert_eq!(d["replayed"], true);
    assert_eq!(d["used"], 1, "the replay returns the first decision");
    let db = sql(&app.db).await;
    assert_eq!(ledger_rows(&db, "omar").await, 2);
    // A denial carries the key as well.
    let res = app
        .post_json("/v1/quota/consume", &t, &serde_json::json!({"amount": 100}))
        .await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("idempotency-key"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_lost_mid_statement_is_outcome_unknown_and_its_key_settles_it() {
    let db = fresh_db("http_outcome_lost").await;
    let link = cut::Cut::start(cut::pg_port()).await;
    let mut config = test_config(&db);
    config.database_url = aiquota_api::config::Secret::new(format!(
        "host=127.0.0.1 port={} user=aiquota_api dbname={db}",
        link.port
    ));
    let app = TestApp::start_on(db, config).await;
    let t = user_token("otto");
    assert_eq!(app.consume_status(&t).await, 200);
    let admin = sql(&app.db).await;
    let locked = lock_counters(&app.db, "otto").await;
    let pending = {
        let req = app.post("/v1/quota/consume", &t);
        tokio::spawn(async move { req.send().await.unwrap() })
    };
    wait_for_lock_waiters(&admin, 1).await;
    // The network between the API and PostgreSQL fails while the statement waits: the backend lives on.
    link.sever();
    let res = pending.await.unwrap();
    assert!(
        !res.headers().contains_key("retry-after"),
        "a blind retry could charge twice: {:?}",
        res.headers()
    );
    let key = res
        .headers()
        .get("idempotency-key")
        .expect("the key to settle the outcome with")
        .to_str()
        .unwrap()
        .to_string();
    let p = problem(res, 503).await;
    assert_eq!(p["type"], "/problems/outcome-unknown", "{p}");
    // The orphaned statement may commit once the lock goes (the backend has the whole request): the client
    // cannot know, and must not be told to retry blindly.
    locked.release().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let orphan_charged = ledger_rows(&admin, "otto").await == 2;
    println!("the orphaned statement was charged: {orphan_charged}");
    // The retry with the returned key settles it: the first decision if it was charged, a fresh one if not.
    let retry = app
        .post("/v1/quota/consume", &t)
        .header("idempotency-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    let d = body(retry).await;
    assert_eq!(d["replayed"], orphan_charged);
    assert_eq!(d["used"], 2);
    assert_eq!(ledger_rows(&admin, "otto").await, 2, "charged once");
    app.stop().await;
}
