//! The proxy in front of the real CopilotKit runtime from npm (`@copilotkit/runtime` 1.75.0, single-route
//! endpoint), whose OpenAI adapter calls a counting OpenAI stand-in: whatever a client sends through aiquota,
//! every request that makes the runtime call OpenAI was charged, and the non-generating calls are free.

use aiquota_tests::{http::*, proxy::*};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_variant_reaches_openai_through_the_real_runtime_without_a_charge() {
    let openai = FakeUpstream::start().await;
    let runtime = CopilotRuntime::start(&openai.base).await;
    let url = runtime.url.clone();
    let app = TestApp::start_with("proxy_ck_runtime", move |c| {
        c.proxy = Some(copilotkit_config(&url))
    })
    .await;
    let token = user_token("wren");
    let auth = format!("Bearer {token}");
    let db = sql(&app.db).await;
    db.execute("SELECT quota.assign_plan('wren', 'pro')", &[])
        .await
        .unwrap();
    let input = |thread: &str| {
        json!({"threadId": thread, "runId": format!("r-{thread}"), "state": {}, "tools": [], "context": [],
            "forwardedProps": {}, "messages": [{"id": "m-1", "role": "user", "content": "Write a long poem"}]})
    };
    let envelope = |method: &str, thread: &str| json!({"method": method, "params": {"agentId": "default"}, "body": input(thread)});
    let gzip_ish = envelope("agent/run", "t-gz").to_string();
    let utf16: Vec<u8> = gzip_ish.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let bom = [&b"\xEF\xBB\xBF"[..], gzip_ish.as_bytes()].concat();
    let json_ct = "application/json";
    // (path below the prefix, content type, content encoding, body)
    let variants: Vec<(&str, &str, Option<&str>, Vec<u8>)> = vec![
        ("", json_ct, None, envelope("agent/run", "t-1").to_string().into_bytes()),
        ("", json_ct, None, json!({"method": "info"}).to_string().into_bytes()),
        ("", json_ct, None, envelope("agent/connect", "t-1").to_string().into_bytes()),
        ("", json_ct, None, envelope("agent/connect", "t-new").to_string().into_bytes()),
        ("", json_ct, None, envelope("agent/suggest", "t-2").to_string().into_bytes()),
        ("", json_ct, None, envelope("transcribe", "t-3").to_string().into_bytes()),
        (
            "",
            json_ct,
            None,
            json!({"method": "agent/run", "operationName": "availableAgents", "params": {"agentId": "default"},
                "body": input("t-4")})
            .to_string()
            .into_bytes(),
        ),
        (
            "",
            json_ct,
            None,
            json!({"method": "info", "params": {"agentId": "default"}, "body": input("t-5")})
                .to_string()
                .into_bytes(),
        ),
        ("/info", json_ct, None, envelope("agent/run", "t-6").to_string().into_bytes()),
        (
            "/agent/x/connect",
            json_ct,
            None,
            envelope("agent/run", "t-7").to_string().into_bytes(),
        ),
        ("/agent/default/run", json_ct, None, input("t-8").to_string().into_bytes()),
        (
            "/agent/default/suggest",
            json_ct,
            None,
            json!({"threadId": "t-9", "context": [{"description": "prompt", "value": "Write a poem"}]})
                .to_string()
                .into_bytes(),
        ),
        ("", json_ct, Some("gzip"), gzip_ish.clone().into_bytes()),
        ("", json_ct, None, bom),
        ("", json_ct, None, utf16),
        ("", "text/plain", None, gzip_ish.clone().into_bytes()),
    ];
    let mut reached_openai = 0;
    let mut free_forwarded = 0;
    for (path, ct, ce, body) in &variants {
        let committed =
            |rows: Vec<ReservationRow>| rows.iter().filter(|r| r.1 == "committed").count();
        let (calls_before, rows_before) = (openai.count(), committed(settled(&db, "wren").await));
        let mut h = vec![("Authorization", auth.as_str()), ("Content-Type", *ct)];
        if let Some(ce) = ce {
            h.push(("Content-Encoding", ce));
        }
        let (status, _, text) = raw(&app.base, "POST", &format!("/v1/proxy{path}"), &h, body).await;
        // The runtime answers its stream before it has always finished with OpenAI: give it a moment.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let calls = openai.count() - calls_before;
        let charged = committed(settled(&db, "wren").await) - rows_before;
        let what = format!(
            "{path:?} {ct} {ce:?} {}: {status} {}",
            String::from_utf8_lossy(body),
            &text[..text.len().min(300)]
        );
        if calls > 0 {
            reached_openai += 1;
            assert_eq!(charged, 2, "reached OpenAI without a charge: {what}");
        }
        if status == 200 && charged == 0 {
            assert_eq!(calls, 0, "{what}");
            free_forwarded += 1;
        }
        if status >= 400 {
            assert_eq!(charged, 0, "{what}");
            assert_eq!(calls, 0, "{what}");
        }
    }
    // The test can fail: the genuine run did reach OpenAI, and `info` went through free.
    assert!(reached_openai >= 1, "no variant reached OpenAI");
    assert!(free_forwarded >= 1, "no free call went through");
    let rows = settled(&db, "wren").await;
    let openai_calls: Vec<Value> = openai.seen().iter().map(|s| json!(s.uri)).collect();
    assert!(
        openai_calls
            .iter()
            .all(|u| u.as_str().unwrap().starts_with("/v1/")),
        "{openai_calls:?}"
    );
    assert!(rows.iter().all(|r| r.1 != "held"), "{rows:?}");
    app.stop().await;
}
