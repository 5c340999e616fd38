//! The proxy charges what the upstream really spends: the hold covers the prompt, the commit charges the
//! reported usage even past the limit (so the next call is denied), a stream is asked for its usage and one
//! without a usage report is charged from its output, and a client that leaves before the response head
//! still pays for the generation the upstream finished.

use std::time::Duration;

use aiquota_tests::{http::*, proxy::*};
use serde_json::json;

const CHAT: &str = "/v1/proxy/chat/completions";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_large_prompts_are_charged_what_the_upstream_reports_and_the_eleventh_is_denied(
) {
    let ProxyApp { upstream, app } = ProxyApp::start("proxy_spend_concurrent").await;
    let token = user_token("sam");
    // About 800 tokens held each (2,400 bytes / 3 + max_tokens 1): all ten fit the free plan's 10,000 a
    // month together, but the upstream reports 2,000 prompt tokens for each.
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 1,
        "messages": [{"role": "user", "content": "lorem ipsum ".repeat(200)}]});
    let statuses = together(10, |_| {
        let (client, url, token, body) = (
            app.client.clone(),
            app.url(CHAT),
            token.clone(),
            body.clone(),
        );
        async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .header("x-fake-usage", "2000,1")
                // Every hold is taken before the first answer is charged.
                .header("x-fake-head-delay-ms", "500")
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            res.bytes().await.unwrap();
            status
        }
    })
    .await;
    for status in statuses {
        assert_eq!(status, 200);
    }
    let db = sql(&app.db).await;
    let rows = settled(&db, "sam").await;
    let tokens: Vec<_> = rows.iter().filter(|r| r.0 == "ai_tokens").collect();
    assert_eq!(tokens.len(), 10);
    for r in &tokens {
        assert_eq!(r.2, prompt_hold(&body) + 1, "the hold covers the prompt");
        assert_eq!(
            (r.3, r.4),
            (Some(2001), Some(2001)),
            "charged in full: {r:?}"
        );
    }
    assert_eq!(used(&db, "sam", "ai_tokens").await, 10 * 2001);
    // The overage is on the books: the 11th call is denied before the upstream.
    let res = app
        .post(CHAT, &token)
        .header("x-fake-usage", "2000,1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(upstream.count(), 10);
    let bad: i64 = db
        .query_one("SELECT count(*) FROM quota.verify()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(bad, 0, "counters agree with the ledger");
    // Tokens alone deny too: the month's allowance is spent whatever ai_requests says.
    db.execute(
        "INSERT INTO quota.user_limits (user_id, meter, period, \"limit\") VALUES ('sam', 'ai_requests', 'day', 100)",
        &[],
    )
    .await
    .unwrap();
    let res = app.post_json(CHAT, &token, &body).await;
    let p = problem(res, 403).await;
    assert_eq!(p["meter"], "ai_tokens", "{p}");
    assert_eq!(upstream.count(), 10);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_is_asked_for_its_usage_and_one_without_is_charged_from_its_output() {
    let ProxyApp { upstream, app } = ProxyApp::start("proxy_spend_stream").await;
    let token = user_token("tara");
    let db = sql(&app.db).await;
    // The client does not ask for usage; the proxy does, so the real usage (10 + 20) is charged.
    let body = json!({"model": "m", "stream": true, "max_tokens": 500,
        "messages": [{"role": "user", "content": "Say hello"}]});
    let res = app.post_json(CHAT, &token, &body).await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap();
    settled(&db, "tara").await;
    assert_eq!(used(&db, "tara", "ai_tokens").await, 30);
    assert_eq!(
        upstream.seen()[0].body["stream_options"]["include_usage"],
        true
    );
    // An upstream that reports nothing: the prompt estimate plus the streamed text ("Hello world": 11
    // bytes, 4 tokens), not a flat estimate.
    let res = app
        .post(CHAT, &token)
        .header("x-fake-no-usage", "1")
        .json(&body)
        .send()
        .await
        .unwrap();
    res.text().await.unwrap();
    let rows = settled(&db, "tara").await;
    let last = rows.iter().rev().find(|r| r.0 == "ai_tokens").unwrap();
    assert_eq!(last.4, Some(prompt_hold(&body) + 4), "{rows:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_disconnects_before_the_head_is_still_charged() {
    let ProxyApp { upstream, app } = ProxyApp::start("proxy_spend_gone").await;
    let token = user_token("uma");
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let body =
        json!({"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]});
    let gone = impatient
        .post(app.url(CHAT))
        .bearer_auth(&token)
        .header("x-fake-head-delay-ms", "1000")
        .header("x-fake-usage", "15,25")
        .json(&body)
        .send()
        .await;
    assert!(gone.is_err(), "the client gave up before the head");
    let db = sql(&app.db).await;
    let rows = settled(&db, "uma").await;
    assert_eq!(rows, committed(prompt_hold(&body) + 50, 40));
    assert_eq!(upstream.count(), 1);
    app.stop().await;
}
