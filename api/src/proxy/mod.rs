//! The metering proxy: aiquota in front of an AI runtime (CopilotKit's runtime, an OpenAI-compatible API)
//! for clients that cannot call `consume` themselves. On when `AIQUOTA_PROXY_UPSTREAM` is set (see
//! docs/proxy.md).
//!
//! Every request under the prefix is authenticated like the rest of the API, classified ([`classify`]), and
//! forwarded to the upstream with its body; the response streams back as it arrives. A charged request first
//! holds one `ai_requests` and an `ai_tokens` estimate ([`meter`]); a denial is answered at once, without
//! contacting the upstream. The holds are settled when the response ends ([`stream`]).

pub mod classify;
pub mod config;
pub mod forward;
pub mod meter;
pub mod metrics;
pub mod stream;
pub mod usage;

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderName, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::any,
    Extension, Router,
};
use futures_util::StreamExt;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer, ExposeHeaders};

pub use config::ProxyConfig;

use crate::{
    auth::User,
    headers,
    problem::{ApiError, Problem},
    AppState,
};
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

/// The proxy's routes (the prefix itself and everything below it, any method), or none when it is off.
/// Mounted outside the API's request timeout: a stream is bounded by `AIQUOTA_PROXY_TIMEOUT_S` instead.
pub fn router(proxy: Option<Arc<Proxy>>) -> Router<AppState> {
    let Some(proxy) = proxy else {
        return Router::new();
    };
    let prefix = proxy.config.prefix.clone();
    let cors = cors(&proxy.config.cors_origins);
    let router = Router::new()
        .route(&prefix, any(handle))
        .route(&format!("{prefix}/{{*rest}}"), any(handle))
        .route_layer(middleware::from_fn(crate::metrics::route_label))
        .layer(Extension(proxy));
    match cors {
        Some(c) => router.layer(c),
        None => router,
    }
}

/// CORS for browser apps on other origins (`AIQUOTA_PROXY_CORS_ORIGINS`): preflights are answered here,
/// before authentication (a preflight carries no token), and every answer, a denial included, carries the
/// headers, so the browser shows the client the real status (a 403, not a network error). The token is a
/// header, not a cookie, so credentials mode is not needed.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods(AllowMethods::mirror_request())
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(ExposeHeaders::list([
                header::RETRY_AFTER,
                HeaderName::from_static("ratelimit"),
                HeaderName::from_static("ratelimit-policy"),
                HeaderName::from_static("x-request-id"),
            ]))
            .max_age(Duration::from_secs(600)),
    )
}

async fn handle(
    State(s): State<AppState>,
    Extension(proxy): Extension<Arc<Proxy>>,
    user: User,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let cfg = &proxy.config;
    let rest = parts
        .uri
        .path()
        .strip_prefix(cfg.prefix.as_str())
        .unwrap_or("");
    let Some(url) = forward::upstream_url(&cfg.upstream, rest, parts.uri.query()) else {
        s.metrics.proxy.count("free", "rejected");
        return ApiError::BadRequest(
            "The path has a segment the proxy does not forward.".into(),
            StatusCode::BAD_REQUEST,
        )
        .into_response();
    };
    let body = match axum::body::to_bytes(body, cfg.body_limit).await {
        Ok(b) => b,
        Err(_) => {
            s.metrics.proxy.count("free", "rejected");
            return Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Request body too large",
            )
            .detail(format!(
                "The proxy forwards bodies up to {} KiB.",
                cfg.body_limit / 1024
            ))
            .into_response();
        }
    };
    let class = classify::classify(&parts.method, rest, &body);
    tracing::debug!(class = class.label(), rule = ?class, "proxy request classified");
    let upstream = proxy
        .client
        .request(parts.method.clone(), &url)
        .headers(forward::request_headers(
            &parts.headers,
            cfg.upstream_header.as_ref(),
        ))
        .body(body);
    let Class::Charged { max_tokens, .. } = class else {
        return match upstream.send().await {
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
    let estimate = max_tokens.unwrap_or(cfg.default_tokens);
    let (holds, decision) =
        match meter::reserve(&s.db, &s.metrics, &user.id, estimate, cfg.hold_ttl()).await {
            Ok(Reserved::Granted(holds, decision)) => (holds, decision),
            Ok(Reserved::Denied(decision)) => {
                s.metrics.proxy.count("charged", "denied");
                return ApiError::Denied(decision, cfg.deny_status).into_response();
            }
            Err(e) => {
                s.metrics.proxy.count("charged", "error");
                return ApiError::Db(e).into_response();
            }
        };
    // If the client leaves while this waits, `holds` is dropped with the future and releases itself.
    let res = match upstream.send().await {
        Ok(res) => res,
        Err(e) => {
            holds.finish(meter::Settle::Release, "unreachable");
            return unreachable(&e);
        }
    };
    let status = res.status();
    let headers = forward::response_headers(res.headers());
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = stream::Metered::new(
        res.bytes_stream().boxed(),
        holds,
        content_type.as_deref(),
        status.is_success(),
        estimate,
    );
    let mut response = respond(status, headers, Body::from_stream(body));
    if status.is_success() {
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
    let (status, slug, title, detail) = if timeout {
        (
            StatusCode::GATEWAY_TIMEOUT,
            "upstream-timeout",
            "Upstream timeout",
            "The AI runtime did not answer in time; nothing was charged.",
        )
    } else {
        (
            StatusCode::BAD_GATEWAY,
            "bad-gateway",
            "Bad gateway",
            "The AI runtime could not be reached; nothing was charged.",
        )
    };
    Problem::new(status, slug, title)
        .detail(detail)
        .into_response()
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
