//! Holds: `quota.reserve`, `quota.commit` and `quota.release`, shared by the reservation routes and the
//! metering proxy (which commits with overage).

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::{self, Db, DbError, Retry};
use crate::store::decision::Decision;
use crate::store::timestamp;

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

impl Reservation {
    /// A `quota.reservation` row.
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            reservation_id: r.try_get("reservation_id")?,
            expires_at: r.try_get("expires_at")?,
            decision: Decision::from_row(r)?,
        })
    }
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
    /// A `quota.settlement` row.
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

/// What one reserve asks for.
#[derive(Clone, Copy, Debug)]
pub struct Reserve<'a> {
    /// Whose quota.
    pub user: &'a str,
    /// A meter declared in `quota.meters`.
    pub meter: &'a str,
    /// How much to hold.
    pub amount: i64,
    /// Seconds the hold lasts (the extension checks the range).
    pub ttl_s: f64,
    /// The idempotency key; `None` for a hold that is never repeated (the proxy's).
    pub key: Option<&'a str>,
}

/// `quota.reserve`: holds `amount` like usage until committed, released or expired.
pub async fn reserve(db: &Db, retry: Retry, r: Reserve<'_>) -> Result<Reservation, DbError> {
    db.run_statement(retry, |c| async move {
        let row = db::query_one(
            &c,
            "SELECT * FROM quota.reserve($1::text, $2::text, $3::bigint, \
             make_interval(secs => $4::float8), $5::text)",
            &[&r.user, &r.meter, &r.amount, &r.ttl_s, &r.key],
        )
        .await?;
        Ok(Reservation::from_row(&row)?)
    })
    .await
}

/// `quota.commit`: frees the hold and charges `actual`, capped by the limits unless `overage` (the proxy's
/// commits: the upstream has already spent what it reports). Never repeated once it may have applied.
pub async fn commit(
    db: &Db,
    id: Uuid,
    actual: i64,
    user: &str,
    overage: bool,
) -> Result<Settlement, DbError> {
    db.run_statement(Retry::IfNotApplied, |c| async move {
        let sql = "SELECT * FROM quota.commit($1::uuid, $2::bigint, $3::text, $4::boolean)";
        let row = db::query_one(&c, sql, &[&id, &actual, &user, &overage]).await?;
        Ok(Settlement::from_row(&row)?)
    })
    .await
}

/// `quota.release`: frees the hold and charges nothing.
pub async fn release(db: &Db, id: Uuid, user: &str) -> Result<Settlement, DbError> {
    db.run_statement(Retry::IfNotApplied, |c| async move {
        let sql = "SELECT * FROM quota.release($1::uuid, $2::text)";
        let row = db::query_one(&c, sql, &[&id, &user]).await?;
        Ok(Settlement::from_row(&row)?)
    })
    .await
}
