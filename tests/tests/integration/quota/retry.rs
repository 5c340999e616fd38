//! Transient failures: a consume whose connection dies mid-statement is retried only when it carries an
//! Idempotency-Key (the extension replays or evaluates it once); without a key it is a 503, never a second
//! charge.

use std::time::Duration;

use aiquota_tests::http::*;

/// Waits until an API backend is blocked on a lock, then terminates it; returns how many were killed.
async fn kill_waiting_backend(db: &tokio_postgres::Client) -> i64 {
    for _ in 0..200 {
        let n: i64 = db
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = current_database() AND usename = 'aiquota_api' AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_connection_retries_only_with_an_idempotency_key() {
    let app = TestApp::start("http_retry").await;
    let t = user_token("uma");
    assert_eq!(app.consume_status(&t).await, 200);
    let admin = sql(&app.db).await;

    // Without a key: the outcome is unknown to the API, so it must not try again.
    let locker = lock_counters(&app.db, "uma").await;
    let pending = {
        let req = app.post("/v1/quota/consume", &t);
        tokio::spawn(async move { req.send().await.unwrap() })
    };
    assert_eq!(kill_waiting_backend(&admin).await, 1);
    let res = pending.await.unwrap();
    assert!(res.headers().contains_key("retry-after"));
    problem(res, 503).await;

    // With a key: retried on a fresh connection, which waits for the lock and then succeeds once.
    let pending = {
        let req = app
            .post("/v1/quota/consume", &t)
            .header("idempotency-key", "retry-me");
        tokio::spawn(async move { req.send().await.unwrap() })
    };
    assert_eq!(kill_waiting_backend(&admin).await, 1);
    // The retry is now waiting on the same lock again.
    let mut waiting = 0;
    for _ in 0..200 {
        waiting = lock_waiters(&admin).await;
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(waiting, 1, "the keyed consume was retried");
    locker.release().await;
    let res = pending.await.unwrap();
    assert_eq!(res.status(), 200);
    let d = body(res).await;
    assert_eq!(d["used"], 2);
    assert_eq!(d["replayed"], false);

    let rows: i64 = admin
        .query_one(
            "SELECT count(*) FROM quota.ledger WHERE user_id = 'uma'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        rows, 2,
        "the unkeyed consume was not charged, the keyed one once"
    );
    let m = app.metrics().await;
    assert!(
        m.contains("aiquota_db_retries_total 1\n"),
        "one retry, on a live connection: {m}"
    );
    app.stop().await;
}
