//! Retention: settled reservations and old idempotency keys are deleted on a timer.
//!
//! Neither spends quota, so without a bound a reserve + release loop or a storm of keyed retries would write
//! rows for ever. Every `AIQUOTA_PURGE_INTERVAL_S` (0: never) the API runs `quota.purge_idempotency_keys` and
//! `quota.purge_reservations` for rows older than `AIQUOTA_RETENTION_DAYS`, as `quota_admin` inside one
//! transaction (the pooled connection itself stays `quota_api`). Several API instances may all run it: the
//! deletes are idempotent.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{db::Db, store::maintenance::purge};

/// Starts the timer; `None` when purging is off.
pub fn start(
    db: Db,
    every: Duration,
    keep_days: i32,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    if every.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match purge(&db, keep_days).await {
                Ok((keys, reservations)) => {
                    tracing::info!(
                        keys,
                        reservations,
                        keep_days,
                        "purged old idempotency keys and reservations"
                    )
                }
                Err(why) => tracing::warn!(%why, "purge failed; trying again at the next interval"),
            }
        }
    }))
}
