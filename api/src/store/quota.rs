//! A user's own quota: `quota.status` (every window) and `quota.consume` (one decision).

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::db::{self, Db, DbError, Retry};
use crate::store::decision::Decision;

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

impl MeterStatus {
    /// A row of `quota.status`.
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
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
    }
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

/// `quota.status(user)`: the plan and every window (a read, retried freely).
pub async fn status(db: &Db, user: &str) -> Result<Quota, DbError> {
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
        plan = r.try_get("plan")?;
        meters.push(MeterStatus::from_row(r)?);
    }
    Ok(Quota {
        user: user.to_string(),
        plan,
        meters,
    })
}

/// What one consume asks for.
#[derive(Clone, Copy, Debug)]
pub struct Consume<'a> {
    /// Whose quota.
    pub user: &'a str,
    /// A meter declared in `quota.meters`.
    pub meter: &'a str,
    /// How much.
    pub amount: i64,
    /// The idempotency key (the client's, or one the API made up).
    pub key: &'a str,
    /// Stored on the ledger row.
    pub metadata: &'a Option<serde_json::Value>,
}

/// `quota.consume`: charges every limit of the meter or none. The decision lists the meter's limited windows
/// (`limits`, as [`Decision::policies`]) for `RateLimit-Policy`, so no second read is needed.
pub async fn consume(db: &Db, retry: Retry, c: Consume<'_>) -> Result<Decision, DbError> {
    db.run_statement(retry, |client| async move {
        let row = db::query_one(
            &client,
            "SELECT * FROM quota.consume($1::text, $2::text, $3::bigint, $4::text, $5::jsonb)",
            &[&c.user, &c.meter, &c.amount, &c.key, c.metadata],
        )
        .await?;
        Ok(Decision::from_row(&row)?)
    })
    .await
}
