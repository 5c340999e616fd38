//! 50 concurrent HTTP consumes for a user with 10 a day: exactly 10 are allowed, 40 denied, and the ledger
//! holds exactly 10 rows.

use aiquota_tests::http::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_consumes_allow_exactly_ten() {
    let app = TestApp::start("http_concurrency").await;
    let token = user_token("mike");
    let statuses = together(50, |i| {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/v1/quota/consume"),
            token.clone(),
        );
        async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&serde_json::json!({"metadata": {"i": i}}))
                .send()
                .await
                .unwrap();
            res.status().as_u16()
        }
    })
    .await;
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    let denied = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((allowed, denied), (10, 40), "{statuses:?}");
    let db = sql(&app.db).await;
    let rows: i64 = db
        .query_one(
            "SELECT count(*) FROM quota.ledger WHERE user_id = 'mike'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 10);
    assert_eq!(verify_rows(&db).await, 0);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("aiquota_decisions_total{outcome=\"allowed\"} 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("aiquota_decisions_total{outcome=\"denied\"} 40"),
        "{metrics}"
    );
    app.stop().await;
}
