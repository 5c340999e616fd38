//! The metering proxy takes its holds like a consume: within the request deadline and in one of the user's
//! fair turns, so a user whose counter rows are locked cannot tie up the pool with proxied calls, and every
//! other user's calls still pass.

use std::time::Duration;

use aiquota_tests::{http::*, proxy::*};
use futures_util::future::join_all;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxied_calls_of_a_locked_user_cannot_starve_the_others() {
    let ProxyApp {
        upstream: _upstream,
        app,
    } = ProxyApp::start_with("proxy_fair", openai_config, |_, c| {
        // Long enough that a starved call (one that waits for the hot user's calls to time out) cannot be
        // mistaken for a slow one on a noisy host.
        c.request_timeout = Duration::from_secs(6);
        c.pool_size = 4;
    })
    .await;
    let hot = user_token("hot");
    assert_eq!(app.consume_status(&hot).await, 200);
    let locked = lock_counters(&app.db, "hot").await;
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 1,
        "messages": [{"role": "user", "content": "hi"}]});
    let hot_calls: Vec<_> = (0..12)
        .map(|_| {
            let req = app.post("/v1/proxy/chat/completions", &hot).json(&body);
            tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let others = (0..12).map(|i| {
        let req = app
            .post("/v1/quota/consume", &user_token(&format!("cool{i}")))
            .json(&json!({"metadata": {"i": i}}));
        async move {
            let started = std::time::Instant::now();
            let status = req.send().await.unwrap().status().as_u16();
            (status, started.elapsed())
        }
    });
    let answers = join_all(others).await;
    locked.release().await;
    let hot_statuses: Vec<u16> = join_all(hot_calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(
        answers
            .iter()
            .all(|(s, t)| *s == 200 && *t < Duration::from_millis(3500)),
        "every other user's consume passes long before the hot user's calls time out: {answers:?} (hot: {hot_statuses:?})"
    );
    for s in &hot_statuses {
        assert!(
            [200, 403, 429, 503].contains(s),
            "hot user: {hot_statuses:?}"
        );
    }
    assert_eq!(verify_rows(&sql(&app.db).await).await, 0);
}
