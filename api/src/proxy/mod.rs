//! The metering proxy: aiquota in front of an AI runtime (CopilotKit's runtime, an OpenAI-compatible API)
//! for clients that cannot call `consume` themselves. On when `AIQUOTA_PROXY_UPSTREAM` is set (see
//! docs/proxy.md).
//!
//! Every request under the prefix is authenticated like the rest of the API, then matched against the route
//! table ([`routes`]: default deny, anything unlisted is a 404 that never reaches the upstream), read
//! strictly and classified ([`body`], [`classify`], [`graphql`]: free only when positively non-generating),
//! and forwarded with its body; the response streams back as it arrives. A charged request first holds one
//! `ai_requests` and an estimate of its prompt and output in `ai_tokens` ([`meter`]); a denial is answered
//! at once, without contacting the upstream ([`answer`]). The call then runs in its own task, which settles
//! the holds at what the upstream reports when the upstream finishes, even if the client left ([`stream`]).

pub mod answer;
pub mod body;
pub mod classify;
pub mod forward;
pub mod graphql;
pub mod meter;
pub mod metrics;
pub mod openapi;
pub mod stream;
pub mod usage;

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{FromRef, Request, State},
    http::StatusCode,
    middleware,
    response::{IntoResponse, Response},
    routing::any,
    Router,
};
use tower_http::cors::CorsLayer;

pub use crate::config::proxy::{routes, ProxyConfig};

use crate::{
    auth::{User, Verifier},
    db::Db,
    error::ApiError,
    fair::Fair,
    headers,
    metrics::Metrics,
};
use body::Refusal;
use classify::Class;
use meter::Reserved;

/// The proxy's configuration and its HTTP client (one connection pool to the upstream per process).
pub struct Proxy {
    config: ProxyConfig,
    client: reqwest::Client,
}

impl Proxy {
    /// The client for `config`: no redirects followed (a redirect could carry the upstream key elsewhere),
    /// the configured timeout over the whole call.
    pub fn new(config: &ProxyConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5).min(config.timeout))
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("proxy HTTP client: {e}"))?;
        Ok(Self {
            config: config.clone(),
            client,
        })
    }
}

/// What the proxy's handler reaches: a substate of the app's state (`AppState::proxy`, present when the proxy
/// is on), so the proxy never depends on the app's state as a whole.
#[derive(Clone, FromRef)]
pub struct ProxyState {
    /// The configuration and the upstream client.
    pub proxy: Arc<Proxy>,
    /// The pool, for the holds.
    pub db: Db,
    /// Per-user turns at the database.
    pub fair: Arc<Fair>,
    /// Process metrics (the proxy's counters among them).
    pub metrics: Arc<Metrics>,
    /// Token verification, for the [`User`] extractor.
    pub verifier: Arc<Verifier>,
    /// `AIQUOTA_REQUEST_TIMEOUT_S`: the deadline of the holds' database work.
    #[from_ref(skip)]
    pub request_timeout: Duration,
}

/// The proxy's routes (the prefix itself and everything below it, any method), or none when it is off.
/// Mounted outside the API's request timeout: a stream is bounded by `AIQUOTA_PROXY_TIMEOUT_S` instead.
pub fn router<S: Clone + Send + Sync + 'static>(state: Option<ProxyState>) -> Router<S> {
    let Some(state) = state else {
        return Router::new();
    };
    let prefix = state.proxy.config.prefix.clone();
    let cors = cors(&state.proxy.config.cors_origins);
    let router = Router::new()
        .route(&prefix, any(handle))
        .route(&format!("{prefix}/{{*rest}}"), any(handle))
        .route_layer(middleware::from_fn(crate::metrics::route_label))
        .with_state(state);
    match cors {
        Some(c) => router.layer(c),
        None => router,
    }
}

/// CORS for browser apps on other origins (`AIQUOTA_PROXY_CORS_ORIGINS`): the API's own layer
/// (`crate::cors::layer`). Preflights are answered before authentication (a preflight carries no token), and
/// every answer, a denial included, carries the headers, so the browser shows the client the real status.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    crate::cors::layer(origins)
}

async fn handle(State(s): State<ProxyState>, user: User, req: Request) -> Response {
    let proxy = s.proxy.clone();
    let (parts, body) = req.into_parts();
    let cfg = &proxy.config;
    let rest = parts
        .uri
        .path()
        .strip_prefix(cfg.prefix.as_str())
        .unwrap_or("");
    // Default deny: only what the route table names goes anywhere.
    let Some(route) = cfg.routes.find(&parts.method, rest) else {
        s.metrics.proxy.count("free", "rejected");
        return answer::not_routed();
    };
    let Some(url) = forward::upstream_url(&cfg.upstream, rest, parts.uri.query()) else {
        s.metrics.proxy.count("free", "rejected");
        return answer::refused(Refusal::bad(
            "The path has a segment the proxy does not forward.",
        ));
    };
    let body = match axum::body::to_bytes(body, cfg.body_limit).await {
        Ok(b) => b,
        Err(_) => {
            s.metrics.proxy.count("free", "rejected");
            return answer::refused(Refusal {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                slug: "too-large",
                title: "Request body too large",
                detail: format!(
                    "The proxy forwards bodies up to {} KiB.",
                    cfg.body_limit / 1024
                ),
            });
        }
    };
    let class = match classify::classify(route, rest, &parts.headers, &body, cfg.default_tokens) {
        Ok(c) => c,
        Err(refusal) => {
            s.metrics.proxy.count("free", "rejected");
            return answer::refused(refusal);
        }
    };
    tracing::debug!(class = class.label(), rule = ?class, "proxy request classified");
    let upstream =
        proxy
            .client
            .request(parts.method.clone(), &url)
            .headers(forward::request_headers(
                &parts.headers,
                cfg.upstream_header.as_ref(),
            ));
    let Class::Charged(charge) = class else {
        return match upstream.body(body).send().await {
            Ok(res) => {
                s.metrics.proxy.count("free", "forwarded");
                let (status, headers) = (res.status(), forward::response_headers(res.headers()));
                respond(status, headers, Body::from_stream(res.bytes_stream()))
            }
            Err(e) => {
                s.metrics.proxy.count("free", "unreachable");
                unreachable(&e)
            }
        };
    };
    // The holds are database work like a consume: within the request deadline, in one of the user's fair
    // turns (released once they are taken; the upstream call itself is bounded by the proxy's timeout).
    let deadline = tokio::time::Instant::now() + s.request_timeout;
    let reserved = crate::deadline::scope(deadline, async {
        let _turn = s
            .fair
            .turn(&user.id, deadline)
            .await
            .map_err(|_| ApiError::Busy)?;
        meter::reserve(
            &s.db,
            &s.metrics,
            &user.id,
            charge.meters,
            charge.hold,
            cfg.hold_ttl(),
        )
        .await
        .map_err(ApiError::Db)
    })
    .await;
    let (holds, decision) = match reserved {
        Ok(Reserved::Granted(holds, decision)) => (holds, decision),
        Ok(Reserved::Denied(decision)) => {
            s.metrics.proxy.count("charged", "denied");
            return answer::denied(&decision, cfg.deny_status);
        }
        Err(e) => {
            s.metrics.proxy.count("charged", "error");
            return e.into_response();
        }
    };
    let upstream = match charge.body {
        Some(rewritten) => upstream.body(rewritten),
        None => upstream.body(body),
    };
    // From here the call runs in its own task: if the client leaves, the upstream is still read and charged.
    let head = match stream::spawn(upstream, holds, charge.prompt).await {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => return unreachable(&e),
        // The task ended without a head (it panicked): its holds were released when it unwound.
        Err(_) => {
            return answer::upstream_failed(
                StatusCode::BAD_GATEWAY,
                "bad-gateway",
                "Bad gateway",
                "The call to the AI runtime failed; nothing was charged.",
            )
        }
    };
    let mut rx = head.body;
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let mut response = respond(head.status, head.headers, body);
    if head.status.is_success() {
        // The request decision's window, as on a consume (a failed call is released, so it gets none).
        headers::rate_limit(response.headers_mut(), &decision);
    }
    response
}

fn respond(status: StatusCode, headers: axum::http::HeaderMap, body: Body) -> Response {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    *res.headers_mut() = headers;
    res
}

/// 504 when the upstream did not answer in time, 502 when it could not be reached. The cause is logged
/// without the URL (it may carry credentials).
fn unreachable(e: &reqwest::Error) -> Response {
    let timeout = e.is_timeout();
    tracing::warn!(error = %WithoutUrl(e), timeout, "upstream unreachable");
    if timeout {
        answer::upstream_failed(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream-timeout",
            "Upstream timeout",
            "The AI runtime did not answer in time; nothing was charged.",
        )
    } else {
        answer::upstream_failed(
            StatusCode::BAD_GATEWAY,
            "bad-gateway",
            "Bad gateway",
            "The AI runtime could not be reached; nothing was charged.",
        )
    }
}

/// Displays a reqwest error without its URL.
struct WithoutUrl<'a>(&'a reqwest::Error);

impl std::fmt::Display for WithoutUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::error::Error as _;
        write!(
            f,
            "{}",
            if self.0.is_connect() {
                "connect"
            } else {
                "request"
            }
        )?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
