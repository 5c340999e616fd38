//! Admin routes: callers whose JWT `role` is in `AIQUOTA_ADMIN_ROLES` (else 403). Each runs its one
//! extension call in a transaction as `quota_admin` ([`crate::store::admin`]), and passes the admin's `sub` as
//! `p_actor`, so `quota.audit_log` records who did it.

use axum::{extract::State, Json};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::Admin,
    error::ApiError,
    extract::{ApiPath, ApiQuery, JsonBody},
    problem::ProblemDoc,
    store::admin::{self, Account, Analytics, Grant, NewGrant, TopUser, UsageRow, UserLimit},
    AppState,
};

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(user_usage))
        .routes(routes!(assign_plan))
        .routes(routes!(set_limit))
        .routes(routes!(reset_usage))
        .routes(routes!(grant))
        .routes(routes!(analytics))
        .routes(routes!(top_users))
}

/// A user's usage of every window, today and all time.
#[utoipa::path(get, path = "/v1/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = Vec<UsageRow>), (status = 403, body = ProblemDoc, content_type = "application/problem+json")))]
async fn user_usage(
    State(s): State<AppState>,
    _admin: Admin,
    ApiPath(user): ApiPath<String>,
) -> Result<Json<Vec<UsageRow>>, ApiError> {
    Ok(Json(admin::user_usage(&s.db, &user).await?))
}

/// Body of `PUT /v1/admin/users/{id}/plan`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// Plan key (`free`, `pro`, ...).
    pub plan: String,
    /// End of the plan (RFC 3339); null or absent: no end.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Puts the user on a plan, applied to the very next consume; announced on the SSE stream.
#[utoipa::path(put, path = "/v1/admin/users/{id}/plan", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = PlanRequest,
    responses((status = 200, body = Account),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "Expiry not in the future"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json", description = "Unknown plan")))]
async fn assign_plan(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(user): ApiPath<String>,
    JsonBody(body): JsonBody<PlanRequest>,
) -> Result<Json<Account>, ApiError> {
    let account = admin::assign_plan(&s.db, &user, &body.plan, &body.expires_at, &admin.id).await?;
    Ok(Json(account))
}

// The enums below exist for the OpenAPI document only: the fields stay strings so that the extension's own
// message (22023) answers any other value.

/// A calendar window.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum PeriodDoc {
    Hour,
    Day,
    Week,
    Month,
}

/// The window the heaviest users are ranked by.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum TopByDoc {
    Today,
    Week,
    Month,
    AllTime,
}

/// Body of `PUT /v1/admin/users/{id}/limits`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitRequest {
    /// Meter key.
    pub meter: String,
    /// `hour`, `day`, `week` or `month`.
    #[schema(inline, value_type = PeriodDoc)]
    pub period: String,
    /// The override; null removes it.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub limit: Option<i64>,
}

/// Sets (or with `limit: null` removes) a per-user limit that overrides the plan's.
#[utoipa::path(put, path = "/v1/admin/users/{id}/limits", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = LimitRequest,
    responses((status = 200, body = UserLimit), (status = 400, body = ProblemDoc, content_type = "application/problem+json")))]
async fn set_limit(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(user): ApiPath<String>,
    JsonBody(body): JsonBody<LimitRequest>,
) -> Result<Json<UserLimit>, ApiError> {
    let limit = admin::set_limit(
        &s.db,
        &user,
        &body.meter,
        &body.period,
        &body.limit,
        &admin.id,
    )
    .await?;
    Ok(Json(limit))
}

/// Body of `POST /v1/admin/users/{id}/reset`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ResetRequest {
    /// Meter to reset; absent: every meter.
    pub meter: Option<String>,
}

/// How many windows a reset zeroed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetResult {
    /// Windows zeroed.
    pub windows: i64,
}

/// Zeroes the user's current windows of one meter or all; the ledger gets correcting rows.
#[utoipa::path(post, path = "/v1/admin/users/{id}/reset", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body(content = Option<ResetRequest>, description = "Empty body: every meter"),
    responses((status = 200, body = ResetResult), (status = 400, body = ProblemDoc, content_type = "application/problem+json")))]
async fn reset_usage(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(user): ApiPath<String>,
    JsonBody(body): JsonBody<ResetRequest>,
) -> Result<Json<ResetResult>, ApiError> {
    let windows = admin::reset_usage(&s.db, &user, &body.meter, &admin.id).await?;
    Ok(Json(ResetResult { windows }))
}

/// Body of `POST /v1/admin/users/{id}/grants`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// Meter key.
    pub meter: String,
    /// Credits to give.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub amount: i64,
    /// When the credits expire (RFC 3339); null or absent: never.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Where they come from (default `admin`), 1 to 100 characters.
    #[serde(default)]
    pub source: Option<String>,
}

/// Gives the user credits, spent after the plan's window allowance is used up (`quota.grant`).
#[utoipa::path(post, path = "/v1/admin/users/{id}/grants", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = GrantRequest,
    responses((status = 201, body = Grant), (status = 400, body = ProblemDoc, content_type = "application/problem+json")))]
async fn grant(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(user): ApiPath<String>,
    JsonBody(body): JsonBody<GrantRequest>,
) -> Result<(axum::http::StatusCode, Json<Grant>), ApiError> {
    let source = body.source.clone().unwrap_or_else(|| "admin".into());
    let grant = NewGrant {
        user: &user,
        meter: &body.meter,
        amount: body.amount,
        expires: &body.expires_at,
        source: &source,
        actor: &admin.id,
    };
    let grant = admin::grant(&s.db, grant).await?;
    Ok((axum::http::StatusCode::CREATED, Json(grant)))
}

/// Query of `GET /v1/admin/analytics`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsQuery {
    /// UTC day `YYYY-MM-DD` (default today).
    pub day: Option<NaiveDate>,
    /// Meter (default `ai_requests`).
    pub meter: Option<String>,
}

/// Usage of one UTC day: users, active users, users at their limit, usage, denials.
#[utoipa::path(get, path = "/v1/admin/analytics", tag = "admin", security(("bearer" = [])),
    params(AnalyticsQuery),
    responses((status = 200, body = Analytics), (status = 400, body = ProblemDoc, content_type = "application/problem+json")))]
async fn analytics(
    State(s): State<AppState>,
    _admin: Admin,
    ApiQuery(q): ApiQuery<AnalyticsQuery>,
) -> Result<Json<Analytics>, ApiError> {
    let meter = q.meter.unwrap_or_else(|| "ai_requests".into());
    Ok(Json(admin::analytics(&s.db, &q.day, &meter).await?))
}

/// Query of `GET /v1/admin/top-users`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopUsersQuery {
    /// How many (1 to 1000, default 10).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i32>,
    /// `today` (default), `week`, `month` or `all_time`.
    #[param(inline, value_type = Option<TopByDoc>)]
    pub by: Option<String>,
    /// Meter (default `ai_requests`).
    pub meter: Option<String>,
}

/// The heaviest users of a meter over a range.
#[utoipa::path(get, path = "/v1/admin/top-users", tag = "admin", security(("bearer" = [])),
    params(TopUsersQuery),
    responses((status = 200, body = Vec<TopUser>), (status = 400, body = ProblemDoc, content_type = "application/problem+json")))]
async fn top_users(
    State(s): State<AppState>,
    _admin: Admin,
    ApiQuery(q): ApiQuery<TopUsersQuery>,
) -> Result<Json<Vec<TopUser>>, ApiError> {
    let limit = q.limit.unwrap_or(10);
    let by = q.by.unwrap_or_else(|| "today".into());
    let meter = q.meter.unwrap_or_else(|| "ai_requests".into());
    Ok(Json(admin::top_users(&s.db, limit, &by, &meter).await?))
}
