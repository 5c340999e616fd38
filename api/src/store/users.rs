//! The admin reads of one user for the dashboard's user page: the account row, `quota.usage_history`,
//! `quota.credits` and the audit entries about the user, each in a transaction as `quota_admin`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::db::{admin_tx, Db, DbError, Retry};

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

impl AccountRow {
    /// One row of its statement.
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            user_id: r.try_get("user_id")?,
            plan: r.try_get("plan")?,
            plan_expires_at: r.try_get("plan_expires_at")?,
            timezone: r.try_get("timezone")?,
            created_at: r.try_get("created_at")?,
        })
    }
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

impl HistoryDay {
    /// One row of its statement.
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            day: r.try_get("day")?,
            usage: r.try_get("usage")?,
            requests: r.try_get("requests")?,
            denials: r.try_get("denials")?,
        })
    }
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

impl CreditRow {
    /// One row of its statement.
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            meter: r.try_get("meter")?,
            remaining: r.try_get("remaining")?,
            next_expiry: r.try_get("next_expiry")?,
            grants: r.try_get("grants")?,
        })
    }
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

impl AuditEntry {
    /// One row of its statement.
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            actor: r.try_get("actor")?,
            action: r.try_get("action")?,
            target: r.try_get("target")?,
            details: r.try_get("details")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

/// The user's account row; `None` for a user the API has never seen.
pub async fn account(db: &Db, user: &str) -> Result<Option<AccountRow>, DbError> {
    let rows = db
        .run(Retry::Safe, |c| async move {
            let rows = admin_tx(
                c,
                "SELECT user_id, plan, plan_expires_at, timezone, created_at FROM quota.accounts WHERE user_id = $1",
                &[&user],
            )
            .await?;
            rows.iter().map(AccountRow::from_row).collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(rows.into_iter().next())
}

/// `quota.usage_history`: the user's usage of `meter` per day, `days` back from today.
pub async fn usage_history(
    db: &Db,
    user: &str,
    days: i32,
    meter: &str,
) -> Result<Vec<HistoryDay>, DbError> {
    db.run(Retry::Safe, |c| async move {
        let rows = admin_tx(
            c,
            "SELECT * FROM quota.usage_history($1::text, $2::int, $3::text)",
            &[&user, &days, &meter],
        )
        .await?;
        rows.iter().map(HistoryDay::from_row).collect()
    })
    .await
}

/// `quota.credits`: the user's unexpired credits per meter.
pub async fn credits(db: &Db, user: &str) -> Result<Vec<CreditRow>, DbError> {
    db.run(Retry::Safe, |c| async move {
        let rows = admin_tx(c, "SELECT * FROM quota.credits($1::text)", &[&user]).await?;
        rows.iter().map(CreditRow::from_row).collect()
    })
    .await
}

/// The newest `limit` entries of `quota.audit_log` about the user whose action is one of `actions`.
pub async fn audit(
    db: &Db,
    user: &str,
    actions: &[String],
    limit: i64,
) -> Result<Vec<AuditEntry>, DbError> {
    db.run(Retry::Safe, |c| async move {
        let rows = admin_tx(
            c,
            "SELECT id, actor, action, target, details, created_at FROM quota.audit_log \
             WHERE target = $1 AND action = ANY($2::text[]) ORDER BY id DESC LIMIT $3",
            &[&user, &actions, &limit],
        )
        .await?;
        rows.iter().map(AuditEntry::from_row).collect()
    })
    .await
}
