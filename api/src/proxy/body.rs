//! Reading a request body strictly, before it decides anything. A runtime behind the proxy may read bytes
//! the proxy would read differently (a gzip body it inflates, a BOM or UTF-16 it strips, JSON with numbers or
//! nesting serde refuses, form or GraphQL media types), so a body that decides whether a call is charged is
//! accepted only as plain UTF-8 `application/json` that serde_json reads in full; anything else is refused
//! with a 4xx, never forwarded.

use axum::http::{header, HeaderMap, StatusCode};
use serde_json::Value;

/// Why a request was refused before forwarding: the status and a sentence for the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 404 or 415.
    pub status: StatusCode,
    /// The problem type slug.
    pub slug: &'static str,
    /// The problem title.
    pub title: &'static str,
    /// A sentence for a person.
    pub detail: String,
}

impl Refusal {
    /// 400 bad-request.
    pub fn bad(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            slug: "bad-request",
            title: "Bad request",
            detail: detail.into(),
        }
    }

    fn media(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            slug: "unsupported-media-type",
            title: "Unsupported media type",
            detail: detail.into(),
        }
    }
}

/// The body as JSON, when it is identity-encoded UTF-8 `application/json` (charset, if named, `utf-8`)
/// without a byte order mark, and serde_json reads all of it.
pub fn strict_json(headers: &HeaderMap, body: &[u8]) -> Result<Value, Refusal> {
    for v in headers.get_all(header::CONTENT_ENCODING) {
        let identity = v
            .to_str()
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("identity"));
        if !identity {
            return Err(Refusal::media(
                "The proxy reads request bodies without a Content-Encoding only.",
            ));
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !is_plain_json(content_type) {
        return Err(Refusal::media(
            "The proxy forwards this route with Content-Type: application/json only.",
        ));
    }
    if body.starts_with(b"\xEF\xBB\xBF") {
        return Err(Refusal::bad("The body starts with a byte order mark."));
    }
    let text = std::str::from_utf8(body).map_err(|_| Refusal::bad("The body is not UTF-8."))?;
    serde_json::from_str(text)
        .map_err(|e| Refusal::bad(format!("The body is not JSON the proxy can read: {e}.")))
}

/// `application/json`, with no parameter but `charset=utf-8`.
fn is_plain_json(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    let mime = parts.next().unwrap_or("");
    mime.eq_ignore_ascii_case("application/json")
        && parts.all(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("charset")
                    && v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(ct: &str, ce: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        if let Some(ce) = ce {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_str(ce).unwrap());
        }
        h
    }

    #[test]
    fn plain_json_is_read() {
        for ct in [
            "application/json",
            "Application/JSON; charset=UTF-8",
            "application/json;charset=\"utf-8\"",
        ] {
            assert_eq!(
                strict_json(&headers(ct, None), br#"{"a":1}"#).unwrap()["a"],
                1
            );
        }
        assert!(strict_json(&headers("application/json", Some("identity")), b"{}").is_ok());
    }

    #[test]
    fn everything_a_runtime_might_read_differently_is_refused() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let status = |ct: &str, ce: Option<&str>, body: &[u8]| {
            strict_json(&headers(ct, ce), body)
                .unwrap_err()
                .status
                .as_u16()
        };
        assert_eq!(status("application/json", Some("gzip"), b"{}"), 415);
        assert_eq!(
            status("application/json", Some("identity, gzip"), b"{}"),
            415
        );
        for ct in [
            "application/graphql",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain",
            "application/json; charset=utf-16",
            "application/json-patch+json",
            "",
        ] {
            assert_eq!(status(ct, None, b"{}"), 415, "{ct}");
        }
        for body in [
            &b"\xEF\xBB\xBF{}"[..],
            b"\xFF\xFE{\x00}\x00",
            b"{\"a\":\"\xFF\"}",
            b"{\"a\":1e400}",
            br#"{"a":"\ud800"}"#,
            deep.as_bytes(),
            b"{} {}",
            b"",
        ] {
            assert_eq!(status("application/json", None, body), 400, "{body:?}");
        }
    }
}
