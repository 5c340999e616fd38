//! Default deny and fail closed, against a stand-in upstream that logs every request it receives: a route
//! the table does not name never reaches it, whatever the method or the spelling of the path; a CopilotKit
//! call is free only when it is positively non-generating, and every classifier bypass found against the
//! real runtimes (no or another `operationName`, inlined messages, other media types, BOM, gzip, UTF-16,
//! JSON serde refuses, envelopes posted to other routes, `suggest` and `transcribe`) is charged or refused;
//! client headers that claim an address or an OpenAI account are not passed up, and the runtime's cookies
//! and CORS grants never come back.

use aiquota_tests::{http::*, proxy::*};
use serde_json::{json, Value};

/// A refusal by aiquota: problem+json with the members every SDK reads, and no retry.
fn assert_refusal(status: u16, head: &str, body: &str, want: u16, what: &str) {
    assert_eq!(status, want, "{what}: {head}\n{body}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{what}: {head}"
    );
    assert!(head.contains("x-should-retry: false"), "{what}: {head}");
    let p: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
    assert!(p["message"].is_string(), "{what}: {p}");
    assert_eq!(p["error"]["message"], p["message"], "{what}: {p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unlisted_routes_never_reach_the_upstream() {
    // Only the upstream configured: the openai preset.
    let ProxyApp { upstream, app } =
        ProxyApp::start_with("proxy_deny_routes", openai_config, |_, _| {}).await;
    let token = user_token("olga");
    let auth = format!("Bearer {token}");
    let json_h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let payload = br#"{"model":"gpt-image-1","prompt":"a cat","input":"x","messages":[{"role":"user","content":"hi"}]}"#;
    for (method, path) in [
        ("POST", "/v1/proxy/images/generations"),
        ("POST", "/v1/proxy/images/edits"),
        ("POST", "/v1/proxy/embeddings"),
        ("POST", "/v1/proxy/audio/speech"),
        ("POST", "/v1/proxy/audio/transcriptions"),
        ("POST", "/v1/proxy/files"),
        ("GET", "/v1/proxy/files"),
        ("GET", "/v1/proxy/files/file-abc/content"),
        ("DELETE", "/v1/proxy/files/file-abc"),
        ("POST", "/v1/proxy/batches"),
        ("POST", "/v1/proxy/fine_tuning/jobs"),
        ("POST", "/v1/proxy/assistants"),
        ("POST", "/v1/proxy/threads/runs"),
        ("POST", "/v1/proxy/realtime/sessions"),
        ("POST", "/v1/proxy/moderations"),
        ("GET", "/v1/proxy/chat/completions"),
        ("DELETE", "/v1/proxy/models/ft-1"),
        ("POST", "/v1/proxy/chat%2Fcompletions"),
        ("POST", "/v1/proxy/chat%2fcompletions"),
        ("POST", "/v1/proxy/chat/completions%2F"),
        ("POST", "/v1/proxy/chat/completions/"),
        ("POST", "/v1/proxy//chat/completions"),
        ("POST", "/v1/proxy/x/../chat/completions"),
        ("POST", "/v1/proxy/x/%2e%2e/chat/completions"),
        ("POST", "/v1/proxy/chat/./completions"),
        ("POST", "/v1/proxy/%63hat/completions"),
        ("GET", "/v1/proxy/models/..%2Ffiles"),
        ("GET", "/v1/proxy/models/%2e%2e"),
        ("POST", "/v1/proxy"),
    ] {
        let (status, head, text) = raw(&app.base, method, path, &json_h, payload).await;
        assert_refusal(status, &head, &text, 404, &format!("{method} {path}"));
        assert_eq!(upstream.count(), 0, "{method} {path} reached the upstream");
    }
    // What the preset names does reach it.
    let (status, _, _) = raw(&app.base, "GET", "/v1/proxy/models", &json_h[..1], b"").await;
    assert_eq!(status, 200);
    let (status, _, _) = raw(
        &app.base,
        "POST",
        "/v1/proxy/chat/completions",
        &json_h,
        payload,
    )
    .await;
    assert_eq!(status, 200);
    let seen: Vec<String> = upstream.seen().iter().map(|s| s.uri.clone()).collect();
    assert_eq!(seen, ["/v1/models", "/v1/chat/completions"]);
    // The OpenAPI document lists the presets' routes, and no other proxy path.
    let doc = app.openapi().await;
    let proxied: Vec<&String> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|p| p.starts_with("/v1/proxy"))
        .collect();
    assert_eq!(
        proxied,
        [
            "/v1/proxy",
            "/v1/proxy/agent/{agent}/{action}",
            "/v1/proxy/chat/completions",
            "/v1/proxy/completions",
            "/v1/proxy/info",
            "/v1/proxy/models",
            "/v1/proxy/models/{model}",
            "/v1/proxy/responses",
        ]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn openai_bodies_that_cannot_be_read_strictly_are_refused() {
    let ProxyApp { upstream, app } =
        ProxyApp::start_with("proxy_deny_openai_body", openai_config, |_, _| {}).await;
    let token = user_token("pia");
    let auth = format!("Bearer {token}");
    let chat = "/v1/proxy/chat/completions";
    let ok = br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let deep = format!(
        r#"{{"model":"m","messages":[],"x":{}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let cases: Vec<(&str, Option<&str>, Vec<u8>, u16)> = vec![
        ("application/json", Some("gzip"), ok.to_vec(), 415),
        (
            "application/x-www-form-urlencoded",
            None,
            b"model=m&messages=hi".to_vec(),
            415,
        ),
        ("text/plain", None, ok.to_vec(), 415),
        ("application/json; charset=utf-16", None, ok.to_vec(), 415),
        (
            "application/json",
            None,
            [&b"\xEF\xBB\xBF"[..], ok].concat(),
            400,
        ),
        (
            "application/json",
            None,
            ok.iter().flat_map(|b| [*b, 0]).collect(),
            400,
        ),
        (
            "application/json",
            None,
            br#"{"model":"m","max_tokens":1e400,"messages":[]}"#.to_vec(),
            400,
        ),
        (
            "application/json",
            None,
            b"{\"model\":\"m\",\"user\":\"\xFF\",\"messages\":[]}".to_vec(),
            400,
        ),
        (
            "application/json",
            None,
            br#"{"model":"m","user":"\ud800","messages":[]}"#.to_vec(),
            400,
        ),
        ("application/json", None, deep.into_bytes(), 400),
        (
            "application/json",
            None,
            br#"{"model":"m","max_tokens":-1,"messages":[]}"#.to_vec(),
            400,
        ),
        (
            "application/json",
            None,
            br#"{"model":"m","n":1000}"#.to_vec(),
            400,
        ),
    ];
    for (ct, ce, body, want) in cases {
        let mut h = vec![("Authorization", auth.as_str()), ("Content-Type", ct)];
        if let Some(ce) = ce {
            h.push(("Content-Encoding", ce));
        }
        let (status, head, text) = raw(&app.base, "POST", chat, &h, &body).await;
        assert_refusal(
            status,
            &head,
            &text,
            want,
            &format!("{ct} {ce:?} {}", String::from_utf8_lossy(&body)),
        );
    }
    assert_eq!(upstream.count(), 0, "nothing refused was forwarded");
    let db = sql(&app.db).await;
    assert!(settled(&db, "pia").await.is_empty(), "nothing was held");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copilotkit_calls_are_free_only_when_recognised_and_bypasses_are_charged_or_refused() {
    let ProxyApp { upstream, app } =
        ProxyApp::start_with("proxy_deny_copilotkit", copilotkit_config, |_, _| {}).await;
    let token = user_token("quinn");
    let auth = format!("Bearer {token}");
    let db = sql(&app.db).await;
    // More generations than the free plan's ten a day.
    db.execute("SELECT quota.assign_plan('quinn', 'pro')", &[])
        .await
        .unwrap();
    let sync = json!({"threadId": "t-1", "runId": "r-1", "state": {}, "messages": [],
        "tools": [], "context": [], "forwardedProps": {}});
    let run = json!({"threadId": "t-1", "runId": "r-2", "state": {}, "tools": [], "forwardedProps": {},
        "messages": [{"id": "m-1", "role": "user", "content": "Write me a long poem"}], "context": []});
    let gen = "mutation generateCopilotResponse($data: GenerateCopilotResponseInput!) { generateCopilotResponse(data: $data) { threadId } }";
    let renamed = "mutation generateCopilotResponse($d: GenerateCopilotResponseInput!) { generateCopilotResponse(data: $d) { threadId } }";
    let inlined = "mutation { generateCopilotResponse(data: {threadId: \"t\", messages: [{id: \"m\", textMessage: {role: user, content: \"hi\"}}], frontend: {actions: []}}) { threadId } }";
    let vars = json!({"data": {"threadId": "t-1", "messages": [{"id": "m-1", "textMessage": {"role": "user", "content": "hi"}}]}});
    // (path, body, expected): "free" forwarded without a hold, "charged" forwarded with holds, or a status.
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/v1/proxy", json!({"method": "info"}), "free"),
        (
            "/v1/proxy",
            json!({"method": "agent/connect", "params": {"agentId": "default"}, "body": sync}),
            "free",
        ),
        (
            "/v1/proxy",
            json!({"operationName": "availableAgents", "query": "query availableAgents { availableAgents { agents { id } } }"}),
            "free",
        ),
        ("/v1/proxy/agent/default/connect", sync.clone(), "free"),
        // The GraphQL bypasses: no operationName, another one, a renamed variable, messages inlined.
        (
            "/v1/proxy",
            json!({"query": gen, "variables": vars}),
            "charged",
        ),
        (
            "/v1/proxy",
            json!({"operationName": "availableAgents", "query": gen, "variables": vars}),
            "charged",
        ),
        (
            "/v1/proxy",
            json!({"operationName": "loadAgentState", "query": gen, "variables": vars}),
            "charged",
        ),
        (
            "/v1/proxy",
            json!({"query": renamed, "variables": {"d": vars["data"]}}),
            "charged",
        ),
        ("/v1/proxy", json!({"query": inlined}), "charged"),
        (
            "/v1/proxy",
            json!({"query": "query a { availableAgents { agents { id } } } mutation b { generateCopilotResponse(data: {}) { threadId } }", "operationName": "a"}),
            "400",
        ),
        (
            "/v1/proxy",
            json!([{"query": gen, "variables": vars}]),
            "400",
        ),
        // Single-route envelopes that generate, and envelopes posted to other routes.
        (
            "/v1/proxy",
            json!({"method": "agent/run", "params": {"agentId": "default"}, "body": run}),
            "charged",
        ),
        (
            "/v1/proxy",
            json!({"method": "agent/suggest", "params": {"agentId": "default"}, "body": run}),
            "charged",
        ),
        (
            "/v1/proxy",
            json!({"method": "transcribe", "body": {"audio": "..."}}),
            "charged",
        ),
        (
            "/v1/proxy",
            json!({"method": "info", "params": {"agentId": "default"}, "body": run}),
            "charged",
        ),
        (
            "/v1/proxy/info",
            json!({"method": "agent/run", "params": {"agentId": "default"}, "body": run}),
            "404",
        ),
        (
            "/v1/proxy/agent/x/connect",
            json!({"method": "agent/run", "params": {"agentId": "default"}, "body": run}),
            "charged",
        ),
        ("/v1/proxy/agent/default/run", run.clone(), "charged"),
        (
            "/v1/proxy/agent/default/suggest",
            json!({"threadId": "t-1", "context": [{"description": "prompt", "value": "Write a poem"}]}),
            "charged",
        ),
        ("/v1/proxy/agent/default/delete", json!({}), "404"),
    ];
    let (mut forwarded, mut held) = (0, 0);
    for (path, body, want) in &cases {
        let h = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        let (status, head, text) =
            raw(&app.base, "POST", path, &h, body.to_string().as_bytes()).await;
        match *want {
            "free" | "charged" => {
                assert_eq!(status, 200, "{path} {body}: {text}");
                forwarded += 1;
                if *want == "charged" {
                    held += 2;
                }
            }
            code => assert_refusal(
                status,
                &head,
                &text,
                code.parse().unwrap(),
                &format!("{path} {body}"),
            ),
        }
        assert_eq!(upstream.count(), forwarded, "{path} {body}");
        let rows = settled(&db, "quinn").await;
        assert_eq!(rows.len(), held, "{path} {body}: {rows:?}");
    }
    // Bodies a runtime behind express.json() would read differently: refused, never forwarded.
    let gql = json!({"query": gen, "variables": vars}).to_string();
    let utf16: Vec<u8> = gql.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let bom = [&b"\xEF\xBB\xBF"[..], gql.as_bytes()].concat();
    let bad_byte = b"{\"method\":\"info\",\"x\":\"\xC3\"}".to_vec();
    for (ct, ce, body, want) in [
        ("application/graphql", None, gen.as_bytes().to_vec(), 415),
        (
            "application/x-www-form-urlencoded",
            None,
            format!("query={gen}").into_bytes(),
            415,
        ),
        (
            "multipart/form-data; boundary=b",
            None,
            b"--b\r\n\r\n{}\r\n--b--".to_vec(),
            415,
        ),
        (
            "application/json",
            Some("gzip"),
            gql.clone().into_bytes(),
            415,
        ),
        (
            "application/json",
            Some("deflate"),
            gql.clone().into_bytes(),
            415,
        ),
        ("application/json", None, bom, 400),
        ("application/json", None, utf16, 400),
        ("application/json", None, bad_byte, 400),
        (
            "application/json",
            None,
            br#"{"method":"info","n":1e400}"#.to_vec(),
            400,
        ),
        (
            "application/json",
            None,
            br#"{"method":"info","s":"\udc00"}"#.to_vec(),
            400,
        ),
    ] {
        let mut h = vec![("Authorization", auth.as_str()), ("Content-Type", ct)];
        if let Some(ce) = ce {
            h.push(("Content-Encoding", ce));
        }
        let (status, head, text) = raw(&app.base, "POST", "/v1/proxy", &h, &body).await;
        assert_refusal(status, &head, &text, want, &format!("{ct} {ce:?}"));
    }
    assert_eq!(upstream.count(), forwarded);
    let rows = settled(&db, "quinn").await;
    assert_eq!(rows.len(), held);
    assert!(rows.iter().all(|r| r.1 == "committed"), "{rows:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claimed_addresses_and_accounts_stay_behind_and_runtime_cookies_never_come_back() {
    let ProxyApp { upstream, app } =
        ProxyApp::start_with("proxy_deny_headers", openai_config, |_, _| {}).await;
    let token = user_token("rosa");
    let res = app
        .post("/v1/proxy/chat/completions", &token)
        .header("x-forwarded-for", "10.0.0.1")
        .header("forwarded", "for=10.0.0.1")
        .header("openai-organization", "org-someone-else")
        .header("openai-project", "proj_someone_else")
        .header("x-keep-me", "1")
        .json(&json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for name in [
        "set-cookie",
        "access-control-allow-origin",
        "access-control-allow-credentials",
    ] {
        assert!(res.headers().get(name).is_none(), "{name} came back");
    }
    res.bytes().await.unwrap();
    let free = app.get("/v1/proxy/models", &token).send().await.unwrap();
    assert_eq!(free.status(), 200);
    assert!(free.headers().get("set-cookie").is_none());
    assert!(free.headers().get("access-control-allow-origin").is_none());
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2);
    let h = &seen[0].headers;
    for name in [
        "x-forwarded-for",
        "forwarded",
        "openai-organization",
        "openai-project",
    ] {
        assert!(h.get(name).is_none(), "{name} went up");
    }
    assert_eq!(h["x-keep-me"], "1");
    app.stop().await;
}
