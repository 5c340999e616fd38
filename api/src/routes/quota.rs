//! The caller's own quota: read it, consume from it, reserve and settle. The user is always the token's
//! `sub`. Each request is one prepared statement calling one extension function; the API keeps no state.

use axum::{
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    auth::{User, Writer},
    db::{self, Db, DbError, Retry},
    deadline,
    extract::{idempotency_key, ApiPath, JsonBody},
    fair::Turn,
    headers,
    problem::{ApiError, ProblemDoc},
    timestamp, AppState,
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

/// A decision of `quota.consume` (and the decision part of a reservation): the numbers describe the binding
/// window (see docs/sql.md).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Decision {
    /// Whether the amount was consumed.
    pub allowed: bool,
    /// The meter asked for.
    pub meter: String,
    /// The user's effective plan.
    pub plan: String,
    /// Usage of the binding window.
    pub used: i64,
    /// Limit of the binding window; null means unlimited, 0 that the plan does not include the meter.
    pub limit: Option<i64>,
    /// `limit - used - held`, never below 0; null when unlimited.
    pub remaining: Option<i64>,
    /// When the binding window ends.
    pub resets_at: Option<DateTime<Utc>>,
    /// `normal`, `warning`, `critical` or `exceeded`.
    pub status: String,
    /// Why it was denied; null when allowed.
    pub reason: Option<String>,
    /// Seconds until the request can pass; null when allowed or when it never can on this plan.
    pub retry_after_s: Option<i32>,
    /// `hour`, `day`, `week` or `month`.
    pub period: Option<String>,
    /// True when an idempotency key returned an earlier decision.
    pub replayed: bool,
    /// Amount held by open reservations in the binding window.
    pub held: i64,
    /// Credits (grants) this call spent, for extension versions that have credits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits_used: Option<i64>,
    /// Every limited window of the meter as (period, limit), for the `RateLimit-Policy` header (not in the body);
    /// empty when the call did not read them (then the header names the binding window only).
    #[serde(skip)]
    #[schema(ignore)]
    pub policies: Vec<(String, i64)>,
}

impl Decision {
    /// Reads a decision from a row of `quota.decision` (or `quota.reservation`).
    pub(crate) fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            allowed: r.try_get("allowed")?,
            meter: r.try_get("meter")?,
            plan: r.try_get("plan")?,
            used: r.try_get("used")?,
            limit: r.try_get("limit")?,
            remaining: r.try_get("remaining")?,
            resets_at: timestamp::optional(r, "resets_at")?,
            status: r.try_get("status")?,
            reason: r.try_get("reason")?,
            retry_after_s: r.try_get("retry_after_s")?,
            period: r.try_get("period")?,
            replayed: r.try_get("replayed")?,
            held: r.try_get("held")?,
            credits_used: match r.columns().iter().any(|c| c.name() == "credits_used") {
                true => r.try_get("credits_used")?,
                false => None,
            },
            policies: match r.columns().iter().any(|c| c.name() == "policies") {
                true => parse_policies(r.try_get("policies")?),
                false => Vec::new(),
            },
        })
    }
}

/// `period:limit,period:limit` (as the consume statement aggregates them) into pairs; anything malformed is left
/// out, so a header is never built from it.
fn parse_policies(text: Option<String>) -> Vec<(String, i64)> {
    text.unwrap_or_default()
        .split(',')
        .filter_map(|p| {
            let (period, limit) = p.split_once(':')?;
            Some((period.to_string(), limit.parse().ok()?))
        })
        .collect()
}

/// One window of one meter, as `quota.status` reports it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MeterStatus {
    /// Meter key.
    pub meter: String,
    /// `hour`, `day`, `week` or `month`.
    pub period: String,
    /// Used in the current window.
    pub used: i64,
    /// Null means unlimited.
    pub limit: Option<i64>,
    /// Null when unlimited.
    pub remaining: Option<i64>,
    /// `(used + held) / limit` in percent, one decimal; null when unlimited.
    pub percent: Option<f64>,
    /// `normal`, `warning`, `critical` or `exceeded`.
    pub status: String,
    /// When the window ends.
    pub resets_at: DateTime<Utc>,
    /// Held by open reservations.
    pub held: i64,
}

/// The caller's quota: plan and every window (the body of `GET /v1/quota` and of each SSE event).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Quota {
    /// The user id (the token's `sub`).
    pub user: String,
    /// The effective plan; null only when the plan limits no meter.
    pub plan: Option<String>,
    /// One entry per meter and window.
    pub meters: Vec<MeterStatus>,
}

/// Reads `quota.status(user)`; shared with the SSE stream.
pub async fn read_quota(db: &Db, user: &str) -> Result<Quota, DbError> {
    let rows = db
        .run(Retry::Safe, |c| async move {
            let stmt = c
                .prepare_cached("SELECT * FROM quota.status($1::text)")
                .await?;
            c.query(&stmt, &[&user]).await
        })
        .await?;
    let mut plan = None;
    let mut meters = Vec::with_capacity(rows.len());
    for r in &rows {
        plan = r.try_get("plan").map_err(DbError::from)?;
        meters.push(
            (|| {
                Ok::<_, tokio_postgres::Error>(MeterStatus {
                    meter: r.try_get("meter")?,
                    period: r.try_get("period")?,
                    used: r.try_get("used")?,
                    limit: r.try_get("limit")?,
                    remaining: r.try_get("remaining")?,
                    percent: r.try_get("percent")?,
                    status: r.try_get("status")?,
                    resets_at: r.try_get("resets_at")?,
                    held: r.try_get("held")?,
                })
            })()
            .map_err(DbError::from)?,
        );
    }
    Ok(Quota {
        user: user.to_string(),
        plan,
        meters,
    })
}

/// The caller's plan and every meter's window.
#[utoipa::path(get, path = "/v1/quota", tag = "quota", security(("bearer" = [])),
    responses((status = 200, body = Quota), (status = 401, body = ProblemDoc, content_type = "application/problem+json")))]
async fn get_quota(State(s): State<AppState>, user: User) -> Result<Json<Quota>, ApiError> {
    let _turn = turn(&s, &user.id).await?;
    Ok(Json(read_quota(&s.db, &user.id).await?))
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
    let (meter, amount, metadata) = (&body.meter, body.amount, &body.metadata);
    let decision =
        s.db.run_statement(retry, |c| async move {
            let row = db::query_one(
                &c,
                // The meter's other limited windows come in the same round trip, for RateLimit-Policy.
                "SELECT d.*, (SELECT string_agg(s.period || ':' || s.\"limit\", ',') FROM quota.status($1::text) s \
                 WHERE s.meter = $2::text AND s.\"limit\" IS NOT NULL) AS policies \
                 FROM quota.consume($1::text, $2::text, $3::bigint, $4::text, $5::jsonb) d",
                &[&user, meter, &amount, &key, metadata],
            )
            .await?;
            Ok(Decision::from_row(&row)?)
        })
        .await?;
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

/// A reservation: the decision plus the id and expiry of the hold (null when denied).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Reservation {
    /// Id to commit or release.
    pub reservation_id: Option<Uuid>,
    /// When the hold stops counting.
    pub expires_at: Option<DateTime<Utc>>,
    /// The decision.
    #[serde(flatten)]
    pub decision: Decision,
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
    let (user, key) = (&user.id, &key);
    let (meter, amount, ttl) = (&body.meter, body.amount, f64::from(body.ttl_s));
    let reservation =
        s.db.run_statement(retry, |c| async move {
            let row = db::query_one(
                &c,
                "SELECT * FROM quota.reserve($1::text, $2::text, $3::bigint, \
                 make_interval(secs => $4::float8), $5::text)",
                &[user, meter, &amount, &ttl, key],
            )
            .await?;
            Ok(Reservation {
                reservation_id: row.try_get("reservation_id")?,
                expires_at: row.try_get("expires_at")?,
                decision: Decision::from_row(&row)?,
            })
        })
        .await?;
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

/// The outcome of a commit or release (`quota.settlement`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Settlement {
    /// The reservation.
    pub reservation_id: Uuid,
    /// `committed` or `released`.
    pub state: String,
    /// The amount that was held.
    pub held: i64,
    /// The actual amount (null for a release).
    pub actual: Option<i64>,
    /// What was charged (capped by the limits).
    pub charged: i64,
    /// True when the charge was cut to fit the limits.
    pub capped: bool,
    /// Binding window after the charge (null when nothing was charged).
    pub used: Option<i64>,
    /// Its limit.
    pub limit: Option<i64>,
    /// Its remaining amount.
    pub remaining: Option<i64>,
    /// Its status.
    pub status: Option<String>,
    /// When it resets.
    pub resets_at: Option<DateTime<Utc>>,
}

impl Settlement {
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            reservation_id: r.try_get("reservation_id")?,
            state: r.try_get("state")?,
            held: r.try_get("held")?,
            actual: r.try_get("actual")?,
            charged: r.try_get("charged")?,
            capped: r.try_get("capped")?,
            used: r.try_get("used")?,
            limit: r.try_get("limit")?,
            remaining: r.try_get("remaining")?,
            status: r.try_get("status")?,
            resets_at: timestamp::optional(r, "resets_at")?,
        })
    }
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
    let (user, actual) = (&user.id, body.actual);
    let settlement =
        s.db.run_statement(Retry::IfNotApplied, |c| async move {
            let sql = "SELECT * FROM quota.commit($1::uuid, $2::bigint, $3::text)";
            let row = db::query_one(&c, sql, &[&id, &actual, user]).await?;
            Ok(Settlement::from_row(&row)?)
        })
        .await?;
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
    let user = &user.id;
    let settlement =
        s.db.run_statement(Retry::IfNotApplied, |c| async move {
            let sql = "SELECT * FROM quota.release($1::uuid, $2::text)";
            let row = db::query_one(&c, sql, &[&id, user]).await?;
            Ok(Settlement::from_row(&row)?)
        })
        .await?;
    Ok(Json(settlement))
}
