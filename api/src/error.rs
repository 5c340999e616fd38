//! [`ApiError`], the one error type of the routes: every feature's error converts into it, and each is
//! answered by the feature's own `IntoResponse` (auth, db, payments, denial); only the few errors of the HTTP
//! layer itself (forbidden, server-only, bad request, timeout, busy, rate-limited) are worded here.

use axum::{
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

use crate::auth::error::AuthError;
use crate::db::DbError;
use crate::denial;
use crate::payments::error::PaymentError;
use crate::problem::{unavailable, Problem};
use crate::store::Decision;

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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Unauthorized(e) => e.into_response(),
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
            ApiError::Db(e) => e.into_response(),
            ApiError::Denied(decision, status) => denial::response(&decision, status),
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
            ApiError::Payment(e) => e.into_response(),
        }
    }
}
