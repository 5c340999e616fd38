//! Admin routes: callers whose JWT `role` is in `AIQUOTA_ADMIN_ROLES` (else 403). Each runs its one
//! extension call in a transaction as `quota_admin` ([`admin_tx`]), and passes the admin's `sub` as
//! `p_actor`, so `quota.audit_log` records who did it.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::Admin,
    db::{admin_tx, Retry},
    extract::{ApiPath, JsonBody},
    problem::{ApiError, ProblemDoc},
    AppState,
};

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(user_usage))
        .routes(routes!(assign_plan))
        .routes(routes!(set_limit))
        .routes(routes!(reset_usage))
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
            let rows = admin_tx(
                c,
                "SELECT * FROM quota.assign_plan($1::text, $2::text, $3::timestamptz, $4::text)",
                &[user, plan, expires, actor],
            )
            .await?;
            account(&rows[0])
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

/// Body of `PUT /v1/admin/users/{id}/limits`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitRequest {
    /// Meter key.
    pub meter: String,
    /// `hour`, `day`, `week` or `month`.
    pub period: String,
    /// The override; null removes it.
    #[serde(default)]
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
            let rows = admin_tx(
                c,
                "SELECT * FROM quota.set_limit($1::text, $2::text, $3::text, $4::bigint, $5::text)",
                &[user, meter, period, limit, actor],
            )
            .await?;
            let r = &rows[0];
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
    request_body(content = ResetRequest, description = "Empty body: every meter"),
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
            let rows = admin_tx(
                c,
                "SELECT quota.reset_usage($1::text, $2::text, $3::text)",
                &[user, meter, actor],
            )
            .await?;
            rows[0].try_get::<_, i64>(0)
        })
        .await?;
    Ok(Json(ResetResult { windows }))
}
