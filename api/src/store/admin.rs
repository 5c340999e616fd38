//! The admin calls: `quota.user_usage`, `assign_plan`, `set_limit`, `reset_usage`, `grant`, `analytics`
//! and `top_users`, each in a transaction as `quota_admin` ([`admin_tx`]) with the admin's `sub` as
//! `p_actor` where the function takes one, so `quota.audit_log` records who did it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::db::{admin_tx, admin_tx_one, Db, DbError, Retry};

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

impl UsageRow {
    /// One row of its statement.
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
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
    }
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

impl Account {
    /// One row of its statement.
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            user_id: r.try_get("user_id")?,
            plan: r.try_get("plan")?,
            plan_expires_at: r.try_get("plan_expires_at")?,
            timezone: r.try_get("timezone")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }
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

impl UserLimit {
    /// One row of its statement.
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            user_id: r.try_get("user_id")?,
            meter: r.try_get("meter")?,
            period: r.try_get("period")?,
            limit: r.try_get("limit")?,
        })
    }
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

impl Grant {
    /// One row of its statement.
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            user_id: r.try_get("user_id")?,
            meter: r.try_get("meter")?,
            amount: r.try_get("amount")?,
            remaining: r.try_get("remaining")?,
            expires_at: r.try_get("expires_at")?,
            source: r.try_get("source")?,
            created_at: r.try_get("created_at")?,
        })
    }
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

impl Analytics {
    /// One row of its statement.
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
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
    }
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

impl TopUser {
    /// One row of its statement.
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            rank: r.try_get("rank")?,
            user_id: r.try_get("user_id")?,
            plan: r.try_get("plan")?,
            usage: r.try_get("usage")?,
            requests: r.try_get("requests")?,
            denials: r.try_get("denials")?,
            last_at: r.try_get("last_at")?,
        })
    }
}

/// `quota.user_usage`: every window of the user, with today's and all-time usage.
pub async fn user_usage(db: &Db, user: &str) -> Result<Vec<UsageRow>, DbError> {
    db.run(Retry::Safe, |c| async move {
        let rows = admin_tx(c, "SELECT * FROM quota.user_usage($1::text)", &[&user]).await?;
        rows.iter().map(UsageRow::from_row).collect()
    })
    .await
}

/// `quota.assign_plan`: puts the user on `plan` until `expires` (none: no end).
pub async fn assign_plan(
    db: &Db,
    user: &str,
    plan: &str,
    expires: &Option<DateTime<Utc>>,
    actor: &str,
) -> Result<Account, DbError> {
    db.run(Retry::Safe, |c| async move {
        let row = admin_tx_one(
            c,
            "SELECT * FROM quota.assign_plan($1::text, $2::text, $3::timestamptz, $4::text)",
            &[&user, &plan, expires, &actor],
        )
        .await?;
        Account::from_row(&row)
    })
    .await
}

/// `quota.set_limit`: a per-user override of the plan's limit; `None` removes it.
pub async fn set_limit(
    db: &Db,
    user: &str,
    meter: &str,
    period: &str,
    limit: &Option<i64>,
    actor: &str,
) -> Result<UserLimit, DbError> {
    db.run(Retry::Safe, |c| async move {
        let row = admin_tx_one(
            c,
            "SELECT * FROM quota.set_limit($1::text, $2::text, $3::text, $4::bigint, $5::text)",
            &[&user, &meter, &period, limit, &actor],
        )
        .await?;
        UserLimit::from_row(&row)
    })
    .await
}

/// `quota.reset_usage`: zeroes the user's current windows of `meter` (none: every meter); the number of
/// windows zeroed. Repeated only when it certainly did not apply.
pub async fn reset_usage(
    db: &Db,
    user: &str,
    meter: &Option<String>,
    actor: &str,
) -> Result<i64, DbError> {
    db.run(Retry::IfNotApplied, |c| async move {
        let row = admin_tx_one(
            c,
            "SELECT quota.reset_usage($1::text, $2::text, $3::text)",
            &[&user, meter, &actor],
        )
        .await?;
        row.try_get::<_, i64>(0)
    })
    .await
}

/// What one grant gives.
#[derive(Clone, Copy, Debug)]
pub struct NewGrant<'a> {
    /// Who gets the credits.
    pub user: &'a str,
    /// Of which meter.
    pub meter: &'a str,
    /// How many.
    pub amount: i64,
    /// When they expire; none: never.
    pub expires: &'a Option<DateTime<Utc>>,
    /// Where they come from.
    pub source: &'a str,
    /// The admin, for the audit log.
    pub actor: &'a str,
}

/// `quota.grant`: gives the user credits. Not idempotent: repeated only when it certainly did not happen.
pub async fn grant(db: &Db, g: NewGrant<'_>) -> Result<Grant, DbError> {
    db.run(Retry::IfNotApplied, |c| async move {
        let row = admin_tx_one(
            c,
            "SELECT * FROM quota.grant($1::text, $2::text, $3::bigint, $4::timestamptz, $5::text, $6::text)",
            &[&g.user, &g.meter, &g.amount, g.expires, &g.source, &g.actor],
        )
        .await?;
        Grant::from_row(&row)
    })
    .await
}

/// `quota.analytics`: one UTC day (none: today) of one meter across all users. It also totals finished
/// days once (an idempotent write), so a repeat is harmless.
pub async fn analytics(
    db: &Db,
    day: &Option<NaiveDate>,
    meter: &str,
) -> Result<Analytics, DbError> {
    db.run(Retry::Safe, |c| async move {
        let row = admin_tx_one(
            c,
            "SELECT day, meter, total_users, active_users, users_at_limit, usage, requests, usage_all_time, \
             requests_all_time, avg_usage_per_active_user::float8 AS avg_usage_per_active_user, denials \
             FROM quota.analytics($1::date, $2::text)",
            &[day, &meter],
        )
        .await?;
        Analytics::from_row(&row)
    })
    .await
}

/// `quota.top_users`: the `limit` heaviest users of `meter` over the range `by`.
pub async fn top_users(
    db: &Db,
    limit: i32,
    by: &str,
    meter: &str,
) -> Result<Vec<TopUser>, DbError> {
    db.run(Retry::Safe, |c| async move {
        let rows = admin_tx(
            c,
            "SELECT * FROM quota.top_users($1::int, $2::text, $3::text)",
            &[&limit, &by, &meter],
        )
        .await?;
        rows.iter().map(TopUser::from_row).collect()
    })
    .await
}
