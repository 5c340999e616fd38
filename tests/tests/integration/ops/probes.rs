//! Probes, metrics, the OpenAPI document, request ids, and graceful shutdown.

use std::time::Duration;

use aiquota_tests::http::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_ready_metrics_openapi() {
    let app = TestApp::start("http_ops").await;
    let res = app.get_anonymous("/healthz").await;
    assert_eq!(res.status(), 200);
    let res = app.get_anonymous("/readyz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["extension"], env!("CARGO_PKG_VERSION"));

    // Request ids: generated, echoed, and kept when the client sends one.
    let res = app.get_anonymous("/healthz").await;
    assert!(res.headers().contains_key("x-request-id"));
    let res = app
        .client
        .get(app.url("/nowhere"))
        .header("x-request-id", "req-abc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "req-abc");
    let p = problem(res, 404).await;
    assert_eq!(p["request_id"], "req-abc");

    let t = user_token("nina");
    for _ in 0..3 {
        app.consume(&t).await;
    }
    app.get("/v1/admin/users/nina", &t).send().await.unwrap();
    let res = app.get_anonymous("/metrics").await;
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let m = res.text().await.unwrap();
    for needle in [
        "aiquota_http_requests_total{method=\"POST\",route=\"/v1/quota/consume\",status=\"200\"} 3",
        "aiquota_http_requests_total{method=\"GET\",route=\"/v1/admin/users/{id}\",status=\"403\"} 1",
        "aiquota_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
        "aiquota_http_request_duration_seconds_bucket{route=\"/v1/quota/consume\",le=\"+Inf\"} 3",
        "aiquota_decisions_total{outcome=\"allowed\"} 3",
        "aiquota_db_pool_connections{state=\"max\"}",
    ] {
        assert!(m.contains(needle), "missing {needle} in\n{m}");
    }
    assert!(!m.contains("nina"), "raw paths must not be labels");

    let doc = app.openapi().await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/quota",
        "/v1/quota/consume",
        "/v1/quota/events",
        "/v1/quota/reservations",
        "/v1/quota/reservations/{id}/commit",
        "/v1/quota/reservations/{id}/release",
        "/v1/admin/users/{id}",
        "/v1/admin/users/{id}/plan",
        "/v1/admin/users/{id}/limits",
        "/v1/admin/users/{id}/reset",
        "/v1/admin/users/{id}/grants",
        "/v1/admin/analytics",
        "/v1/admin/top-users",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_fails_without_the_extension() {
    let db = fresh_db("http_ops_noext").await;
    let su = sql(&db).await;
    su.batch_execute("DROP EXTENSION aiquota CASCADE")
        .await
        .unwrap();
    drop(su);
    let app = TestApp::start_on(db, test_config("t_http_ops_noext")).await;
    let res = app.get_anonymous("/readyz").await;
    let p = problem(res, 503).await;
    assert!(
        p["detail"].as_str().unwrap().contains("not installed"),
        "{p}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let mut app = TestApp::start("http_shutdown").await;
    let t = user_token("oscar");
    assert_eq!(app.consume_status(&t).await, 200);

    // Hold oscar's counter row so the next consume waits inside the database.
    let locker = lock_counters(&app.db, "oscar").await;
    let in_flight = {
        let req = app.post("/v1/quota/consume", &t);
        tokio::spawn(async move { req.send().await })
    };
    // Wait until the request is blocked in PostgreSQL.
    let watcher = sql(&app.db).await;
    for _ in 0..100 {
        let n: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped = app.begin_shutdown();
    let stopped = tokio::spawn(stopped);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stopped.is_finished(),
        "shutdown waits for the in-flight request"
    );
    // New connections are refused once shutdown has begun.
    let late = reqwest::Client::new().get(app.url("/healthz")).send().await;
    assert!(late.is_err(), "accepted a request after shutdown began");

    locker.release().await;
    let res = in_flight
        .await
        .unwrap()
        .expect("the in-flight request got its response");
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["used"], 2);
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("shutdown completes")
        .unwrap()
        .expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_database_is_503_with_retry_after() {
    let db = fresh_db("http_ops_unreachable").await;
    let mut config = test_config(&db);
    // Nothing listens on port 1.
    config.database_url = aiquota_api::config::Secret::new("postgres://aiquota_api@127.0.0.1:1/x");
    let app = TestApp::start_on(db, config).await;
    let res = app.quota(&user_token("quinn")).await;
    assert_eq!(res.headers()["retry-after"], "1");
    let p = problem(res, 503).await;
    assert_eq!(p["type"], "/problems/unavailable");
    assert!(
        !p["detail"].as_str().unwrap().contains("127.0.0.1"),
        "no connection details: {p}"
    );
    let res = app.consume(&user_token("quinn")).await;
    problem(res, 503).await;
    problem(app.get_anonymous("/readyz").await, 503).await;
    let m = app.metrics().await;
    assert!(
        !m.contains("aiquota_db_retries_total 0"),
        "failed connects are retried:\n{m}"
    );
    assert_eq!(app.get_anonymous("/healthz").await.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_over_the_timeout_is_503_and_charges_nothing() {
    let app = TestApp::start_with("http_ops_timeout", |c| {
        c.request_timeout = Duration::from_secs(1)
    })
    .await;
    let t = user_token("rita");
    assert_eq!(app.consume_status(&t).await, 200);
    let locker = lock_counters(&app.db, "rita").await;
    let started = std::time::Instant::now();
    let res = app.consume(&t).await;
    // The lock is held until release: only the timeout can have answered, and well before a noisy host's
    // worst case.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(res.headers().contains_key("retry-after"));
    problem(res, 503).await;
    locker.release().await;
    // The abandoned statement was cancelled by the server, not charged later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let db = sql(&app.db).await;
    let rows: i64 = db
        .query_one(
            "SELECT count(*) FROM quota.ledger WHERE user_id = 'rita'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    // The pool is healthy afterwards.
    let res = app.consume(&t).await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["used"], 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_privilege_is_a_logged_500_without_details() {
    let db = fresh_db("http_ops_noadmin").await;
    let su = sql(&db).await;
    // A login role that may use quota_api but not quota_admin: a deployment mistake.
    su.batch_execute(
        "DO $$ BEGIN CREATE ROLE aiquota_api_noadmin LOGIN NOINHERIT; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
         GRANT quota_api TO aiquota_api_noadmin",
    )
    .await
    .unwrap();
    let mut config = test_config(&db);
    config.database_url = aiquota_api::config::Secret::new(format!(
        "{} user=aiquota_api_noadmin",
        aiquota_tests::url(&db)
    ));
    let app = TestApp::start_on(db, config).await;
    // End-user routes work...
    assert_eq!(app.consume_status(&user_token("sam")).await, 200);
    // ...admin routes fail with 42501, answered as a generic 500.
    let res = app
        .get("/v1/admin/users/sam", &admin_token("admin"))
        .send()
        .await
        .unwrap();
    let p = problem(res, 500).await;
    assert_eq!(p["type"], "/problems/internal");
    assert!(p.get("detail").is_none(), "no database text: {p}");
    app.stop().await;
}
