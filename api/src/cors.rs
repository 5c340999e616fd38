//! CORS for browser apps on other origins (`AIQUOTA_CORS_ORIGINS`): the user routes, the payment routes
//! and the event stream. Preflights are answered before authentication (a preflight carries no token),
//! and every answer, a denial included, carries the headers and exposes `RateLimit`, `RateLimit-Policy`,
//! `Retry-After` and `x-request-id`, so browser code sees the real status and can read when to come back.
//! The token is a header, not a cookie, so credentials mode is never allowed.

use std::time::Duration;

use axum::http::{header, HeaderName};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer, ExposeHeaders};

/// The layer for `origins`, or `None` when the list is empty (same origin only).
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
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
