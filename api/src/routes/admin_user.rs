//! Admin reads of one user for the dashboard's user page: the account (plan and expiry), usage history,
//! credits and the audit entries about the user. Each is one statement in a `quota_admin` transaction, like
//! the other admin routes.

use axum::{extract::State, Json};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::Admin,
    db::DbError,
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    problem::ProblemDoc,
    store::{
        self,
        users::{AccountRow, AuditEntry, CreditRow, HistoryDay},
    },
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
    store::users::account(&s.db, &user)
        .await?
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
    Ok(Json(
        store::users::usage_history(&s.db, &user, days, &meter).await?,
    ))
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
    Ok(Json(store::users::credits(&s.db, &user).await?))
}

/// Query of `GET /v1/admin/users/{id}/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// How many, newest first (1 to 500, default 50).
    pub limit: Option<i64>,
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
    Ok(Json(
        store::users::audit(&s.db, &user, &actions, limit).await?,
    ))
}
