//! The proxy's part of the configuration (`AIQUOTA_PROXY_*`), validated at start like the rest. The proxy is
//! off unless `AIQUOTA_PROXY_UPSTREAM` is set; the upstream header's value is a [`Secret`].

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode};

pub mod routes;

use crate::config::cors::parse_origins;
use crate::config::error::{invalid, ConfigError};
use crate::config::proxy::routes::RouteTable;
use crate::config::secret::Secret;

/// Routes the proxy must never shadow: the API's own.
const RESERVED: [&str; 7] = [
    "/v1/quota",
    "/v1/admin",
    "/v1/payments",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
];

/// How the metering proxy reaches the AI runtime and what it charges.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Base URL of the AI runtime, without a trailing slash; the path after the prefix is appended to it.
    pub upstream: String,
    /// Path prefix the proxy answers under (default `/v1/proxy`), without a trailing slash.
    pub prefix: String,
    /// A header added to every upstream request (an API key); the client's value of it is dropped.
    pub upstream_header: Option<(HeaderName, Secret)>,
    /// `ai_tokens` held for a charged call that names no `max_tokens`.
    pub default_tokens: i64,
    /// Status of a denial: 403 by default, so CopilotKit's client stops instead of retrying.
    pub deny_status: StatusCode,
    /// Longest an upstream call may take, response body included.
    pub timeout: Duration,
    /// Largest request body forwarded (the proxy reads it to classify the call).
    pub body_limit: usize,
    /// Browser origins allowed to call the proxy (CORS); `*` for any; empty for none (same origin only).
    pub cors_origins: Vec<String>,
    /// What is forwarded at all, and how it is metered (`AIQUOTA_PROXY_ROUTES`, `AIQUOTA_PROXY_PRESET`);
    /// everything else is answered 404.
    pub routes: RouteTable,
}

impl ProxyConfig {
    /// A proxy to `upstream` with the defaults (tests start from this).
    pub fn new(upstream: impl Into<String>) -> Self {
        Self {
            upstream: upstream.into().trim_end_matches('/').to_string(),
            prefix: "/v1/proxy".into(),
            upstream_header: None,
            default_tokens: 1000,
            deny_status: StatusCode::FORBIDDEN,
            timeout: Duration::from_secs(300),
            body_limit: 1024 * 1024,
            cors_origins: Vec::new(),
            routes: RouteTable::preset("openai").unwrap_or(RouteTable(Vec::new())),
        }
    }

    /// How long a charged call's holds last: longer than the upstream timeout, so a hold outlives its call
    /// and is settled by it, yet a crashed process frees the budget a minute after the call would have ended.
    pub fn hold_ttl(&self) -> Duration {
        self.timeout + Duration::from_secs(60)
    }
}

/// Reads the `AIQUOTA_PROXY_*` variables; `None` when `AIQUOTA_PROXY_UPSTREAM` is not set.
pub fn from_lookup(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<ProxyConfig>, ConfigError> {
    let Some(upstream) = get("AIQUOTA_PROXY_UPSTREAM") else {
        return Ok(None);
    };
    let mut p = ProxyConfig::new(upstream_url(&upstream)?);
    if let Some(prefix) = get("AIQUOTA_PROXY_PREFIX") {
        p.prefix = route_prefix(&prefix)?;
    }
    match (
        get("AIQUOTA_PROXY_UPSTREAM_HEADER"),
        get("AIQUOTA_PROXY_UPSTREAM_HEADER_VALUE"),
    ) {
        (None, None) => {}
        (Some(name), Some(value)) => {
            let name = HeaderName::try_from(name.trim()).map_err(|_| {
                invalid(
                    "AIQUOTA_PROXY_UPSTREAM_HEADER",
                    format!("{name:?} is not a header name"),
                )
            })?;
            // The value is checked but never quoted: it is a secret.
            HeaderValue::from_str(value.trim()).map_err(|_| {
                invalid(
                    "AIQUOTA_PROXY_UPSTREAM_HEADER_VALUE",
                    "is not a valid header value".into(),
                )
            })?;
            p.upstream_header = Some((name, Secret::new(value.trim())));
        }
        (Some(_), None) => {
            return Err(invalid(
                "AIQUOTA_PROXY_UPSTREAM_HEADER_VALUE",
                "must be set when AIQUOTA_PROXY_UPSTREAM_HEADER is".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "AIQUOTA_PROXY_UPSTREAM_HEADER",
                "must be set when AIQUOTA_PROXY_UPSTREAM_HEADER_VALUE is".into(),
            ))
        }
    }
    if let Some(s) = get("AIQUOTA_PROXY_DEFAULT_TOKENS") {
        p.default_tokens = number("AIQUOTA_PROXY_DEFAULT_TOKENS", &s, 1, 1_000_000_000)?;
    }
    if let Some(s) = get("AIQUOTA_PROXY_DENY_STATUS") {
        p.deny_status = match s.trim() {
            "403" => StatusCode::FORBIDDEN,
            "429" => StatusCode::TOO_MANY_REQUESTS,
            other => {
                return Err(invalid(
                    "AIQUOTA_PROXY_DENY_STATUS",
                    format!("{other:?} must be 403 or 429"),
                ))
            }
        };
    }
    if let Some(s) = get("AIQUOTA_PROXY_TIMEOUT_S") {
        // At most an hour: the holds last the timeout plus a minute, and reserve allows 24 hours.
        p.timeout = Duration::from_secs(number("AIQUOTA_PROXY_TIMEOUT_S", &s, 1, 3600)? as u64);
    }
    if let Some(s) = get("AIQUOTA_PROXY_BODY_LIMIT_KB") {
        p.body_limit = number("AIQUOTA_PROXY_BODY_LIMIT_KB", &s, 1, 64 * 1024)? as usize * 1024;
    }
    if let Some(list) = get("AIQUOTA_PROXY_CORS_ORIGINS") {
        p.cors_origins = parse_origins("AIQUOTA_PROXY_CORS_ORIGINS", &list)?;
    }
    p.routes = crate::config::proxy::routes::from_env(
        get("AIQUOTA_PROXY_ROUTES").as_deref(),
        get("AIQUOTA_PROXY_PRESET").as_deref(),
    )?;
    Ok(Some(p))
}

/// An http(s) base URL without a trailing slash, query or fragment. The value is not quoted in the message:
/// it may carry credentials.
fn upstream_url(value: &str) -> Result<String, ConfigError> {
    let v = value.trim().trim_end_matches('/');
    let host = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    match host {
        Some(h)
            if !h.is_empty()
                && !h.starts_with('/')
                && !h.contains(|c: char| c.is_whitespace() || c == '?' || c == '#') =>
        {
            Ok(v.to_string())
        }
        _ => Err(invalid(
            "AIQUOTA_PROXY_UPSTREAM",
            "must be an http(s) base URL without query or fragment, like http://127.0.0.1:4000/api/copilotkit"
                .into(),
        )),
    }
}

/// A path prefix like `/v1/proxy`: one or more plain segments, not one of the API's own routes.
fn route_prefix(value: &str) -> Result<String, ConfigError> {
    let v = value.trim().trim_end_matches('/');
    let plain = v.starts_with('/')
        && v.len() > 1
        && v[1..].split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
        });
    if !plain {
        return Err(invalid(
            "AIQUOTA_PROXY_PREFIX",
            format!("{value:?} must be a path like /v1/proxy (letters, digits, - _ . ~)"),
        ));
    }
    let taken = RESERVED
        .iter()
        .any(|r| v == *r || v.starts_with(&format!("{r}/")) || r.starts_with(&format!("{v}/")));
    if taken {
        return Err(invalid(
            "AIQUOTA_PROXY_PREFIX",
            format!("{value:?} overlaps the API's own routes"),
        ));
    }
    Ok(v.to_string())
}

fn number(name: &'static str, value: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    match value.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(
            name,
            format!("{value:?} must be a whole number from {min} to {max}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::proxy::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn off_without_an_upstream() {
        assert!(from_lookup(&lookup(&[])).unwrap().is_none());
    }

    #[test]
    fn defaults_and_overrides() {
        let p = from_lookup(&lookup(&[(
            "AIQUOTA_PROXY_UPSTREAM",
            "http://127.0.0.1:4000/api/copilotkit/",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(p.upstream, "http://127.0.0.1:4000/api/copilotkit");
        assert_eq!(p.prefix, "/v1/proxy");
        assert_eq!(p.deny_status, StatusCode::FORBIDDEN);
        assert_eq!(p.default_tokens, 1000);
        assert!(p.hold_ttl() > p.timeout);
        assert_eq!(p.routes, RouteTable::preset("openai").unwrap());
        let p = from_lookup(&lookup(&[
            ("AIQUOTA_PROXY_UPSTREAM", "https://api.openai.com/v1"),
            ("AIQUOTA_PROXY_PREFIX", "/ai/"),
            ("AIQUOTA_PROXY_DENY_STATUS", "429"),
            ("AIQUOTA_PROXY_DEFAULT_TOKENS", "250"),
            ("AIQUOTA_PROXY_TIMEOUT_S", "30"),
            ("AIQUOTA_PROXY_UPSTREAM_HEADER", "Authorization"),
            (
                "AIQUOTA_PROXY_UPSTREAM_HEADER_VALUE",
                "Bearer sk-very-secret",
            ),
            (
                "AIQUOTA_PROXY_CORS_ORIGINS",
                "https://app.example.com/, http://localhost:3000",
            ),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(p.prefix, "/ai");
        assert_eq!(
            p.cors_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        assert_eq!(p.deny_status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(p.default_tokens, 250);
        assert_eq!(p.timeout, Duration::from_secs(30));
        assert_eq!(p.upstream_header.as_ref().unwrap().0, "authorization");
        assert!(!format!("{p:?}").contains("sk-very-secret"));
    }

    #[test]
    fn refusals_name_the_variable() {
        let up = ("AIQUOTA_PROXY_UPSTREAM", "http://127.0.0.1:4000");
        for (vars, name) in [
            (
                vec![("AIQUOTA_PROXY_UPSTREAM", "127.0.0.1:4000")],
                "AIQUOTA_PROXY_UPSTREAM",
            ),
            (
                vec![("AIQUOTA_PROXY_UPSTREAM", "http://x/?a=1")],
                "AIQUOTA_PROXY_UPSTREAM",
            ),
            (
                vec![up, ("AIQUOTA_PROXY_PREFIX", "v1/proxy")],
                "AIQUOTA_PROXY_PREFIX",
            ),
            (
                vec![up, ("AIQUOTA_PROXY_PREFIX", "/v1/{x}")],
                "AIQUOTA_PROXY_PREFIX",
            ),
            (
                vec![up, ("AIQUOTA_PROXY_PREFIX", "/v1/quota/ai")],
                "AIQUOTA_PROXY_PREFIX",
            ),
            (
                vec![up, ("AIQUOTA_PROXY_PREFIX", "/v1")],
                "AIQUOTA_PROXY_PREFIX",
            ),
            (
                vec![up, ("AIQUOTA_PROXY_CORS_ORIGINS", "app.example.com")],
                "AIQUOTA_PROXY_CORS_ORIGINS",
            ),
            (
                vec![up, ("AIQUOTA_PROXY_CORS_ORIGINS", "*, https://a.example")],
                "AIQUOTA_PROXY_CORS_ORIGINS",
            ),
            (
                vec![up, ("AIQUOTA_PROXY_PRESET", "bedrock")],
                "AIQUOTA_PROXY_PRESET",
            ),
            (
                vec![up, ("AIQUOTA_PROXY_ROUTES", "POST /x everything")],
                "AIQUOTA_PROXY_ROUTES",
            ),
            (
                vec![up, ("AIQUOTA_PROXY_DENY_STATUS", "402")],
                "AIQUOTA_PROXY_DENY_STATUS",
            ),
            (
                vec![up, ("AIQUOTA_PROXY_DEFAULT_TOKENS", "0")],
                "AIQUOTA_PROXY_DEFAULT_TOKENS",
            ),
            (
                vec![up, ("AIQUOTA_PROXY_TIMEOUT_S", "7200")],
                "AIQUOTA_PROXY_TIMEOUT_S",
            ),
            (
                vec![up, ("AIQUOTA_PROXY_UPSTREAM_HEADER", "Authorization")],
                "AIQUOTA_PROXY_UPSTREAM_HEADER_VALUE",
            ),
            (
                vec![
                    up,
                    ("AIQUOTA_PROXY_UPSTREAM_HEADER", "bad header"),
                    ("AIQUOTA_PROXY_UPSTREAM_HEADER_VALUE", "k"),
                ],
                "AIQUOTA_PROXY_UPSTREAM_HEADER",
            ),
        ] {
            let err = from_lookup(&lookup(&vars)).unwrap_err().to_string();
            assert!(err.starts_with(name), "{vars:?}: {err}");
        }
        let err = from_lookup(&lookup(&[
            up,
            ("AIQUOTA_PROXY_UPSTREAM_HEADER", "x-api-key"),
            ("AIQUOTA_PROXY_UPSTREAM_HEADER_VALUE", "sk-secret\nvalue"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(!err.contains("sk-secret"), "{err}");
    }
}
