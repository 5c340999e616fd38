//! RFC 9457 problem details, and [`ApiError`], the one error type of the HTTP layer: every module's error
//! converts into it and [`ApiError::into_response`] is the only place that chooses a status code.
//!
//! A handler's error response carries its [`Problem`] in the response extensions; the [`finish`] middleware
//! writes the body, adding `instance` (the request path) and `request_id`, and turns any other error
//! response without a body (axum's 404/405, a body over the limit) into problem+json too.

use axum::{
    extract::{
        rejection::JsonRejection, rejection::PathRejection, rejection::QueryRejection, Request,
    },
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value};

use crate::{
    auth::AuthError,
    db::DbError,
    headers,
    payments::{self, PaymentError},
    store::Decision,
};

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

/// Every way a request can fail. The doc comment of each variant names its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 with `WWW-Authenticate: Bearer`: no usable token (503 when the JWKS cannot be fetched).
    #[error("unauthorized: {0}")]
    Unauthorized(#[from] AuthError),
    /// 403: the token is valid but its role may not use admin routes.
    #[error("forbidden")]
    Forbidden,
    /// 403: server-only mode (`AIQUOTA_USER_WRITES=off`) and an end-user token tried to write usage.
    #[error("user writes are off")]
    ServerOnly,
    /// 400 (or the rejection's own 413/415/422): the request could not be read.
    #[error("bad request: {0}")]
    BadRequest(String, StatusCode),
    /// Mapped by SQLSTATE, see [`DbError`].
    #[error(transparent)]
    Db(#[from] DbError),
    /// The deny status (429 or 403) with the decision: the quota refused the request.
    #[error("quota denied")]
    Denied(Box<Decision>, StatusCode),
    /// 503 with `Retry-After`: the request took longer than the configured timeout.
    #[error("request timed out")]
    Timeout,
    /// 503 with `Retry-After`: the caller already has as many requests in flight as one user may, and
    /// this one found no free turn before its deadline (nothing was sent to the database).
    #[error("too many requests of this user in flight")]
    Busy,
    /// 429 with `Retry-After`: the caller made more calls of this kind than its abuse limit allows
    /// (see [`crate::limits`]); the value names what was limited, the duration is the wait.
    #[error("rate limited: {0}")]
    RateLimited(&'static str, std::time::Duration),
    /// 400, 404, 409, 502 or 503: see [`PaymentError`].
    #[error(transparent)]
    Payment(#[from] PaymentError),
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::BadRequest(r.body_text(), r.status())
    }
}
impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(r.body_text(), StatusCode::BAD_REQUEST)
    }
}
impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text(), StatusCode::BAD_REQUEST)
    }
}

/// Seconds a client should wait after a 503.
const RETRY_AFTER_UNAVAILABLE: &str = "1";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            // Not the client's fault: the token may be fine, the keys to check it are missing.
            ApiError::Unauthorized(AuthError::KeysUnavailable) => {
                tracing::warn!("no JWKS keys to verify a token");
                unavailable("The keys to verify tokens cannot be fetched right now; try again.")
            }
            ApiError::Unauthorized(why) => {
                tracing::info!(reason = %why, "unauthorized");
                let mut res =
                    Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
                        .detail(why.to_string())
                        .into_response();
                let challenge = match why {
                    AuthError::Missing => "Bearer",
                    _ => "Bearer error=\"invalid_token\"",
                };
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
                res
            }
            ApiError::Forbidden => Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden")
                .detail("This route needs an admin role.")
                .into_response(),
            ApiError::ServerOnly => Problem::new(StatusCode::FORBIDDEN, "server-only", "Server-only mode")
                .detail(
                    "End-user tokens may read their quota and stream events, but usage is written only by \
                     the server (the metering proxy or a service token): AIQUOTA_USER_WRITES is off.",
                )
                .into_response(),
            ApiError::BadRequest(detail, status) => {
                Problem::new(status, "bad-request", "Bad request")
                    .detail(detail)
                    .into_response()
            }
            ApiError::Db(e) => db_problem(e),
            ApiError::Denied(decision, status) => {
                let mut res = denial(&decision, status).into_response();
                headers::rate_limit(res.headers_mut(), &decision);
                res
            }
            ApiError::Timeout => unavailable("The request took too long; try again."),
            ApiError::Busy => {
                tracing::info!("per-user limit of in-flight requests reached");
                unavailable("Too many of your requests are in progress; try again.")
            }
            ApiError::RateLimited(what, wait) => {
                tracing::info!(what, "abuse limit reached");
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                let mut res = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limited",
                    "Too many requests",
                )
                .detail(format!("Too many {what}; try again in {secs} s."))
                .with("retry_after_s", secs)
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
                res
            }
            ApiError::Payment(e) => payment_problem(e),
        }
    }
}

/// The problem of a denial: `quota-exceeded` with the decision's fields (shared with the metering proxy,
/// which adds the members OpenAI SDKs read).
pub fn denial(decision: &Decision, status: StatusCode) -> Problem {
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

/// Payment errors; the log line carries the cause, the body never carries provider text or secrets.
fn payment_problem(e: PaymentError) -> Response {
    let status = payments::status_of(&e);
    match e {
        PaymentError::NotConfigured(vars) => {
            tracing::warn!(needs = vars, "payment route called but payments not configured");
            Problem::new(status, "payments-not-configured", "Payments not configured")
                .detail(format!("payments not configured: set {vars}"))
                .into_response()
        }
        PaymentError::Upstream(why) => {
            tracing::error!(%why, "payment provider failed");
            Problem::new(status, "payment-provider-failed", "Payment provider failed")
                .detail("The payment provider did not answer as expected; try again.")
                .into_response()
        }
        PaymentError::InvalidSignature(why) => {
            tracing::warn!(reason = why, "payment signature rejected");
            Problem::new(status, "invalid-signature", "Invalid signature")
                .detail(why)
                .into_response()
        }
        PaymentError::NotPaid(why) => {
            tracing::info!(reason = %why, "payment not complete");
            Problem::new(status, "payment-incomplete", "Payment not complete")
                .detail(why)
                .into_response()
        }
        PaymentError::Mismatch(rec) => Problem::new(status, "payment-mismatch", "Payment does not match the product")
            .detail("The payment was recorded, but its amount or currency differs from the product's price; the plan was not changed.")
            .with("outcome", rec.outcome.clone())
            .with("payment_status", rec.status.clone())
            .with("provider", rec.provider.clone())
            .with("payment_id", rec.payment_id.clone())
            .into_response(),
        PaymentError::UnknownOrder => Problem::new(status, "not-found", "Not found")
            .detail("No such order.")
            .into_response(),
    }
}

/// The SQLSTATE-to-status table (the classification itself is in [`DbError`]'s `From`).
fn db_problem(e: DbError) -> Response {
    match e {
        DbError::InvalidInput(m) => {
            Problem::new(StatusCode::BAD_REQUEST, "invalid-input", "Invalid input")
                .detail(m)
                .into_response()
        }
        DbError::IdempotencyMismatch(m) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency key reused for a different request",
        )
        .detail(m)
        .into_response(),
        DbError::NotFound(m) => Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found")
            .detail(m)
            .into_response(),
        DbError::Conflict(m) => Problem::new(StatusCode::CONFLICT, "conflict", "Conflict")
            .detail(m)
            .into_response(),
        DbError::Transient(why) => {
            tracing::warn!(%why, "database unavailable");
            unavailable("The database is unavailable right now; try again.")
        }
        DbError::OutcomeUnknown(why) => {
            tracing::warn!(%why, "database connection lost mid-statement");
            // No Retry-After: a blind retry could apply the write twice; the idempotency key settles it.
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "outcome-unknown",
                "Outcome unknown",
            )
            .detail(
                "The database connection was lost while the request was being applied, so it may or may \
                 not have taken effect. Repeat it with the same Idempotency-Key to find out; without one \
                 a repeat may apply it twice.",
            )
            .into_response()
        }
        DbError::Internal(why) => {
            tracing::error!(%why, "database error");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            )
            .into_response()
        }
    }
}

fn unavailable(detail: &str) -> Response {
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
