//! A quota denial as an HTTP answer: the `quota-exceeded` problem with the decision's fields as members, and
//! the rate-limit headers (`Retry-After` when it can pass later).

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::{headers, problem::Problem, store::Decision};

/// The problem of a denial: `quota-exceeded` with the decision's fields (shared with the metering proxy,
/// which adds the members OpenAI SDKs read).
pub fn problem(decision: &Decision, status: StatusCode) -> Problem {
    let mut p = Problem::new(status, "quota-exceeded", "Quota exceeded")
        .detail(decision.reason.clone().unwrap_or_default());
    for (k, v) in serde_json::to_value(decision)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
    {
        // `status` is the problem's HTTP status (RFC 9457); the quota status goes beside it.
        let k = if k == "status" {
            "quota_status".to_string()
        } else {
            k
        };
        p = p.with(&k, v);
    }
    p
}

/// The answer to a denied consume or reservation: [`problem`] with the rate-limit headers.
pub fn response(decision: &Decision, status: StatusCode) -> Response {
    let mut res = problem(decision, status).into_response();
    headers::rate_limit(res.headers_mut(), decision);
    res
}
