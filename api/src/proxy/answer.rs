//! The proxy's own answers (a route it does not forward, a body it refuses, a quota denial, an upstream that
//! failed) in a shape every SDK behind it understands: the problem+json body of the rest of the API, plus a
//! top-level `message` (what CopilotKit's and most HTTP clients show) and an OpenAI-style `error` object
//! (`message`, `type`, `code`, `param`; the OpenAI SDKs expose only this object as the error's body, so a
//! denial's fields such as `resets_at` and `retry_after_s` are repeated in it).
//!
//! A 4xx says `x-should-retry: false`: the OpenAI SDKs then never retry it, whatever the status (they retry a
//! 429 by default). `Retry-After` is sent only when waiting helps: on a denial that can pass within
//! [`RETRY_AFTER_MAX_S`], with the exact wait. A longer wait (tomorrow, next month) is left to the body's
//! `retry_after_s` and `resets_at`, so no client that obeys the header sleeps for hours.

use axum::{
    http::{header, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{json, Map, Value};

use super::body::Refusal;
use crate::{denial, headers, problem::Problem, store::Decision};

const SHOULD_RETRY: HeaderName = HeaderName::from_static("x-should-retry");

/// Longest wait announced in `Retry-After` (the OpenAI SDKs ignore longer ones too).
pub const RETRY_AFTER_MAX_S: i32 = 60;

/// 404 for a method and path no route names.
pub fn not_routed() -> Response {
    refused(Refusal {
        status: StatusCode::NOT_FOUND,
        slug: "not-found",
        title: "Not found",
        detail: "The proxy does not forward this method and path.".into(),
    })
}

/// A request refused before forwarding.
pub fn refused(r: Refusal) -> Response {
    let error = openai_error(&r.detail, "invalid_request_error", r.slug, Map::new());
    let p = Problem::new(r.status, r.slug, r.title)
        .detail(r.detail.clone())
        .with("message", r.detail)
        .with("error", error);
    no_retry(p.into_response())
}

/// A quota denial, with the rate-limit headers and `Retry-After` when waiting helps.
pub fn denied(decision: &Decision, status: StatusCode) -> Response {
    let message = decision
        .reason
        .clone()
        .unwrap_or_else(|| "Quota exceeded.".into());
    let fields = serde_json::to_value(decision)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let error = openai_error(&message, "quota_exceeded", "quota_exceeded", fields);
    let p = denial::problem(decision, status)
        .with("message", message)
        .with("error", error);
    let mut res = p.into_response();
    headers::rate_limit(res.headers_mut(), decision);
    if decision.retry_after_s.is_none_or(|s| s > RETRY_AFTER_MAX_S) {
        res.headers_mut().remove(header::RETRY_AFTER);
    }
    no_retry(res)
}

/// 502 / 504: the upstream did not answer; nothing was charged, so a retry is fine.
pub fn upstream_failed(
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: &str,
) -> Response {
    let error = openai_error(detail, "server_error", slug, Map::new());
    Problem::new(status, slug, title)
        .detail(detail)
        .with("message", detail)
        .with("error", error)
        .into_response()
}

fn openai_error(message: &str, kind: &str, code: &str, mut fields: Map<String, Value>) -> Value {
    // The decision's own `status` is the quota status; OpenAI's `type`/`code` win over nothing else.
    if let Some(s) = fields.remove("status") {
        fields.insert("quota_status".into(), s);
    }
    let mut e = json!({"message": message, "type": kind, "code": code, "param": null});
    if let Some(obj) = e.as_object_mut() {
        for (k, v) in fields {
            obj.entry(k).or_insert(v);
        }
    }
    e
}

fn no_retry(mut res: Response) -> Response {
    res.headers_mut()
        .insert(SHOULD_RETRY, HeaderValue::from_static("false"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn decision(retry: Option<i32>) -> Decision {
        Decision {
            allowed: false,
            meter: "ai_requests".into(),
            plan: "free".into(),
            used: 10,
            limit: Some(10),
            remaining: Some(0),
            resets_at: Some(Utc::now() + chrono::Duration::seconds(retry.unwrap_or(0).into())),
            status: "exceeded".into(),
            reason: Some("Daily limit of 10 ai_requests reached.".into()),
            retry_after_s: retry,
            period: Some("day".into()),
            replayed: false,
            held: 0,
            credits_used: None,
            policies: Vec::new(),
        }
    }

    #[test]
    fn retry_after_only_when_waiting_helps() {
        let res = denied(&decision(Some(30)), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()["retry-after"], "30");
        assert_eq!(res.headers()["x-should-retry"], "false");
        for long in [Some(61), Some(13_500), None] {
            let res = denied(&decision(long), StatusCode::TOO_MANY_REQUESTS);
            assert!(res.headers().get("retry-after").is_none(), "{long:?}");
            assert_eq!(res.headers()["x-should-retry"], "false");
            assert!(res.headers().contains_key("ratelimit"));
        }
    }
}
