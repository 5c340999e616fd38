//! Housekeeping calls: `quota.purge_idempotency_keys` and `quota.purge_reservations` (see [`crate::retention`]).

use crate::db::{self, Db, TxRole};

/// Deletes idempotency keys and settled reservations older than `keep_days`, as `quota_admin` in one
/// transaction; the number of each deleted. Not retried: the next interval runs it again.
pub async fn purge(db: &Db, keep_days: i32) -> Result<(i64, i64), String> {
    let client = db.pool.get().await.map_err(|e| e.to_string())?;
    let row = db::role_tx_one(
        client,
        TxRole::Admin,
        "SELECT quota.purge_idempotency_keys(make_interval(days => $1)), \
                quota.purge_reservations(make_interval(days => $1))",
        &[&keep_days],
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok((row.get(0), row.get(1)))
}
