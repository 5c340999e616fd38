//! The one clock aiquota reads: the transaction's start time, or `quota.now` when a superuser set it.
//!
//! Using the transaction start (like `now()`) keeps every decision inside one transaction on the same window.

use std::str::FromStr;

use pgrx::datetime::ToIsoString;
use pgrx::prelude::*;

use crate::error::{QuotaError, Result};
use crate::gucs;

/// The current time as aiquota sees it.
pub fn now() -> Result<TimestampWithTimeZone> {
    match gucs::string(&gucs::NOW_OVERRIDE) {
        Some(text) => TimestampWithTimeZone::from_str(&text).map_err(|_| {
            QuotaError::Invalid(format!("quota.now \"{text}\" is not a valid timestamptz"))
        }),
        None => {
            // SAFETY: reads a backend-local timestamp; always valid inside a transaction.
            let ts = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
            TimestampWithTimeZone::try_from(ts)
                .map_err(|e| QuotaError::Internal(format!("transaction timestamp: {e}")))
        }
    }
}

/// The moment a call reaches a lock it waited for: the real time (never before `now`), or `quota.now` when a
/// superuser pinned the clock. The burst limit measures arrivals at this moment, in the order the lock is held.
pub fn arrival(now: TimestampWithTimeZone) -> Result<TimestampWithTimeZone> {
    if gucs::string(&gucs::NOW_OVERRIDE).is_some() {
        return Ok(now);
    }
    // SAFETY: reads the system clock.
    let real = unsafe { pg_sys::GetCurrentTimestamp() };
    TimestampWithTimeZone::try_from(real.max(pg_sys::TimestampTz::from(now)))
        .map_err(|e| QuotaError::Internal(format!("clock: {e}")))
}

/// RFC 3339 in UTC ending in `Z`, whatever the session's TimeZone, so listeners and stored decisions use one format.
pub fn utc(ts: TimestampWithTimeZone) -> Option<String> {
    let iso = ts.to_iso_string_with_timezone("UTC").ok()?;
    Some(match iso.strip_suffix("+00:00") {
        Some(base) => format!("{base}Z"),
        None => iso,
    })
}
