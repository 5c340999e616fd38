//! A read-only database (a standby after failover, or `default_transaction_read_only`): a consume is
//! `503` with `Retry-After` and charges nothing, reads keep working, and once the database takes writes
//! again the pool drops its read-only connections and consumes pass.

use std::time::{Duration, Instant};

use aiquota_tests::http::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_only_database_is_503_with_retry_after_and_reads_keep_working() {
    let db = fresh_db("http_readonly").await;
    let admin = sql(&db).await;
    let t = user_token("rory");
    // The user exists before the database turns read-only.
    {
        let app = TestApp::start_on(db.clone(), test_config(&db)).await;
        assert_eq!(app.consume_status(&t).await, 200);
        app.stop().await;
    }
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {db} SET default_transaction_read_only = on"
        ))
        .await
        .unwrap();
    let app = TestApp::start_on(db.clone(), test_config(&db)).await;
    let res = app.consume(&t).await;
    assert_eq!(
        res.headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1"),
        "a read-only database is a 503 with Retry-After"
    );
    let p = problem(res, 503).await;
    assert_eq!(p["type"], "/problems/unavailable");
    let res = app.quota(&t).await;
    assert_eq!(res.status(), 200, "reads keep working");
    let q = body(res).await;
    assert_eq!(q["user"], "rory");

    // Writable again: the pool drops the read-only connections by itself.
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {db} RESET default_transaction_read_only"
        ))
        .await
        .unwrap();
    let started = Instant::now();
    let status = loop {
        let res = app.consume(&t).await;
        if res.status() == 200 || started.elapsed() > Duration::from_secs(10) {
            break res.status().as_u16();
        }
        assert_eq!(res.status(), 503);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("writable again after {:?}", started.elapsed());
    assert_eq!(status, 200, "consumes pass once the database is writable");
    assert_eq!(
        ledger_rows(&admin, "rory").await,
        2,
        "the refused consumes charged nothing"
    );
    app.stop().await;
}
