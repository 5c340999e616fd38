//! What crosses the proxy: the upstream URL of a request, and which headers go up and come back.
//!
//! Up: everything but hop-by-hop headers (RFC 9110 §7.6.1, plus those the `Connection` header names), `Host`
//! and `Content-Length` (the client library sets them), the client's `Authorization` (aiquota's JWT never
//! leaves aiquota), `Cookie` (aiquota's origin's, not the runtime's), `Accept-Encoding` (the proxy reads
//! the usage out of the body, so it asks for an uncompressed one), the client's forwarding headers
//! (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`: a client could claim any address), `OpenAI-Organization` and
//! `OpenAI-Project` (they would bill the operator's account elsewhere), and the configured upstream header,
//! which is then set to its secret value. Down: everything but hop-by-hop headers, `Content-Length` (the body
//! is re-chunked), `Set-Cookie` (the runtime's cookies would land on aiquota's origin) and
//! `Access-Control-*` (aiquota's CORS layer alone grants origins).

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};

use crate::config::Secret;

/// Client headers never passed up, besides hop-by-hop ones.
const DROPPED_UP: [HeaderName; 12] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::AUTHORIZATION,
    header::COOKIE,
    header::ACCEPT_ENCODING,
    header::FORWARDED,
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("openai-organization"),
    HeaderName::from_static("openai-project"),
];

const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The upstream URL for `rest` (the path below the prefix, still percent-encoded) and `query`; `None` when
/// the path has a `.` or `..` segment (plain or encoded) or a backslash, which URL normalisation would turn
/// into a path outside the upstream base.
pub fn upstream_url(base: &str, rest: &str, query: Option<&str>) -> Option<String> {
    if rest.contains('\\') {
        return None;
    }
    let dot_segment = rest.split('/').any(|seg| {
        let s = seg.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    });
    if dot_segment
        || rest.to_ascii_lowercase().contains("%2f")
        || rest.to_ascii_lowercase().contains("%5c")
    {
        return None;
    }
    Some(match query {
        Some(q) => format!("{base}{rest}?{q}"),
        None => format!("{base}{rest}"),
    })
}

fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The headers sent upstream.
pub fn request_headers(incoming: &HeaderMap, upstream: Option<&(HeaderName, Secret)>) -> HeaderMap {
    let listed = connection_listed(incoming);
    let mut out = HeaderMap::with_capacity(incoming.len() + 1);
    for (name, value) in incoming {
        let drop = HOP_BY_HOP.contains(name)
            || listed.iter().any(|l| l == name.as_str())
            || DROPPED_UP.contains(name)
            || upstream.is_some_and(|(n, _)| n == name);
        if !drop {
            out.append(name.clone(), value.clone());
        }
    }
    if let Some((name, secret)) = upstream {
        // Validated at start; a value that does not parse now is simply not sent.
        if let Ok(mut v) = HeaderValue::from_str(secret.expose()) {
            v.set_sensitive(true);
            out.insert(name.clone(), v);
        }
    }
    out
}

/// The headers sent back to the client.
pub fn response_headers(upstream: &HeaderMap) -> HeaderMap {
    let listed = connection_listed(upstream);
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        if !(HOP_BY_HOP.contains(name)
            || listed.iter().any(|l| l == name.as_str())
            || name == header::CONTENT_LENGTH
            || name == header::SET_COOKIE
            || name.as_str().starts_with("access-control-"))
        {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_stay_below_the_base() {
        let base = "http://rt:4000/api/copilotkit";
        assert_eq!(upstream_url(base, "", None).unwrap(), base);
        assert_eq!(
            upstream_url(base, "/agent/a%20b/run", Some("x=1")).unwrap(),
            "http://rt:4000/api/copilotkit/agent/a%20b/run?x=1"
        );
        for bad in [
            "/../admin",
            "/a/..",
            "/%2e%2E/x",
            "/.%2e/x",
            "/./x",
            "/a\\..\\b",
            "/a%2F..%2Fb",
            "/a%5c..%5cb",
        ] {
            assert!(upstream_url(base, bad, None).is_none(), "{bad}");
        }
    }

    #[test]
    fn authorization_never_goes_up_and_the_upstream_key_does() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer aiquota-jwt"),
        );
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-hop"),
        );
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::COOKIE, HeaderValue::from_static("session=abc"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert("x-api-key", HeaderValue::from_static("client-supplied"));
        for name in [
            "x-forwarded-for",
            "forwarded",
            "openai-organization",
            "openai-project",
            "x-real-ip",
        ] {
            h.insert(name, HeaderValue::from_static("client-claim"));
        }
        h.insert(
            "x-copilotkit-runtime-client-gql-version",
            HeaderValue::from_static("1.10.6"),
        );
        let up = request_headers(
            &h,
            Some(&(HeaderName::from_static("x-api-key"), Secret::new("sk-up"))),
        );
        assert!(up.get(header::AUTHORIZATION).is_none());
        assert!(
            up.get("x-hop").is_none()
                && up.get(header::TE).is_none()
                && up.get(header::COOKIE).is_none()
        );
        assert_eq!(up["x-api-key"], "sk-up");
        assert!(!format!("{up:?}").contains("client-claim"), "{up:?}");
        assert!(up["x-api-key"].is_sensitive());
        assert_eq!(up[header::CONTENT_TYPE], "application/json");
        assert_eq!(up["x-copilotkit-runtime-client-gql-version"], "1.10.6");
        let up = request_headers(
            &h,
            Some(&(header::AUTHORIZATION, Secret::new("Bearer sk-up"))),
        );
        assert_eq!(up[header::AUTHORIZATION], "Bearer sk-up");
        assert_eq!(up.get_all(header::AUTHORIZATION).iter().count(), 1);
    }

    #[test]
    fn response_headers_lose_hop_by_hop_and_length() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("x-request-cost", HeaderValue::from_static("3"));
        h.insert(header::SET_COOKIE, HeaderValue::from_static("rt=1"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        let down = response_headers(&h);
        assert_eq!(down.len(), 2);
        assert_eq!(down[header::CONTENT_TYPE], "text/event-stream");
    }
}
