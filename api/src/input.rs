//! Input PostgreSQL cannot store, refused at the edge: a U+0000 (NUL) in any string.
//!
//! PostgreSQL's `text` and `jsonb` cannot hold a NUL (`22021` / `22P05`), so a NUL that reached the database
//! would fail there, after the request had taken a connection and a turn. The API refuses it first, with a
//! 400 problem that names it: in the URL (path or query, percent-encoded as `%00`; a raw NUL byte never gets
//! past the HTTP parser) by the [`refuse_nul_in_url`] middleware, in a JSON body by [`JsonBody`] through
//! [`find_nul`], and in a token's `sub` by the verifier. The database's class-22 errors are still mapped to
//! 400 (see [`crate::db`]) for whatever else it refuses as a bad value.
//!
//! [`JsonBody`]: crate::extract::JsonBody

use axum::{extract::Request, http::StatusCode, middleware::Next, response::IntoResponse};
use serde_json::Value;

use crate::error::ApiError;

/// The sentence every NUL refusal carries (the tests and clients look for `U+0000`).
fn refused(where_: &str) -> ApiError {
    ApiError::BadRequest(
        format!("{where_} contains U+0000 (NUL), which cannot be stored"),
        StatusCode::BAD_REQUEST,
    )
}

/// Whether a string holds a NUL.
pub fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

/// Where in a JSON value the first NUL is (`metadata.k`, `meter`, `a[2]`), or `None`: every string
/// and every object key, at any depth.
pub fn find_nul(value: &Value) -> Option<String> {
    fn walk(v: &Value, at: &mut String) -> bool {
        match v {
            Value::String(s) => has_nul(s),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                let found = walk(item, at);
                if !found {
                    at.truncate(len);
                }
                found
            }),
            Value::Object(map) => map.iter().any(|(k, item)| {
                let len = at.len();
                if !at.is_empty() {
                    at.push('.');
                }
                // The key itself is not echoed: it holds the NUL.
                if has_nul(k) {
                    at.push_str("(a key)");
                    return true;
                }
                at.push_str(k);
                let found = walk(item, at);
                if !found {
                    at.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut at = String::new();
    walk(value, &mut at).then(|| if at.is_empty() { "the body".into() } else { at })
}

/// The body's NUL refusal for [`find_nul`]'s answer.
pub fn nul_in_body(at: &str) -> ApiError {
    refused(&format!("body member {at}"))
}

/// Refuses a request whose path or query holds `%00`, before routing, so no handler and no proxy
/// upstream ever sees it. (`%2500`, a literal "%00", does not match: it is `%25` then `00`.)
pub async fn refuse_nul_in_url(req: Request, next: Next) -> axum::response::Response {
    let uri = req.uri();
    if uri.path().contains("%00") {
        return refused("the path").into_response();
    }
    if uri.query().is_some_and(|q| q.contains("%00")) {
        return refused("the query string").into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_nul_anywhere_and_says_where() {
        assert_eq!(find_nul(&json!({"meter": "ai"})), None);
        assert_eq!(
            find_nul(&json!({"meter": "a\u{0}"})).as_deref(),
            Some("meter")
        );
        assert_eq!(
            find_nul(&json!({"metadata": {"k": [1, "x\u{0}"]}})).as_deref(),
            Some("metadata.k[1]")
        );
        assert_eq!(
            find_nul(&json!({"metadata": {"a\u{0}": 1}})).as_deref(),
            Some("metadata.(a key)")
        );
        assert_eq!(find_nul(&json!("\u{0}")).as_deref(), Some("the body"));
        assert_eq!(find_nul(&json!({"k": "\\u0000"})), None);
    }
}
