//! Helpers for the proxy tests: a local fake AI runtime that answers like an OpenAI-compatible API (SSE chunks
//! with usage in the final chunk when the request sets `stream_options.include_usage`, as OpenAI does, or a
//! JSON completion) and like CopilotKit's runtime (`info`, AG-UI events), and records every request it
//! receives. Every answer also sets a cookie and CORS headers of its own, which must never reach the client.
//! Tests steer it with `x-fake-*` request headers, which the proxy forwards like any other header:
//!
//! | header | effect |
//! |---|---|
//! | `x-fake-status: 500` | answer that status with a JSON error |
//! | `x-fake-hang: 1` | never answer |
//! | `x-fake-gate: 1` | after the first chunk, wait until the test opens [`FakeUpstream::gate`] |
//! | `x-fake-delay-ms: n` | wait n ms between chunks |
//! | `x-fake-usage: p,c` | report p prompt and c completion tokens (default 10,20) |
//! | `x-fake-no-usage: 1` | report no usage |
//! | `x-fake-break: 1` | break the stream off after the first chunk |
//! | `x-fake-head-delay-ms: n` | wait n ms before answering at all |

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json, Router,
};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};

/// One request as the upstream saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Headers.
    pub headers: HeaderMap,
    /// The body as JSON (`Null` when it was not JSON).
    pub body: Value,
}

#[derive(Clone)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    gate: Arc<Notify>,
}

/// A running fake runtime on 127.0.0.1, port 0.
pub struct FakeUpstream {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Opened with `notify_one` to let one gated stream go on.
    pub gate: Arc<Notify>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeUpstream {
    /// Starts the server.
    pub async fn start() -> Self {
        let shared = Shared {
            seen: Arc::new(Mutex::new(Vec::new())),
            gate: Arc::new(Notify::new()),
        };
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base,
            gate: shared.gate,
            seen: shared.seen,
            task,
        }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests were received.
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn flag(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn answer(state: State<Shared>, req: Request) -> Response {
    let mut res = generate(state, req).await;
    let h = res.headers_mut();
    h.insert("set-cookie", "runtime_session=abc; Path=/".parse().unwrap());
    h.insert("access-control-allow-origin", "*".parse().unwrap());
    h.insert("access-control-allow-credentials", "true".parse().unwrap());
    res
}

async fn generate(State(s): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    s.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers.clone(),
        body: json.clone(),
    });
    let h = &parts.headers;
    if let Some(ms) = flag(h, "x-fake-head-delay-ms") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
    }
    if flag(h, "x-fake-hang").is_some() {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if let Some(code) = flag(h, "x-fake-status") {
        let status = StatusCode::from_u16(code.parse().unwrap()).unwrap();
        return (
            status,
            Json(json!({"error": {"message": "upstream exploded", "type": "server_error"}})),
        )
            .into_response();
    }
    let path = parts.uri.path();
    if parts.method == "GET" {
        return Json(
            json!({"version": "1.0.0", "agents": {"default": {"description": "test agent"}}}),
        )
        .into_response();
    }
    let usage = match (flag(h, "x-fake-no-usage"), flag(h, "x-fake-usage")) {
        (Some(_), _) => None,
        (None, Some(pc)) => {
            let (p, c) = pc.split_once(',').unwrap();
            Some((p.parse::<i64>().unwrap(), c.parse::<i64>().unwrap()))
        }
        (None, None) => Some((10, 20)),
    };
    let usage_json = usage
        .map(|(p, c)| json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}));
    let generation = path.ends_with("/chat/completions");
    let agent_run = json.get("method").and_then(Value::as_str) == Some("agent/run");
    if generation && json.get("stream") != Some(&Value::Bool(true)) {
        return Json(json!({"id": "cmpl-1", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world"}}],
            "usage": usage_json}))
        .into_response();
    }
    let chunks: Vec<String> = if generation {
        let mut c: Vec<String> = ["Hel", "lo", " world"]
            .iter()
            .map(|t| {
                format!(
                    "data: {}\n\n",
                    json!({"id": "c1", "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": t}}], "usage": null})
                )
            })
            .collect();
        let asked = json.pointer("/stream_options/include_usage") == Some(&Value::Bool(true));
        if let Some(u) = usage_json.filter(|_| asked) {
            c.push(format!(
                "data: {}\n\n",
                json!({"id": "c1", "choices": [], "usage": u})
            ));
        }
        c.push("data: [DONE]\n\n".into());
        c
    } else if agent_run {
        ["RUN_STARTED", "TEXT_MESSAGE_CONTENT", "RUN_FINISHED"]
            .iter()
            .map(|t| format!("data: {}\n\n", json!({"type": t, "delta": "hi"})))
            .collect()
    } else {
        return Json(json!({"ok": true, "echo": json})).into_response();
    };
    let gate = flag(h, "x-fake-gate").is_some().then(|| s.gate.clone());
    let broken = flag(h, "x-fake-break").is_some();
    let delay = flag(h, "x-fake-delay-ms").map(|d| Duration::from_millis(d.parse().unwrap()));
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::spawn(async move {
        for (i, chunk) in chunks.into_iter().enumerate() {
            if i > 0 {
                if let Some(d) = delay {
                    tokio::time::sleep(d).await;
                }
            }
            if i == 1 {
                if broken {
                    // Let the first chunk reach the proxy before the connection is torn down.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let _ = tx.send(Err(std::io::Error::other("upstream broke"))).await;
                    return;
                }
                if let Some(g) = &gate {
                    g.notified().await;
                }
            }
            if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// The upstream key the tests configure (`Authorization: Bearer ...` towards the upstream).
pub const UPSTREAM_KEY: &str = "Bearer sk-upstream-test-key-0042";

/// A proxy configuration pointing at `base`, adding [`UPSTREAM_KEY`] as `Authorization`.
pub fn proxy_config(base: &str) -> aiquota_api::proxy::ProxyConfig {
    let mut p = aiquota_api::proxy::ProxyConfig::new(base);
    p.upstream_header = Some((
        axum::http::header::AUTHORIZATION,
        aiquota_api::config::Secret::new(UPSTREAM_KEY),
    ));
    p
}

/// A proxy with the `copilotkit` preset in front of a runtime at `base` (adding [`UPSTREAM_KEY`]).
pub fn copilotkit_config(base: &str) -> aiquota_api::proxy::ProxyConfig {
    let mut p = proxy_config(base);
    p.routes = aiquota_api::proxy::routes::RouteTable::preset("copilotkit").unwrap();
    p
}

/// A proxy with the default (`openai`) preset in front of an OpenAI-compatible API at `{base}/v1`.
pub fn openai_config(base: &str) -> aiquota_api::proxy::ProxyConfig {
    proxy_config(&format!("{base}/v1"))
}

/// One reservation of a user: meter, state, amount held, actual, charged.
pub type ReservationRow = (String, String, i64, Option<i64>, Option<i64>);

/// Waits (up to 5 s) until none of `user`'s reservations is held any more (the proxy settles in the
/// background once the response has ended), then returns them all, oldest first.
pub async fn settled(db: &tokio_postgres::Client, user: &str) -> Vec<ReservationRow> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let rows = db
            .query(
                "SELECT meter, state, amount, actual, charged FROM quota.reservations \
                 WHERE user_id = $1 ORDER BY created_at, meter",
                &[&user],
            )
            .await
            .unwrap();
        let rows: Vec<ReservationRow> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect();
        if rows.iter().all(|r| r.1 != "held") {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still held: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `used` of `user`'s window of `meter` (from `quota.status`).
pub async fn used(db: &tokio_postgres::Client, user: &str, meter: &str) -> i64 {
    db.query_one(
        "SELECT used FROM quota.status($1) WHERE meter = $2 ORDER BY period LIMIT 1",
        &[&user, &meter],
    )
    .await
    .unwrap()
    .get(0)
}

/// A raw HTTP/1.1 exchange with `base` (`http://host:port`): the request goes out byte for byte as given
/// (HTTP clients would normalise `..` and percent-escapes in the path). Returns the status, the head (status
/// line and headers, lower-cased) and the body.
pub async fn raw(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let out = String::from_utf8_lossy(&out).to_string();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// The real CopilotKit runtime from npm (tests/copilotkit/runtime.mjs, installed by scripts/node-env.sh) on
/// 127.0.0.1, its OpenAI adapter pointed at `openai_base` (a [`FakeUpstream`] counting the calls). Killed
/// when dropped.
pub struct CopilotRuntime {
    /// The runtime's endpoint, `http://127.0.0.1:<port>/api/copilotkit`.
    pub url: String,
    _child: tokio::process::Child,
}

impl CopilotRuntime {
    /// Starts the runtime and waits (up to 60 s) until it listens.
    pub async fn start(openai_base: &str) -> Self {
        use tokio::io::AsyncBufReadExt;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/copilotkit");
        assert!(
            std::path::Path::new(dir).join("node_modules").exists(),
            "{dir}/node_modules is missing: run scripts/node-env.sh (make test-integration does)"
        );
        let mut child = tokio::process::Command::new("node")
            .arg("runtime.mjs")
            .current_dir(dir)
            .env("OPENAI_BASE_URL", format!("{openai_base}/v1"))
            .env("COPILOTKIT_TELEMETRY_DISABLED", "true")
            .env("DO_NOT_TRACK", "1")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(p) = line.strip_prefix("listening ") {
                    return p.trim().to_string();
                }
            }
            panic!("the runtime exited before listening")
        })
        .await
        .expect("the runtime listens within 60 s");
        // Keep reading its output, so a full pipe never stalls it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            url: format!("http://127.0.0.1:{port}/api/copilotkit"),
            _child: child,
        }
    }
}

/// The proxy in front of a fresh [`FakeUpstream`], on the API of a fresh database `t_<name>`: the setup every
/// proxy test starts from (destructure it: `let ProxyApp { upstream, app } = ProxyApp::start(..).await`).
pub struct ProxyApp {
    /// The stand-in upstream, recording what reaches it.
    pub upstream: FakeUpstream,
    /// The API with the proxy configured.
    pub app: crate::http::TestApp,
}

impl ProxyApp {
    /// The OpenAI preset ([`openai_config`]) and the test configuration otherwise.
    pub async fn start(name: &str) -> Self {
        Self::start_with(name, openai_config, |_, _| {}).await
    }

    /// The proxy configuration `routes` gives for the upstream's base URL, then `tweak` on it and on the
    /// API's configuration.
    pub async fn start_with(
        name: &str,
        routes: fn(&str) -> aiquota_api::proxy::ProxyConfig,
        tweak: impl FnOnce(&mut aiquota_api::proxy::ProxyConfig, &mut aiquota_api::Config),
    ) -> Self {
        let upstream = FakeUpstream::start().await;
        let mut proxy = routes(&upstream.base);
        let app = crate::http::TestApp::start_with(name, move |c| {
            tweak(&mut proxy, c);
            c.proxy = Some(proxy);
        })
        .await;
        Self { upstream, app }
    }
}

/// The tokens the proxy holds for the prompt of `body`: its bytes / 3, rounded up.
pub fn prompt_hold(body: &Value) -> i64 {
    body.to_string().len().div_ceil(3) as i64
}

/// The reservations of one metered call that went through, once settled: its request committed, and of the
/// `hold` tokens held, `charged` committed (the actual usage).
pub fn committed(hold: i64, charged: i64) -> Vec<ReservationRow> {
    vec![
        (
            "ai_requests".into(),
            "committed".into(),
            1,
            Some(1),
            Some(1),
        ),
        (
            "ai_tokens".into(),
            "committed".into(),
            hold,
            Some(charged),
            Some(charged),
        ),
    ]
}
