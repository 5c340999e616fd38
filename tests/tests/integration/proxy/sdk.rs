//! Denials as the official OpenAI Python SDK sees them (tests/python/sdk_calls.py, installed by
//! scripts/py-env.sh): streamed and not, in 403 and 429 mode, the SDK raises at once with the reason, the
//! `quota_exceeded` code and the denial's fields, after exactly one attempt (counted at the API: the upstream
//! never sees a denied call), and never sleeps, even for a denial that can never pass. (A short wait's
//! `Retry-After` is covered by the unit tests of `api/src/proxy/answer.rs`.)

use std::time::Duration;

use aiquota_tests::{http::*, proxy::*};
use axum::http::StatusCode;
use serde_json::Value;

const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.data/py/bin/python");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/sdk_calls.py");

async fn sdk(app: &TestApp, token: &str, modes: &[&str]) -> Value {
    assert!(
        std::path::Path::new(PYTHON).exists(),
        "{PYTHON} is missing: run scripts/py-env.sh (make test-integration does)"
    );
    let out = tokio::process::Command::new(PYTHON)
        .arg(SCRIPT)
        .args(modes)
        .env("PROXY_BASE_URL", app.url("/v1/proxy"))
        .env("PROXY_TOKEN", token)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `aiquota_proxy_requests_total{class="charged",outcome="denied"}`: one per attempt that reached the proxy.
async fn denied_attempts(app: &TestApp) -> u64 {
    let m = app.metrics().await;
    m.lines()
        .find_map(|l| {
            l.strip_prefix("aiquota_proxy_requests_total{class=\"charged\",outcome=\"denied\"} ")
        })
        .map_or(0, |n| n.parse().unwrap())
}

async fn denials_in(mode: StatusCode, class: &str) {
    let name = format!("proxy_sdk_{}", mode.as_u16());
    let ProxyApp { upstream, app } =
        ProxyApp::start_with(&name, openai_config, |p, _| p.deny_status = mode).await;
    let token = user_token("vic");
    // Allowed, streamed and not: the SDK gets the upstream's answer.
    let ok = sdk(&app, &token, &["plain", "stream"]).await;
    for m in ["plain", "stream"] {
        assert_eq!(ok[m]["ok"], true, "{ok}");
        assert_eq!(ok[m]["text"], "Hello world", "{ok}");
    }
    assert_eq!(upstream.count(), 2);

    // A denial that can never pass on the plan (more tokens than the month allows): no Retry-After.
    let huge = sdk(&app, &token, &["huge"]).await;
    assert_eq!(
        denied_attempts(&app).await,
        1,
        "exactly one attempt: {huge}"
    );
    // Out of requests for the day: a denial that passes tomorrow.
    let db = sql(&app.db).await;
    db.execute("SELECT quota.consume('vic', 'ai_requests', 8)", &[])
        .await
        .unwrap();
    let denied = sdk(&app, &token, &["plain", "stream"]).await;
    assert_eq!(
        denied_attempts(&app).await,
        3,
        "exactly one attempt each: {denied}"
    );
    assert_eq!(upstream.count(), 2, "no denied call reached the upstream");
    for (m, meter, reason) in [
        ("plain", "ai_requests", "Daily limit of 10 ai_requests"),
        ("stream", "ai_requests", "Daily limit of 10 ai_requests"),
    ]
    .into_iter()
    .chain([("huge", "ai_tokens", "ai_tokens")])
    {
        let r = if m == "huge" { &huge[m] } else { &denied[m] };
        assert_eq!(r["ok"], false, "{m}: {r}");
        assert_eq!(r["status"], mode.as_u16(), "{m}: {r}");
        assert_eq!(r["class"], class, "{m}: {r}");
        assert_eq!(r["code"], "quota_exceeded", "{m}: {r}");
        assert_eq!(r["body"]["meter"], meter, "{m}: {r}");
        let message = r["body"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{m}: {r}");
        assert!(r["str"].as_str().unwrap().contains(reason), "{m}: {r}");
        assert!(r["seconds"].as_f64().unwrap() < 5.0, "the SDK slept: {r}");
    }
    assert!(denied["plain"]["body"]["retry_after_s"].as_i64().unwrap() > 0);
    assert!(huge["huge"]["body"]["retry_after_s"].is_null());
    // The raw answer: the header that stops every OpenAI SDK from retrying, and no Retry-After for a wait of
    // hours (the body says when: retry_after_s and resets_at, here and in the `error` object).
    let res = app
        .post("/v1/proxy/chat/completions", &token)
        .json(&serde_json::json!({"model": "m", "messages": []}))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-should-retry"], "false");
    assert!(res.headers().get("retry-after").is_none());
    assert!(res.headers().contains_key("ratelimit"));
    let p = problem(res, mode.as_u16()).await;
    let wait = p["retry_after_s"].as_i64().unwrap();
    assert!(wait > 60, "{p}");
    assert_eq!(p["error"]["retry_after_s"], wait);
    assert_eq!(p["error"]["resets_at"], p["resets_at"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openai_sdk_stops_at_a_403_denial_and_shows_why() {
    denials_in(StatusCode::FORBIDDEN, "PermissionDeniedError").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openai_sdk_does_not_retry_a_429_denial_and_shows_why() {
    denials_in(StatusCode::TOO_MANY_REQUESTS, "RateLimitError").await;
}
