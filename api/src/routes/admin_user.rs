//! Admin reads of one user for the dashboard's user page: the account (plan and expiry), usage history,
//! credits and the audit entries about the user. Each is one statement in a `quota_admin` transaction, like
//! the other admin routes.

use axum::{extract::State, Json};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::Admin,
    db::{admin_tx, DbError, Retry},
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    problem::ProblemDoc,
    AppState,
};

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(account))
        .routes(routes!(history))
        .routes(routes!(credits))
        .routes(routes!(audit))
}

/// The audit actions whose target is a user (the others target a plan, meter or product).
const USER_ACTIONS: &[&str] = &[
    "assign_plan",
    "set_timezone",
    "set_limit",
    "reset_usage",
    "grant",
];

/// A user's account row; `plan` is the assigned plan (`quota.user_usage` shows the effective one).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountRow {
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
}

/// The user's account (404 for a user the API has never seen).
#[utoipa::path(get, path = "/v1/admin/users/{id}/account", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = AccountRow),
        (status = 403, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json", description = "No such account")))]
async fn account(
    State(s): State<AppState>,
    _admin: Admin,
    ApiPath(user): ApiPath<String>,
) -> Result<Json<AccountRow>, ApiError> {
    let user = &user;
    let rows = s
        .db
        .run(Retry::Safe, |c| async move {
            let rows = admin_tx(
                c,
                "SELECT user_id, plan, plan_expires_at, timezone, created_at FROM quota.accounts WHERE user_id = $1",
                &[user],
            )
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(AccountRow {
                        user_id: r.try_get("user_id")?,
                        plan: r.try_get("plan")?,
                        plan_expires_at: r.try_get("plan_expires_at")?,
                        timezone: r.try_get("timezone")?,
                        created_at: r.try_get("created_at")?,
                    })
                })
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        })
        .await?;
    rows.into_iter()
        .next()
        .map(Json)
        .ok_or_else(|| DbError::NotFound(format!("no account for user {user:?}")).into())
}

/// Query of `GET /v1/admin/users/{id}/history`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Days back from today, 1 to 366 (default 30).
    pub days: Option<i32>,
    /// Meter (default `ai_requests`).
    pub meter: Option<String>,
}

/// One UTC day of one user's use of a meter (`quota.usage_history`).
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryDay {
    /// The day.
    pub day: NaiveDate,
    /// Usage.
    pub usage: i64,
    /// Allowed calls.
    pub requests: i64,
    /// Denials.
    pub denials: i64,
}

/// The user's daily usage of a meter, oldest first, one row per day (zeros included).
#[utoipa::path(get, path = "/v1/admin/users/{id}/history", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id"), HistoryQuery),
    responses((status = 200, body = Vec<HistoryDay>), (status = 400, body = ProblemDoc, content_type = "application/problem+json")))]
async fn history(
    State(s): State<AppState>,
    _admin: Admin,
    ApiPath(user): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<Vec<HistoryDay>>, ApiError> {
    let days = q.days.unwrap_or(30);
    let meter = q.meter.unwrap_or_else(|| "ai_requests".into());
    let (user, meter) = (&user, &meter);
    let rows =
        s.db.run(Retry::Safe, |c| async move {
            let rows = admin_tx(
                c,
                "SELECT * FROM quota.usage_history($1::text, $2::int, $3::text)",
                &[user, &days, meter],
            )
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(HistoryDay {
                        day: r.try_get("day")?,
                        usage: r.try_get("usage")?,
                        requests: r.try_get("requests")?,
                        denials: r.try_get("denials")?,
                    })
                })
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        })
        .await?;
    Ok(Json(rows))
}

/// A user's unexpired credits of one meter (`quota.credits`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreditRow {
    /// Meter key.
    pub meter: String,
    /// Credits left.
    pub remaining: i64,
    /// The earliest expiry; null: never.
    pub next_expiry: Option<DateTime<Utc>>,
    /// Grants holding them.
    pub grants: i64,
}

/// The user's unexpired credits per meter.
#[utoipa::path(get, path = "/v1/admin/users/{id}/credits", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = Vec<CreditRow>), (status = 403, body = ProblemDoc, content_type = "application/problem+json")))]
async fn credits(
    State(s): State<AppState>,
    _admin: Admin,
    ApiPath(user): ApiPath<String>,
) -> Result<Json<Vec<CreditRow>>, ApiError> {
    let user = &user;
    let rows =
        s.db.run(Retry::Safe, |c| async move {
            let rows = admin_tx(c, "SELECT * FROM quota.credits($1::text)", &[user]).await?;
            rows.iter()
                .map(|r| {
                    Ok(CreditRow {
                        meter: r.try_get("meter")?,
                        remaining: r.try_get("remaining")?,
                        next_expiry: r.try_get("next_expiry")?,
                        grants: r.try_get("grants")?,
                    })
                })
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        })
        .await?;
    Ok(Json(rows))
}

/// Query of `GET /v1/admin/users/{id}/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// How many, newest first (1 to 500, default 50).
    pub limit: Option<i64>,
}

/// One entry of `quota.audit_log`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Entry id.
    pub id: i64,
    /// Who: an admin's `sub`, `api-key:<digest prefix>`, or the database role.
    pub actor: String,
    /// `assign_plan`, `set_limit`, `reset_usage`, `grant`, `set_timezone`.
    pub action: String,
    /// The user.
    pub target: Option<String>,
    /// What changed.
    pub details: serde_json::Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// The audit entries about the user, newest first.
#[utoipa::path(get, path = "/v1/admin/users/{id}/audit", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id"), AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 400, body = ProblemDoc, content_type = "application/problem+json")))]
async fn audit(
    State(s): State<AppState>,
    _admin: Admin,
    ApiPath(user): ApiPath<String>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest(
            format!("limit must be from 1 to 500, got {limit}"),
            axum::http::StatusCode::BAD_REQUEST,
        ));
    }
    let actions: Vec<String> = USER_ACTIONS.iter().map(|a| a.to_string()).collect();
    let (user, actions) = (&user, &actions);
    let rows =
        s.db.run(Retry::Safe, |c| async move {
            let rows = admin_tx(
                c,
                "SELECT id, actor, action, target, details, created_at FROM quota.audit_log \
                 WHERE target = $1 AND action = ANY($2::text[]) ORDER BY id DESC LIMIT $3",
                &[user, actions, &limit],
            )
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(AuditEntry {
                        id: r.try_get("id")?,
                        actor: r.try_get("actor")?,
                        action: r.try_get("action")?,
                        target: r.try_get("target")?,
                        details: r.try_get("details")?,
                        created_at: r.try_get("created_at")?,
                    })
                })
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        })
        .await?;
    Ok(Json(rows))
}
