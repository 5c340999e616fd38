//! `NOTIFY quota_events`: small JSON payloads announcing changes, queued inside the transaction so PostgreSQL
//! delivers them only if it commits (work that rolls back announces nothing).
//!
//! Consume announces a window's status change (normal → warning → critical → exceeded) once per window: usage
//! only grows within a window, so each status is entered at most once until the window resets. One request that
//! jumps several boundaries announces only the status it lands in (`exhausted` for exceeded).
//!
//! Every payload is compact JSON with `user` and `kind` (and the `meter` and `period` it concerns) and nothing
//! else: any role that can connect may `LISTEN`, so no usage, limit, plan or amount is ever sent; a listener
//! allowed to know re-reads it (the API reads the user's quota for each open stream).

use pgrx::prelude::*;
use serde_json::json;

use crate::decision::{status_label, Window};

/// The channel every aiquota event is sent on.
pub const CHANNEL: &str = "quota_events";

/// Queues one notification, exactly as `SELECT pg_notify(...)` would, without the cost of a statement.
fn notify(payload: serde_json::Value) {
    // SAFETY: pg_notify is a plain fmgr function taking two text arguments; pgrx builds the call frame and
    // guards the boundary, so an ERROR it raises unwinds correctly.
    unsafe {
        pgrx::direct_function_call::<()>(
            pg_sys::pg_notify,
            &[CHANNEL.into_datum(), payload.to_string().into_datum()],
        );
    }
}

/// Announces every status boundary the windows crossed by consuming `amount`.
pub fn crossings(user: &str, meter: &str, amount: i64, windows: &[Window]) {
    for w in windows.iter().filter(|w| w.limit.is_some()) {
        let before = status_label(w.committed() - amount, w.limit);
        let after = status_label(w.committed(), w.limit);
        if before == after {
            continue;
        }
        let kind = if after == "exceeded" {
            "exhausted"
        } else {
            "threshold_crossed"
        };
        notify(json!({ "user": user, "meter": meter, "kind": kind, "period": w.period }));
    }
}
