//! RFC 9457 problem details. A leaf: each feature turns its own error into a [`Problem`] next to the error
//! (`impl IntoResponse`), and [`crate::error::ApiError`] gathers them for the routes.
//!
//! A handler's error response carries its [`Problem`] in the response extensions; the [`finish`] middleware
//! writes the body, adding `instance` (the request path) and `request_id`, and turns any other error
//! response without a body (axum's 404/405, a body over the limit) into problem+json too.

use axum::{
    extract::Request,
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value};

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The problem type IANA registered for a quota denial (HTTP Problem Types registry, from the IETF RateLimit
/// headers draft): generic clients and gateways recognise it without knowing aiquota.
pub const IANA_QUOTA_EXCEEDED: &str =
    "https://iana.org/assignments/http-problem-types#quota-exceeded";

/// A problem detail before it is written: `type`, `title`, `status`, `detail` and extension members.
#[derive(Clone, Debug)]
pub struct Problem {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: Option<String>,
    extra: Map<String, Value>,
}

impl Problem {
    /// A problem of type `/problems/{slug}`.
    pub fn new(status: StatusCode, slug: &'static str, title: &'static str) -> Self {
        Self {
            status,
            slug,
            title,
            detail: None,
            extra: Map::new(),
        }
    }
    /// Adds a sentence for a person.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
    /// Adds an extension member; the members RFC 9457 defines cannot be overwritten.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if !matches!(
            key,
            "type" | "title" | "status" | "detail" | "instance" | "request_id" | "problem"
        ) {
            self.extra.insert(key.into(), value.into());
        }
        self
    }

    fn body(&self, instance: &str, request_id: Option<&str>) -> Value {
        let mut obj = Map::new();
        // A registered type goes by its IANA URI; aiquota's own by `/problems/<slug>`. The slug is always also
        // the member `problem`, so a client can match one stable key whichever form the type takes.
        let uri = match self.slug {
            "quota-exceeded" => IANA_QUOTA_EXCEEDED.to_string(),
            slug => format!("/problems/{slug}"),
        };
        obj.insert("type".into(), uri.into());
        obj.insert("problem".into(), self.slug.into());
        obj.insert("title".into(), self.title.into());
        obj.insert("status".into(), self.status.as_u16().into());
        obj.insert("instance".into(), instance.into());
        if let Some(d) = &self.detail {
            obj.insert("detail".into(), d.clone().into());
        }
        if let Some(id) = request_id {
            obj.insert("request_id".into(), id.into());
        }
        for (k, v) in &self.extra {
            obj.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(obj)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        res.extensions_mut().insert(self);
        res
    }
}

/// Seconds a client should wait after a 503.
const RETRY_AFTER_UNAVAILABLE: &str = "1";

/// A 503 `unavailable` with `Retry-After`: nothing was done, trying again later may work.
pub fn unavailable(detail: &str) -> Response {
    let mut res = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Service unavailable",
    )
    .detail(detail)
    .into_response();
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_UNAVAILABLE),
    );
    res
}

/// Writes the body of every error response as problem+json (see the module comment).
pub async fn finish(req: Request, next: Next) -> Response {
    let instance = req.uri().path().to_string();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut res = next.run(req).await;
    let problem = match res.extensions_mut().remove::<Problem>() {
        Some(p) => p,
        None if res.status().is_client_error() || res.status().is_server_error() => {
            if res.headers().contains_key(header::CONTENT_TYPE) {
                return res;
            }
            generic(res.status())
        }
        None => return res,
    };
    let body = problem.body(&instance, request_id.as_deref()).to_string();
    let (mut parts, _) = res.into_parts();
    parts.status = problem.status;
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// A problem for a bodiless error response that no handler produced (unknown route, wrong method, ...).
fn generic(status: StatusCode) -> Problem {
    match status {
        StatusCode::NOT_FOUND => {
            Problem::new(status, "not-found", "Not found").detail("No such route.")
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            Problem::new(status, "method-not-allowed", "Method not allowed")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(status, "too-large", "Request body too large")
        }
        s if s.is_server_error() => Problem::new(status, "internal", "Internal server error"),
        _ => Problem::new(status, "bad-request", "Bad request"),
    }
}

/// The shape of every error body, for the OpenAPI document (RFC 9457 plus `request_id`; a denial also
/// carries the decision's fields: `remaining`, `resets_at`, `retry_after_s`, ...).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ProblemDoc {
    /// `/problems/<slug>`: quota-exceeded, unauthorized, forbidden, bad-request, invalid-input,
    /// idempotency-key-reused, not-found, conflict, rate-limited, unavailable, outcome-unknown, internal, method-not-allowed, too-large,
    /// payments-not-configured, payment-provider-failed, invalid-signature, payment-incomplete, payment-mismatch.
    #[schema(rename = "type")]
    kind: String,
    /// Short summary of the type.
    title: String,
    /// The HTTP status.
    status: u16,
    /// A sentence for a person.
    detail: Option<String>,
    /// The request path.
    instance: String,
    /// The `x-request-id` of the request, to find it in the logs.
    request_id: Option<String>,
}
