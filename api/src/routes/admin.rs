//! Admin routes: callers whose JWT `role` is in `AIQUOTA_ADMIN_ROLES` (else 403). Each runs its one
//! extension call in a transaction as `quota_admin` ([`admin_tx`]), and passes the admin's `sub` as
//! `p_actor`, so `quota.audit_log` records who did it.

use axum::{extract::State, Json};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::Admin,
    db::{admin_tx, admin_tx_one, Retry},
    error::ApiError,
    extract::{ApiPath, ApiQuery, JsonBody},
    problem::ProblemDoc,
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

/// One window of a user, as an admin sees it (`quota.user_usage`).
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageRow {
    /// Meter key.
    pub meter: String,
    /// Effective plan.
    pub plan: String,
    /// Window period.
    pub period: String,
    /// Used in the current window.
    pub used: i64,
    /// Null means unlimited.
    pub limit: Option<i64>,
    /// Percent of the limit; null when unlimited.
    pub percent: Option<f64>,
    /// `normal`, `warning`, `critical` or `exceeded`.
    pub status: String,
    /// When the window ends.
    pub resets_at: Option<DateTime<Utc>>,
    /// Usage since local midnight, from the ledger.
    pub today: i64,
    /// Usage of all time, from the ledger.
    pub all_time: i64,
    /// Last use.
    pub last_used_at: Option<DateTime<Utc>>,
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
    let user = &user;
    let rows =
        s.db.run(Retry::Safe, |c| async move {
            let rows = admin_tx(c, "SELECT * FROM quota.user_usage($1::text)", &[user]).await?;
            rows.iter()
                .map(|r| {
                    Ok(UsageRow {
                        meter: r.try_get("meter")?,
                        plan: r.try_get("plan")?,
                        period: r.try_get("period")?,
                        used: r.try_get("used")?,
                        limit: r.try_get("limit")?,
                        percent: r.try_get("percent")?,
                        status: r.try_get("status")?,
                        resets_at: r.try_get("resets_at")?,
                        today: r.try_get("today")?,
                        all_time: r.try_get("all_time")?,
                        last_used_at: r.try_get("last_used_at")?,
                    })
                })
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        })
        .await?;
    Ok(Json(rows))
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

/// A user's account (`quota.accounts`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    /// User id.
    pub user_id: String,
    /// Assigned plan.
    pub plan: String,
    /// When the plan ends; null: never.
    pub plan_expires_at: Option<DateTime<Utc>>,
    /// IANA timezone; null: the default.
    pub timezone: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
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
    let (user, actor, plan, expires) = (&user, &admin.id, &body.plan, &body.expires_at);
    let account =
        s.db.run(Retry::Safe, |c| async move {
            let row = admin_tx_one(
                c,
                "SELECT * FROM quota.assign_plan($1::text, $2::text, $3::timestamptz, $4::text)",
                &[user, plan, expires, actor],
            )
            .await?;
            account(&row)
        })
        .await?;
    Ok(Json(account))
}

fn account(r: &Row) -> Result<Account, tokio_postgres::Error> {
    Ok(Account {
        user_id: r.try_get("user_id")?,
        plan: r.try_get("plan")?,
        plan_expires_at: r.try_get("plan_expires_at")?,
        timezone: r.try_get("timezone")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
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

/// A per-user override (`quota.user_limits`); all null after a removal.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserLimit {
    /// User id.
    pub user_id: Option<String>,
    /// Meter key.
    pub meter: Option<String>,
    /// Period.
    pub period: Option<String>,
    /// The limit.
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
    let (user, actor, meter, period, limit) =
        (&user, &admin.id, &body.meter, &body.period, &body.limit);
    let row =
        s.db.run(Retry::Safe, |c| async move {
            let row = admin_tx_one(
                c,
                "SELECT * FROM quota.set_limit($1::text, $2::text, $3::text, $4::bigint, $5::text)",
                &[user, meter, period, limit, actor],
            )
            .await?;
            let r = &row;
            Ok(UserLimit {
                user_id: r.try_get("user_id")?,
                meter: r.try_get("meter")?,
                period: r.try_get("period")?,
                limit: r.try_get("limit")?,
            })
        })
        .await?;
    Ok(Json(row))
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
    let (user, actor, meter) = (&user, &admin.id, &body.meter);
    let windows =
        s.db.run(Retry::IfNotApplied, |c| async move {
            let row = admin_tx_one(
                c,
                "SELECT quota.reset_usage($1::text, $2::text, $3::text)",
                &[user, meter, actor],
            )
            .await?;
            row.try_get::<_, i64>(0)
        })
        .await?;
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

/// A grant of credits (`quota.grants`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Grant {
    /// Grant id.
    pub id: i64,
    /// User id.
    pub user_id: String,
    /// Meter key.
    pub meter: String,
    /// Credits given.
    pub amount: i64,
    /// Credits left.
    pub remaining: i64,
    /// Expiry; null: never.
    pub expires_at: Option<DateTime<Utc>>,
    /// Source.
    pub source: String,
    /// Created.
    pub created_at: DateTime<Utc>,
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
    let (user, actor, meter, amount, expires, source) = (
        &user,
        &admin.id,
        &body.meter,
        body.amount,
        &body.expires_at,
        &source,
    );
    // Not idempotent: a grant is repeated only when it certainly did not happen.
    let grant = s
        .db
        .run(Retry::IfNotApplied, |c| async move {
            let row = admin_tx_one(
                c,
                "SELECT * FROM quota.grant($1::text, $2::text, $3::bigint, $4::timestamptz, $5::text, $6::text)",
                &[user, meter, &amount, expires, source, actor],
            )
            .await?;
            let r = &row;
            Ok(Grant {
                id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                meter: r.try_get("meter")?,
                amount: r.try_get("amount")?,
                remaining: r.try_get("remaining")?,
                expires_at: r.try_get("expires_at")?,
                source: r.try_get("source")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .await?;
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

/// One UTC day of one meter across all users (`quota.analytics`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Analytics {
    /// The day.
    pub day: NaiveDate,
    /// The meter.
    pub meter: String,
    /// Accounts in total.
    pub total_users: i64,
    /// Users with at least one call that day.
    pub active_users: i64,
    /// Users denied at least once that day.
    pub users_at_limit: i64,
    /// Usage that day.
    pub usage: i64,
    /// Allowed calls that day.
    pub requests: i64,
    /// Usage of all time.
    pub usage_all_time: i64,
    /// Allowed calls of all time.
    pub requests_all_time: i64,
    /// Average usage per active user (null when nobody was active).
    pub avg_usage_per_active_user: Option<f64>,
    /// Denials that day.
    pub denials: i64,
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
    let (day, meter) = (&q.day, &meter);
    // analytics() also totals finished days once (an idempotent write), so a repeat is harmless.
    let row = s
        .db
        .run(Retry::Safe, |c| async move {
            let row = admin_tx_one(
                c,
                "SELECT day, meter, total_users, active_users, users_at_limit, usage, requests, usage_all_time, \
                 requests_all_time, avg_usage_per_active_user::float8 AS avg_usage_per_active_user, denials \
                 FROM quota.analytics($1::date, $2::text)",
                &[day, meter],
            )
            .await?;
            let r = &row;
            Ok(Analytics {
                day: r.try_get("day")?,
                meter: r.try_get("meter")?,
                total_users: r.try_get("total_users")?,
                active_users: r.try_get("active_users")?,
                users_at_limit: r.try_get("users_at_limit")?,
                usage: r.try_get("usage")?,
                requests: r.try_get("requests")?,
                usage_all_time: r.try_get("usage_all_time")?,
                requests_all_time: r.try_get("requests_all_time")?,
                avg_usage_per_active_user: r.try_get("avg_usage_per_active_user")?,
                denials: r.try_get("denials")?,
            })
        })
        .await?;
    Ok(Json(row))
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

/// One of the heaviest users (`quota.top_users`).
#[derive(Debug, Serialize, ToSchema)]
pub struct TopUser {
    /// 1 for the heaviest.
    pub rank: i64,
    /// User id.
    pub user_id: String,
    /// Effective plan.
    pub plan: Option<String>,
    /// Usage over the range.
    pub usage: i64,
    /// Allowed calls.
    pub requests: i64,
    /// Denials.
    pub denials: i64,
    /// Last use.
    pub last_at: Option<DateTime<Utc>>,
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
    let (by, meter) = (&by, &meter);
    let rows =
        s.db.run(Retry::Safe, |c| async move {
            let rows = admin_tx(
                c,
                "SELECT * FROM quota.top_users($1::int, $2::text, $3::text)",
                &[&limit, by, meter],
            )
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(TopUser {
                        rank: r.try_get("rank")?,
                        user_id: r.try_get("user_id")?,
                        plan: r.try_get("plan")?,
                        usage: r.try_get("usage")?,
                        requests: r.try_get("requests")?,
                        denials: r.try_get("denials")?,
                        last_at: r.try_get("last_at")?,
                    })
                })
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        })
        .await?;
    Ok(Json(rows))
}
