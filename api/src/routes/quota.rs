//! The caller's own quota: read it, consume from it, reserve and settle. The user is always the token's
//! `sub`. Each request is one prepared statement calling one extension function; the API keeps no state.

use axum::{
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    auth::{User, Writer},
    db::Retry,
    deadline,
    error::ApiError,
    extract::{idempotency_key, ApiPath, JsonBody},
    fair::Turn,
    headers,
    problem::ProblemDoc,
    store::{
        self, quota::Consume, reservations::Reserve, Decision, Quota, Reservation, Settlement,
    },
    AppState,
};

/// Waits for one of the caller's turns at the database (see [`crate::fair`]) within the request deadline.
async fn turn(s: &AppState, user: &str) -> Result<Turn, ApiError> {
    let deadline = deadline::current(s.config.request_timeout);
    s.fair
        .turn(user, deadline)
        .await
        .map_err(|_| ApiError::Busy)
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_quota))
        .routes(routes!(consume))
        .routes(routes!(reserve))
        .routes(routes!(commit))
        .routes(routes!(release))
}

/// The caller's plan and every meter's window.
#[utoipa::path(get, path = "/v1/quota", tag = "quota", security(("bearer" = [])),
    responses((status = 200, body = Quota), (status = 401, body = ProblemDoc, content_type = "application/problem+json")))]
async fn get_quota(State(s): State<AppState>, user: User) -> Result<Json<Quota>, ApiError> {
    let _turn = turn(&s, &user.id).await?;
    Ok(Json(store::quota::status(&s.db, &user.id).await?))
}

/// Body of `POST /v1/quota/consume`; every field is optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumeRequest {
    /// Meter to consume from (default `ai_requests`); one declared in `quota.meters`.
    #[schema(min_length = 1)]
    pub meter: String,
    /// Amount (default 1).
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub amount: i64,
    /// A JSON object stored on the ledger row (at most 16 KiB), or null.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

impl Default for ConsumeRequest {
    fn default() -> Self {
        Self {
            meter: "ai_requests".into(),
            amount: 1,
            metadata: None,
        }
    }
}

/// The decision as a response: 200 when allowed, the deny status with problem+json when not; rate-limit
/// headers either way.
fn decided(s: &AppState, decision: Decision) -> Response {
    s.metrics.decision(decision.allowed);
    if !decision.allowed {
        return ApiError::Denied(Box::new(decision), s.config.deny_status).into_response();
    }
    let mut res = Json(&decision).into_response();
    headers::rate_limit(res.headers_mut(), &decision);
    res
}

/// Consumes `amount` of `meter` for the caller, from every limit or none (`quota.consume`).
///
/// With an `Idempotency-Key` a repeat returns the first decision (`replayed: true`) and charges nothing;
/// the same key for a different request is a 422. Without one the API makes one up; either way the key is
/// in the response's `Idempotency-Key` header, so that a client told `outcome-unknown` can settle it.
#[utoipa::path(post, path = "/v1/quota/consume", tag = "quota", security(("bearer" = [])),
    request_body(content = Option<ConsumeRequest>, description = "Empty body: one ai_requests"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: at most 255 characters, scoped to the caller; the response carries it (or the one the API made up)")),
    responses(
        (status = 200, body = Decision, description = "Allowed; RateLimit-Policy, RateLimit and Idempotency-Key headers"),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "Invalid meter, amount or metadata"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json", description = "server-only: AIQUOTA_USER_WRITES=off and an end-user token (or a denial when AIQUOTA_DENY_STATUS=403)"),
        (status = 422, body = ProblemDoc, content_type = "application/problem+json", description = "Idempotency key already used for a different request"),
        (status = 429, body = ProblemDoc, content_type = "application/problem+json", description = "Denied (or 403 when AIQUOTA_DENY_STATUS=403): the decision's fields as members, Retry-After when it can pass later"),
        (status = 503, body = ProblemDoc, content_type = "application/problem+json", description = "unavailable: not charged, Retry-After; outcome-unknown: the connection was lost mid-statement, no Retry-After, repeat with the Idempotency-Key"),
    ))]
async fn consume(
    State(s): State<AppState>,
    user: Writer,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ConsumeRequest>,
) -> Result<Response, ApiError> {
    let given = idempotency_key(&headers)?;
    // The API's own key is not retried by the API (the client did not ask for that), only handed back.
    let retry = if given.is_some() {
        Retry::Keyed
    } else {
        Retry::IfNotApplied
    };
    let key = given.unwrap_or_else(|| format!("aiq-{}", Uuid::new_v4()));
    let mut res = charge(&s, &user.id, &key, retry, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    if let Ok(v) = axum::http::HeaderValue::from_str(&key) {
        res.headers_mut().insert("idempotency-key", v);
    }
    Ok(res)
}

/// The consume itself, in one of the caller's turns.
async fn charge(
    s: &AppState,
    user: &str,
    key: &str,
    retry: Retry,
    body: &ConsumeRequest,
) -> Result<Response, ApiError> {
    let _turn = turn(s, user).await?;
    let consume = Consume {
        user,
        meter: &body.meter,
        amount: body.amount,
        key,
        metadata: &body.metadata,
    };
    let decision = store::quota::consume(&s.db, retry, consume).await?;
    Ok(decided(s, decision))
}

/// Body of `POST /v1/quota/reservations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ReserveRequest {
    /// Meter (default `ai_tokens`).
    #[schema(min_length = 1)]
    pub meter: String,
    /// Amount to hold.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub amount: i64,
    /// Seconds the hold lasts (default 300, at most 86400).
    #[schema(minimum = 1, maximum = 86_400)]
    pub ttl_s: i32,
}

impl Default for ReserveRequest {
    fn default() -> Self {
        Self {
            meter: "ai_tokens".into(),
            amount: 0,
            ttl_s: 300,
        }
    }
}

/// Holds `amount` of `meter` like usage until committed, released or expired (`quota.reserve`).
#[utoipa::path(post, path = "/v1/quota/reservations", tag = "quota", security(("bearer" = [])),
    request_body = ReserveRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "A repeat returns the same reservation")),
    responses(
        (status = 201, body = Reservation),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json", description = "server-only: AIQUOTA_USER_WRITES=off and an end-user token (or a denial when AIQUOTA_DENY_STATUS=403)"),
        (status = 422, body = ProblemDoc, content_type = "application/problem+json", description = "Idempotency key already used for a different request"),
        (status = 429, body = ProblemDoc, content_type = "application/problem+json", description = "Denied (or 403), or rate-limited: more reservations than AIQUOTA_RESERVE_RATE allows (Retry-After)"),
    ))]
async fn reserve(
    State(s): State<AppState>,
    user: Writer,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ReserveRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let retry = if key.is_some() {
        Retry::Keyed
    } else {
        Retry::IfNotApplied
    };
    s.limits
        .reserve
        .take(&user.id)
        .map_err(|l| ApiError::RateLimited("reservations", l.0))?;
    let _turn = turn(&s, &user.id).await?;
    let hold = Reserve {
        user: &user.id,
        meter: &body.meter,
        amount: body.amount,
        ttl_s: f64::from(body.ttl_s),
        key: key.as_deref(),
    };
    let reservation = store::reservations::reserve(&s.db, retry, hold).await?;
    s.metrics.decision(reservation.decision.allowed);
    if !reservation.decision.allowed {
        return Err(ApiError::Denied(
            Box::new(reservation.decision),
            s.config.deny_status,
        ));
    }
    let mut res = (axum::http::StatusCode::CREATED, Json(&reservation)).into_response();
    headers::rate_limit(res.headers_mut(), &reservation.decision);
    Ok(res)
}

/// Body of a commit.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    /// What the call actually cost (0 charges nothing).
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub actual: i64,
}

/// Frees the hold and charges `actual`, capped by the limits (`quota.commit`).
#[utoipa::path(post, path = "/v1/quota/reservations/{id}/commit", tag = "quota", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Reservation id")),
    request_body = CommitRequest,
    responses(
        (status = 200, body = Settlement),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json", description = "server-only: AIQUOTA_USER_WRITES=off and an end-user token"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json", description = "Unknown reservation, or another user's"),
        (status = 409, body = ProblemDoc, content_type = "application/problem+json", description = "Already committed, released or expired"),
    ))]
async fn commit(
    State(s): State<AppState>,
    user: Writer,
    ApiPath(id): ApiPath<Uuid>,
    JsonBody(body): JsonBody<CommitRequest>,
) -> Result<Json<Settlement>, ApiError> {
    let _turn = turn(&s, &user.id).await?;
    let settlement = store::reservations::commit(&s.db, id, body.actual, &user.id, false).await?;
    Ok(Json(settlement))
}

/// Frees the hold and charges nothing (`quota.release`).
#[utoipa::path(post, path = "/v1/quota/reservations/{id}/release", tag = "quota", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Reservation id")),
    responses(
        (status = 200, body = Settlement),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json", description = "server-only: AIQUOTA_USER_WRITES=off and an end-user token"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json", description = "Unknown reservation, or another user's"),
        (status = 409, body = ProblemDoc, content_type = "application/problem+json", description = "Already committed, released or expired"),
    ))]
async fn release(
    State(s): State<AppState>,
    user: Writer,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Settlement>, ApiError> {
    let _turn = turn(&s, &user.id).await?;
    let settlement = store::reservations::release(&s.db, id, &user.id).await?;
    Ok(Json(settlement))
}
