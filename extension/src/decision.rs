//! Turning counter rows into a `quota.decision`: which window binds, the status label, the sentence a person reads.
//!
//! Pure Rust over plain values, so the rules are unit-tested without a database; only `into_tuple` and the JSON
//! round trip (for idempotent replays) touch PostgreSQL types.

use std::str::FromStr;

use pgrx::prelude::*;
use serde_json::{json, Value};

use crate::error::{QuotaError, Result};
use crate::{clock, gucs, period};

/// One calendar window of one meter, as read (check) or just written (consume).
#[derive(Debug, Clone)]
pub struct Window {
    /// `hour`, `day`, `week` or `month`, or `burst` for a burst limit (see `burst.rs`).
    pub period: String,
    /// NULL: unlimited.
    pub limit: Option<i64>,
    /// Usage in the window (after this call, when it consumed).
    pub used: i64,
    /// When the window ends.
    pub resets_at: TimestampWithTimeZone,
    /// Whole seconds from now until `resets_at` (never negative).
    pub seconds_left: i64,
    /// Whether this window refused the request.
    pub denied: bool,
    /// Amount held by open reservations; it counts against the limit like usage.
    pub held: i64,
}

impl Window {
    /// What is left: the limit less usage and holds (None when unlimited).
    pub fn remaining(&self) -> Option<i64> {
        self.limit.map(|l| (l - self.used - self.held).max(0))
    }

    /// Usage and holds together: what the limit is measured against.
    pub fn committed(&self) -> i64 {
        self.used + self.held
    }
}

/// A decision, field for field the SQL type `quota.decision`.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub meter: String,
    pub plan: String,
    pub used: i64,
    pub limit: Option<i64>,
    pub remaining: Option<i64>,
    pub resets_at: Option<TimestampWithTimeZone>,
    pub status: &'static str,
    pub reason: Option<String>,
    pub retry_after_s: Option<i32>,
    pub period: Option<String>,
    pub replayed: bool,
    pub held: i64,
    /// For quota.reserve: the reservation taken (when allowed) and when it expires.
    pub reservation_id: Option<pgrx::Uuid>,
    pub expires_at: Option<TimestampWithTimeZone>,
    /// The part of the amount paid from credits (`quota.grant`) because the plan's allowance was used up; for
    /// check, the part that would be.
    pub credits_used: i64,
    /// Every limited window of the meter with its limit (carried allowance included), shortest first: what a
    /// client needs for `RateLimit-Policy` without asking for the status as well.
    pub limits: Vec<(String, i64)>,
}

/// "3h 45m", "12m", "40s", "2d 4h": how long until a window resets, as a person says it.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{s}s")
    }
}

/// The status label for `used` of `limit`, from the threshold GUCs.
pub fn status_label(used: i64, limit: Option<i64>) -> &'static str {
    status_with(
        used,
        limit,
        gucs::WARNING_THRESHOLD.get(),
        gucs::CRITICAL_THRESHOLD.get(),
    )
}

fn status_with(used: i64, limit: Option<i64>, warning: f64, critical: f64) -> &'static str {
    let Some(limit) = limit else { return "normal" };
    if used >= limit {
        return "exceeded";
    }
    let fraction = used as f64 / limit as f64;
    if fraction >= critical {
        "critical"
    } else if fraction >= warning {
        "warning"
    } else {
        "normal"
    }
}

/// Whether `amount` can never pass window `w`: more than its whole limit, and more than credits could make up
/// (credits never pay for a burst limit).
fn never_passes(w: &Window, amount: i64, credits: i64) -> bool {
    let credits = if w.period == period::BURST {
        0
    } else {
        credits
    };
    w.limit.is_some_and(|l| amount - l > credits)
}

impl Decision {
    /// Decides from the windows of one meter. `windows` must not be empty; a window with `denied` refused.
    /// `credits` is the user's credit balance for the meter (0 when unknown or not applicable): a request above
    /// a window's whole limit can still pass in a fresh window when credits cover the excess.
    pub fn from_windows(
        meter: &str,
        plan: &str,
        amount: i64,
        credits: i64,
        windows: &[Window],
    ) -> Decision {
        // A window whose whole limit is below the amount denies forever, whatever the others say, so it is the
        // one to report (a retry time from another window would send the client back for nothing).
        let never = windows
            .iter()
            .filter(|w| w.denied && never_passes(w, amount, credits))
            .min_by_key(|w| (w.limit, period::rank(&w.period)));
        let denying = never.or_else(|| {
            windows
                .iter()
                .filter(|w| w.denied)
                // The request passes only once every denying window has reset: report the one that resets last.
                .max_by_key(|w| (w.seconds_left, period::rank(&w.period)))
        });
        let mut decision = match denying {
            Some(w) => Self::denied_by(meter, plan, amount, never.is_some(), w),
            None => Self::allowed_by(meter, plan, windows),
        };
        let mut limited: Vec<&Window> = windows.iter().filter(|w| w.limit.is_some()).collect();
        limited.sort_by_key(|w| period::rank(&w.period));
        decision.limits = limited
            .into_iter()
            .filter_map(|w| w.limit.map(|l| (w.period.clone(), l)))
            .collect();
        decision
    }

    fn allowed_by(meter: &str, plan: &str, windows: &[Window]) -> Decision {
        // The binding window has the least remaining; unlimited windows bind only when nothing is limited.
        let binding = windows.iter().min_by_key(|w| {
            (
                w.remaining().unwrap_or(i64::MAX),
                std::cmp::Reverse(period::rank(&w.period)),
            )
        });
        match binding {
            Some(w) => Self::for_window(meter, plan, w),
            None => Self::not_in_plan(meter, plan),
        }
    }

    /// The decision a window reports as it stands; a denial overrides the fields that explain it.
    fn for_window(meter: &str, plan: &str, w: &Window) -> Decision {
        Decision {
            allowed: !w.denied,
            meter: meter.to_string(),
            plan: plan.to_string(),
            used: w.used,
            limit: w.limit,
            remaining: w.remaining(),
            resets_at: Some(w.resets_at),
            status: status_label(w.committed(), w.limit),
            reason: None,
            retry_after_s: None,
            period: Some(w.period.clone()),
            replayed: false,
            held: w.held,
            reservation_id: None,
            expires_at: None,
            credits_used: 0,
            limits: Vec::new(),
        }
    }

    fn denied_by(meter: &str, plan: &str, amount: i64, never: bool, w: &Window) -> Decision {
        let limit = w.limit.unwrap_or(0);
        let resets = human_duration(w.seconds_left);
        let reason = if never {
            format!(
                "Request of {amount} {meter} exceeds the {} limit of {limit}; it can never be allowed on plan '{plan}'.",
                period::adjective(&w.period).to_lowercase()
            )
        } else if w.committed() >= limit {
            format!(
                "{} limit of {limit} {meter} reached. Resets in {resets}.",
                period::adjective(&w.period)
            )
        } else {
            let held = if w.held > 0 {
                format!(", {} held", w.held)
            } else {
                String::new()
            };
            format!(
                "{} limit of {limit} {meter} would be exceeded ({} used{held}, {amount} requested). Resets in {resets}.",
                period::adjective(&w.period),
                w.used
            )
        };
        Decision {
            allowed: false,
            status: "exceeded",
            reason: Some(reason),
            retry_after_s: (!never)
                .then(|| i32::try_from(w.seconds_left.max(1)).unwrap_or(i32::MAX)),
            ..Self::for_window(meter, plan, w)
        }
    }

    /// The plan has no limit row for the meter: the meter is not part of the plan.
    pub fn not_in_plan(meter: &str, plan: &str) -> Decision {
        Decision {
            allowed: false,
            meter: meter.to_string(),
            plan: plan.to_string(),
            used: 0,
            limit: Some(0),
            remaining: Some(0),
            resets_at: None,
            status: "exceeded",
            reason: Some(format!("Plan '{plan}' does not include meter '{meter}'.")),
            retry_after_s: None,
            period: None,
            replayed: false,
            held: 0,
            reservation_id: None,
            expires_at: None,
            credits_used: 0,
            limits: Vec::new(),
        }
    }

    /// The limits as a JSON object, period to limit.
    fn limits_json(&self) -> Value {
        Value::Object(
            self.limits
                .iter()
                .map(|(p, l)| (p.clone(), Value::from(*l)))
                .collect(),
        )
    }

    /// Builds the `quota.decision` composite.
    pub fn into_tuple(self) -> Result<crate::types::Row> {
        self.into_composite("quota.decision")
    }

    /// Builds the `quota.reservation` composite (the decision plus the reservation's id and expiry).
    pub fn into_reservation_tuple(self) -> Result<crate::types::Row> {
        self.into_composite("quota.reservation")
    }

    fn into_composite(self, type_name: &'static str) -> Result<crate::types::Row> {
        let reservation = type_name == "quota.reservation";
        // In the order of the type's attributes (sql/schema.sql), which `set` looks at first.
        crate::types::form(type_name, |t| {
            if reservation {
                t.set("reservation_id", self.reservation_id)?;
                t.set("expires_at", self.expires_at)?;
            }
            t.set("allowed", self.allowed)?;
            t.set("meter", self.meter.as_str())?;
            t.set("plan", self.plan.as_str())?;
            t.set("used", self.used)?;
            t.set("limit", self.limit)?;
            t.set("remaining", self.remaining)?;
            t.set("resets_at", self.resets_at)?;
            t.set("status", self.status)?;
            t.set("reason", self.reason.as_deref())?;
            t.set("retry_after_s", self.retry_after_s)?;
            t.set("period", self.period.as_deref())?;
            t.set("replayed", self.replayed)?;
            t.set("held", self.held)?;
            t.set("credits_used", self.credits_used)?;
            t.set_int_object("limits", &self.limits)?;
            Ok(())
        })
    }

    /// The decision as JSON, stored with an idempotency key.
    pub fn to_json(&self) -> Value {
        json!({
            "allowed": self.allowed, "meter": self.meter, "plan": self.plan, "used": self.used,
            "limit": self.limit, "remaining": self.remaining, "resets_at": self.resets_at.and_then(clock::utc),
            "status": self.status, "reason": self.reason, "retry_after_s": self.retry_after_s,
            "period": self.period, "held": self.held, "credits_used": self.credits_used,
            "reservation_id": self.reservation_id.map(|u| u.to_string()),
            "expires_at": self.expires_at.and_then(clock::utc), "limits": self.limits_json(),
        })
    }

    /// Reads a decision stored by `to_json`, marked as a replay.
    pub fn from_json(v: &Value) -> Result<Decision> {
        let bad = || QuotaError::Internal(format!("stored idempotent decision is malformed: {v}"));
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let int = |k: &str| v.get(k).and_then(Value::as_i64);
        let status = match v.get("status").and_then(Value::as_str) {
            Some("normal") => "normal",
            Some("warning") => "warning",
            Some("critical") => "critical",
            Some("exceeded") => "exceeded",
            _ => return Err(bad()),
        };
        // Parsed by timestamptz_in, which reads the ISO 8601 text `to_json` wrote.
        let time = |k: &str| -> Result<Option<TimestampWithTimeZone>> {
            match text(k) {
                None => Ok(None),
                Some(r) => TimestampWithTimeZone::from_str(&r)
                    .map(Some)
                    .map_err(|_| bad()),
            }
        };
        let reservation_id = match text("reservation_id") {
            None => None,
            Some(u) => Some(parse_uuid(&u).ok_or_else(bad)?),
        };
        Ok(Decision {
            allowed: v.get("allowed").and_then(Value::as_bool).ok_or_else(bad)?,
            meter: text("meter").ok_or_else(bad)?,
            plan: text("plan").ok_or_else(bad)?,
            used: int("used").ok_or_else(bad)?,
            limit: int("limit"),
            remaining: int("remaining"),
            resets_at: time("resets_at")?,
            status,
            reason: text("reason"),
            retry_after_s: int("retry_after_s").and_then(|n| i32::try_from(n).ok()),
            period: text("period"),
            replayed: true,
            held: int("held").unwrap_or(0),
            reservation_id,
            expires_at: time("expires_at")?,
            credits_used: int("credits_used").unwrap_or(0),
            // Absent in decisions stored before 0.4.0.
            limits: v
                .get("limits")
                .and_then(Value::as_object)
                .map(|o| {
                    let mut l: Vec<(String, i64)> = o
                        .iter()
                        .filter_map(|(p, q)| q.as_i64().map(|q| (p.clone(), q)))
                        .collect();
                    l.sort_by_key(|(p, _)| period::rank(p));
                    l
                })
                .unwrap_or_default(),
        })
    }
}

/// Parses the canonical 8-4-4-4-12 hex form.
pub fn parse_uuid(text: &str) -> Option<pgrx::Uuid> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(pgrx::Uuid::from_bytes(bytes))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(human_duration(3 * 3600 + 45 * 60 + 10), "3h 45m");
        assert_eq!(human_duration(12 * 60), "12m");
        assert_eq!(human_duration(40), "40s");
        assert_eq!(human_duration(2 * 86_400 + 4 * 3600), "2d 4h");
        assert_eq!(human_duration(-5), "0s");
    }

    #[test]
    fn thresholds() {
        assert_eq!(status_with(5, Some(10), 0.6, 0.9), "normal");
        assert_eq!(status_with(6, Some(10), 0.6, 0.9), "warning");
        assert_eq!(status_with(9, Some(10), 0.6, 0.9), "critical");
        assert_eq!(status_with(10, Some(10), 0.6, 0.9), "exceeded");
        assert_eq!(status_with(0, Some(0), 0.6, 0.9), "exceeded");
        assert_eq!(status_with(1_000_000, None, 0.6, 0.9), "normal");
    }
}
