//! CORS for browser apps on other origins (`AIQUOTA_CORS_ORIGINS`): the user routes, the payment routes
//! and the event stream. Preflights are answered before authentication (a preflight carries no token),
//! and every answer, a denial included, carries the headers and exposes `RateLimit`, `RateLimit-Policy`,
//! `Retry-After` and `x-request-id`, so browser code sees the real status and can read when to come back.
//! The token is a header, not a cookie, so credentials mode is never allowed.

use std::time::Duration;

use axum::http::{header, HeaderName};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer, ExposeHeaders};

use crate::config::ConfigError;

/// `*`, or a comma-separated list of origins like `https://app.example.com` (scheme, host, port; no path).
/// `name` is the variable, for the message.
pub fn parse_origins(name: &'static str, list: &str) -> Result<Vec<String>, ConfigError> {
    let origins: Vec<String> = list
        .split(',')
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect();
    if origins == ["*"] {
        return Ok(origins);
    }
    if origins.is_empty() {
        return Err(ConfigError::Invalid {
            name,
            why: "names no origin".into(),
        });
    }
    for o in &origins {
        let host = o
            .strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"));
        let ok = host.is_some_and(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']'))
        });
        if !ok {
            return Err(ConfigError::Invalid {
                name,
                why: format!(
                    "{o:?} is not an origin like https://app.example.com (or use * alone)"
                ),
            });
        }
    }
    Ok(origins)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        const N: &str = "AIQUOTA_CORS_ORIGINS";
        assert_eq!(parse_origins(N, "*").unwrap(), ["*"]);
        assert_eq!(
            parse_origins(N, "https://a.example/, http://localhost:3000").unwrap(),
            ["https://a.example", "http://localhost:3000"]
        );
        for bad in [
            "a.example",
            "*, https://a.example",
            " , ",
            "https://a.example/app",
        ] {
            let e = parse_origins(N, bad).unwrap_err().to_string();
            assert!(e.contains(N), "{bad}: {e}");
        }
    }
}
