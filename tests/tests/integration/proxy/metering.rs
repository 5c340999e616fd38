//! The metering proxy against a local fake AI runtime: charged vs free classification, streaming arrives
//! chunk by chunk, the tokens committed are the reported usage (or the prompt and output estimate), a failed
//! call is not charged, an exhausted user never reaches the upstream, and 20 concurrent streams for a user
//! with 10 a day let exactly 10 through.

use std::time::Duration;

use aiquota_tests::{http::*, proxy::*};
use futures_util::StreamExt;
use serde_json::{json, Value};

const CHAT: &str = "/v1/proxy/chat/completions";

fn chat(stream: bool, max_tokens: Option<i64>) -> Value {
    let mut body = json!({"model": "gpt-4o-mini", "stream": stream,
        "messages": [{"role": "user", "content": "Say hello"}]});
    if let Some(n) = max_tokens {
        body["max_tokens"] = n.into();
    }
    body
}

/// The status of a POST whose path goes out exactly as written.
async fn raw_post(app: &TestApp, path: &str, token: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_arrives_chunk_by_chunk_and_commits_the_reported_usage() {
    let ProxyApp { upstream, app } = ProxyApp::start("proxy_stream").await;
    let token = user_token("alice");
    let db = sql(&app.db).await;
    let res = app
        .post(CHAT, &token)
        .header("x-fake-gate", "1")
        .header("x-fake-usage", "12,30")
        .header("cookie", "session=aiquota-only")
        .json(&chat(true, Some(200)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert!(res.headers()["ratelimit"]
        .to_str()
        .unwrap()
        .starts_with("\"daily\";r=9;"));
    let mut body = res.bytes_stream();
    // The first chunk arrives while the upstream is still holding back the rest: nothing is buffered.
    let first = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("the first chunk arrives before the stream ends")
        .unwrap()
        .unwrap();
    let first = String::from_utf8(first.to_vec()).unwrap();
    assert!(
        first.contains("Hel") && !first.contains("[DONE]"),
        "{first}"
    );
    // Meanwhile both holds are taken: one request and the max_tokens estimate.
    let held: Vec<(String, i64)> = db
        .query(
            "SELECT meter, amount FROM quota.reservations WHERE user_id = 'alice' AND state = 'held' ORDER BY meter",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // (The hold covers the prompt too: its bytes / 3 plus max_tokens.)
    let hold = prompt_hold(&chat(true, Some(200))) + 200;
    assert_eq!(
        held,
        vec![("ai_requests".into(), 1), ("ai_tokens".into(), hold)]
    );
    upstream.gate.notify_one();
    let mut rest = String::new();
    while let Some(chunk) = body.next().await {
        rest.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    assert!(
        rest.contains("\"total_tokens\":42") && rest.ends_with("data: [DONE]\n\n"),
        "{rest}"
    );
    assert!(
        !rest.contains("sk-upstream"),
        "the upstream key never comes back"
    );

    let rows = settled(&db, "alice").await;
    assert_eq!(rows, committed(hold, 42));
    assert_eq!(used(&db, "alice", "ai_requests").await, 1);
    assert_eq!(used(&db, "alice", "ai_tokens").await, 42);

    // The upstream got the body and the configured key, never aiquota's JWT, the cookie or hop-by-hop headers.
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].uri, "/v1/chat/completions");
    // The stream was asked for its usage (the client had not asked).
    let mut sent = chat(true, Some(200));
    sent["stream_options"] = json!({"include_usage": true});
    assert_eq!(seen[0].body, sent);
    let auth: Vec<_> = seen[0].headers.get_all("authorization").iter().collect();
    assert_eq!(auth, vec![UPSTREAM_KEY]);
    assert!(seen[0].headers.get("cookie").is_none());
    assert!(!format!("{:?}", seen[0].headers).contains(&token));
    let m = app.metrics().await;
    assert!(
        m.contains("aiquota_proxy_requests_total{class=\"charged\",outcome=\"committed\"} 1"),
        "{m}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn background_traffic_passes_free_and_unauthenticated_calls_never_reach_the_upstream() {
    let ProxyApp { upstream, app } =
        ProxyApp::start_with("proxy_free", copilotkit_config, |_, _| {}).await;
    let token = user_token("bob");
    let info = app.get("/v1/proxy/info", &token).send().await.unwrap();
    assert_eq!(info.status(), 200);
    assert_eq!(
        body(info).await["agents"]["default"]["description"],
        "test agent"
    );
    let sync = json!({"threadId": "t-1", "runId": "r-1", "messages": [{"id": "m-1", "role": "user", "content": "earlier"}],
        "state": {}, "tools": [], "context": [{"description": "page", "value": "dashboard"}], "forwardedProps": {}});
    for payload in [
        json!({"method": "info"}),
        json!({"method": "agent/connect", "params": {"agentId": "default"}, "body": sync}),
        json!({"operationName": "availableAgents", "query": "query availableAgents { availableAgents { agents { id } } }", "variables": {}}),
    ] {
        let res = app.post_json("/v1/proxy", &token, &payload).await;
        assert_eq!(res.status(), 200, "{payload}");
        assert_eq!(body(res).await["echo"], payload);
    }
    let res = app
        .post_json("/v1/proxy/agent/default/connect", &token, &sync)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(upstream.count(), 5);
    assert_eq!(upstream.seen()[1].uri, "/");
    let db = sql(&app.db).await;
    assert!(settled(&db, "bob").await.is_empty(), "nothing reserved");
    assert_eq!(used(&db, "bob", "ai_requests").await, 0);

    // No token, a bad token: 401 before anything is forwarded.
    let res = app
        .client
        .post(app.url(CHAT))
        .json(&chat(false, None))
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
    let res = app.post_json(CHAT, "not-a-jwt", &chat(false, None)).await;
    problem(res, 401).await;
    // A path that would climb out of the upstream base is refused (sent raw: HTTP clients normalise it);
    // being on no route, it is a 404 since default deny.
    assert_eq!(
        raw_post(&app, "/v1/proxy/a/%2e%2e/admin", &token).await,
        404
    );
    assert_eq!(
        raw_post(&app, "/v1/proxy/a/..%2F..%2Fadmin", &token).await,
        404
    );
    assert_eq!(upstream.count(), 5);
    let m = app.metrics().await;
    assert!(
        m.contains("aiquota_proxy_requests_total{class=\"free\",outcome=\"forwarded\"} 5"),
        "{m}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_committed_are_the_usage_or_else_the_estimate() {
    let ProxyApp { upstream, app } = ProxyApp::start_with("proxy_usage", openai_config, |p, _| {
        p.default_tokens = 77;
    })
    .await;
    let token = user_token("carol");
    let db = sql(&app.db).await;
    // A JSON completion: usage from the body (7 + 5).
    let res = app
        .post(CHAT, &token)
        .header("x-fake-usage", "7,5")
        .json(&chat(false, Some(300)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["usage"]["total_tokens"], 12);
    settled(&db, "carol").await;
    assert_eq!(used(&db, "carol", "ai_tokens").await, 12);
    // A stream that reports no usage: the prompt estimate plus the streamed text ("Hello world", 11 bytes,
    // so 4 tokens) is committed, not max_tokens.
    let res = app
        .post(CHAT, &token)
        .header("x-fake-no-usage", "1")
        .json(&chat(true, Some(150)))
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    settled(&db, "carol").await;
    let streamed = prompt_hold(&chat(true, Some(150))) + 4;
    assert_eq!(used(&db, "carol", "ai_tokens").await, 12 + streamed);
    app.stop().await;

    // A CopilotKit agent run (single route): one request; the hold is the prompt estimate plus the configured
    // default, and with no usage reported the prompt plus the AG-UI text deltas ("hi" x 3: 2 tokens).
    let base = upstream.base.clone();
    let app = TestApp::start_with("proxy_usage_ck", move |c| {
        let mut p = copilotkit_config(&base);
        p.default_tokens = 77;
        c.proxy = Some(p);
    })
    .await;
    let db = sql(&app.db).await;
    let run = json!({"method": "agent/run", "params": {"agentId": "default"}, "body": {"threadId": "t-1", "runId": "r-1",
        "messages": [{"id": "m-1", "role": "user", "content": "hi"}], "state": {}, "tools": [], "context": [], "forwardedProps": {}}});
    let res = app.post_json("/v1/proxy", &token, &run).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("RUN_FINISHED"));
    let rows = settled(&db, "carol").await;
    assert_eq!(rows.len(), 2);
    let p = prompt_hold(&run);
    assert_eq!(
        rows[1],
        (
            "ai_tokens".into(),
            "committed".into(),
            p + 77,
            Some(p + 2),
            Some(p + 2)
        )
    );
    assert_eq!(used(&db, "carol", "ai_requests").await, 1);
    assert_eq!(used(&db, "carol", "ai_tokens").await, p + 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_call_is_not_charged() {
    let ProxyApp {
        upstream: _upstream,
        app,
    } = ProxyApp::start_with("proxy_failure", openai_config, |p, _| {
        p.timeout = Duration::from_secs(1);
    })
    .await;
    let token = user_token("dave");
    let db = sql(&app.db).await;
    // The upstream answers 500: passed through as it is, both holds released.
    let res = app
        .post(CHAT, &token)
        .header("x-fake-status", "500")
        .json(&chat(true, None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(body(res).await["error"]["message"], "upstream exploded");
    let rows = settled(&db, "dave").await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.1 == "released"), "{rows:?}");
    // The upstream does not answer within the proxy's timeout: 504, released.
    let res = app
        .post(CHAT, &token)
        .header("x-fake-hang", "1")
        .json(&chat(true, None))
        .send()
        .await
        .unwrap();
    let p = problem(res, 504).await;
    assert_eq!(p["type"], "/problems/upstream-timeout");
    // The client gives up before any output: the upstream is still waited for (here until the proxy's
    // timeout), and as it produced nothing, released.
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let gone = quick
        .post(app.url(CHAT))
        .bearer_auth(&token)
        .header("x-fake-hang", "1")
        .json(&chat(true, None))
        .send()
        .await;
    assert!(gone.is_err());
    let rows = settled(&db, "dave").await;
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r.1 == "released"), "{rows:?}");
    assert_eq!(used(&db, "dave", "ai_requests").await, 0);
    assert_eq!(used(&db, "dave", "ai_tokens").await, 0);
    // The stream breaks off after output was sent: the request, the prompt and the output so far ("Hel": 1
    // token) are charged.
    let res = app
        .post(CHAT, &token)
        .header("x-fake-break", "1")
        .json(&chat(true, Some(40)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.text().await.is_err(),
        "the client sees the stream break"
    );
    settled(&db, "dave").await;
    assert_eq!(used(&db, "dave", "ai_requests").await, 1);
    assert_eq!(
        used(&db, "dave", "ai_tokens").await,
        prompt_hold(&chat(true, Some(40))) + 1
    );
    let m = app.metrics().await;
    for line in [
        "{class=\"charged\",outcome=\"upstream_error\"} 1",
        "{class=\"charged\",outcome=\"unreachable\"} 2",
        "{class=\"charged\",outcome=\"committed_partial\"} 1",
    ] {
        assert!(
            m.contains(&format!("aiquota_proxy_requests_total{line}")),
            "{line}\n{m}"
        );
    }
    app.stop().await;

    // An upstream that cannot be reached at all: 502, released.
    let app = TestApp::start_with("proxy_unreachable", |c| {
        c.proxy = Some(proxy_config("http://127.0.0.1:9"))
    })
    .await;
    let res = app.post_json(CHAT, &token, &chat(false, None)).await;
    let p = problem(res, 502).await;
    assert!(!p.to_string().contains("127.0.0.1:9"), "{p}");
    let db = sql(&app.db).await;
    let rows = settled(&db, "dave").await;
    assert!(
        rows.len() == 2 && rows.iter().all(|r| r.1 == "released"),
        "{rows:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_user_is_stopped_before_the_upstream() {
    let ProxyApp { upstream, app } = ProxyApp::start("proxy_exhausted").await;
    let token = user_token("erin");
    for n in 0..10 {
        let res = app.post_json(CHAT, &token, &chat(false, Some(10))).await;
        assert_eq!(res.status(), 200, "call {n}");
        res.bytes().await.unwrap();
    }
    let db = sql(&app.db).await;
    settled(&db, "erin").await;
    let res = app.post_json(CHAT, &token, &chat(true, Some(10))).await;
    // Waiting until midnight does not help a client now: the body says when, Retry-After is left out.
    assert!(!res.headers().contains_key("retry-after"));
    assert_eq!(res.headers()["x-should-retry"], "false");
    let p = problem(res, 403).await;
    // The IANA-registered problem type, with aiquota's slug kept as the member `problem`.
    assert_eq!(
        p["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );
    assert_eq!(p["problem"], "quota-exceeded");
    assert_eq!(p["meter"], "ai_requests");
    assert!(
        p["reason"]
            .as_str()
            .unwrap()
            .contains("Daily limit of 10 ai_requests"),
        "{p}"
    );
    assert!(p["resets_at"].is_string());
    assert_eq!(
        upstream.count(),
        10,
        "the denied call never reached the upstream"
    );

    // Tokens refused (more than the month allows): the request hold taken first is released again.
    let frank = user_token("frank");
    let res = app.post_json(CHAT, &frank, &chat(true, Some(50_000))).await;
    let p = problem(res, 403).await;
    assert_eq!(p["meter"], "ai_tokens");
    let rows = settled(&db, "frank").await;
    assert_eq!(
        rows,
        vec![("ai_requests".into(), "released".into(), 1, None, Some(0))]
    );
    assert_eq!(used(&db, "frank", "ai_requests").await, 0);
    assert_eq!(upstream.count(), 10);
    let m = app.metrics().await;
    assert!(
        m.contains("aiquota_proxy_requests_total{class=\"charged\",outcome=\"denied\"} 2"),
        "{m}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_streams_for_ten_a_day_let_exactly_ten_through() {
    let ProxyApp { upstream, app } = ProxyApp::start("proxy_concurrency").await;
    let token = user_token("gina");
    let answers = together(20, |_| {
        let (client, url, token) = (app.client.clone(), app.url(CHAT), token.clone());
        async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .header("x-fake-delay-ms", "100")
                .json(&chat(true, Some(100)))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let text = res.text().await.unwrap();
            (status, text)
        }
    })
    .await;
    let mut ok = 0;
    let mut denied = 0;
    for answer in answers {
        match answer {
            (200, text) => {
                assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
                ok += 1;
            }
            (403, text) => {
                assert!(text.contains("quota-exceeded"), "{text}");
                denied += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((ok, denied), (10, 10));
    assert_eq!(upstream.count(), 10);
    let db = sql(&app.db).await;
    settled(&db, "gina").await;
    assert_eq!(used(&db, "gina", "ai_requests").await, 10);
    assert_eq!(used(&db, "gina", "ai_tokens").await, 10 * 30);
    assert_eq!(verify_rows(&db).await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browsers_on_an_allowed_origin_get_cors_headers_even_on_a_denial() {
    let ProxyApp { upstream, app } = ProxyApp::start_with("proxy_cors", openai_config, |p, _| {
        p.cors_origins = vec!["https://app.example.com".into()];
    })
    .await;
    // A preflight carries no token: answered by the proxy, never forwarded.
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/proxy"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allowed = res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    assert_eq!(upstream.count(), 0);
    // A denial is readable by the page: its status and the exposed headers.
    let token = user_token("hana");
    let res = app
        .post(CHAT, &token)
        .header("origin", "https://app.example.com")
        .json(&chat(true, Some(50_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("ratelimit") && exposed.contains("retry-after"),
        "{exposed}"
    );
    problem(res, 403).await;
    // Another origin gets no CORS grant.
    let res = app
        .post(CHAT, &token)
        .header("origin", "https://evil.example")
        .json(&chat(false, Some(10)))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_leaves_mid_stream_pays_for_what_it_got() {
    let ProxyApp { upstream, app } = ProxyApp::start("proxy_client_gone").await;
    let token = user_token("ivan");
    let res = app
        .post(CHAT, &token)
        .header("x-fake-gate", "1")
        .json(&chat(true, Some(60)))
        .send()
        .await
        .unwrap();
    let mut body = res.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(std::str::from_utf8(&first).unwrap().contains("Hel"));
    // The client goes away while the upstream is still generating: the proxy reads on, and once the upstream
    // has finished the request and the usage it reports are charged.
    drop(body);
    tokio::time::sleep(Duration::from_millis(100)).await;
    upstream.gate.notify_one();
    let db = sql(&app.db).await;
    let rows = settled(&db, "ivan").await;
    assert_eq!(rows, committed(prompt_hold(&chat(true, Some(60))) + 60, 30));
    let m = app.metrics().await;
    assert!(
        m.contains(
            "aiquota_proxy_requests_total{class=\"charged\",outcome=\"committed_partial\"} 1"
        ),
        "{m}"
    );
    app.stop().await;
}
