//! The one shape of a quota decision: what `quota.consume` returns (`quota.decision`) and the decision part
//! of `quota.reserve` (`quota.reservation`). The response body, the denial problem, the rate-limit headers,
//! the proxy's answers and its holds all use this type.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::store::timestamp;

/// A decision of `quota.consume` (and the decision part of a reservation): the numbers describe the binding
/// window (see docs/sql.md).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Decision {
    /// Whether the amount was consumed.
    pub allowed: bool,
    /// The meter asked for.
    pub meter: String,
    /// The user's effective plan.
    pub plan: String,
    /// Usage of the binding window.
    pub used: i64,
    /// Limit of the binding window; null means unlimited, 0 that the plan does not include the meter.
    pub limit: Option<i64>,
    /// `limit - used - held`, never below 0; null when unlimited.
    pub remaining: Option<i64>,
    /// When the binding window ends.
    pub resets_at: Option<DateTime<Utc>>,
    /// `normal`, `warning`, `critical` or `exceeded`.
    pub status: String,
    /// Why it was denied; null when allowed.
    pub reason: Option<String>,
    /// Seconds until the request can pass; null when allowed or when it never can on this plan.
    pub retry_after_s: Option<i32>,
    /// `hour`, `day`, `week` or `month`.
    pub period: Option<String>,
    /// True when an idempotency key returned an earlier decision.
    pub replayed: bool,
    /// Amount held by open reservations in the binding window.
    pub held: i64,
    /// Credits (grants) this call spent, for extension versions that have credits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits_used: Option<i64>,
    /// Every limited window of the meter as (period, limit), for the `RateLimit-Policy` header (not in the body):
    /// the decision's `limits` column.
    #[serde(skip)]
    #[schema(ignore)]
    pub policies: Vec<(String, i64)>,
}

impl Decision {
    /// Reads the decision columns of a `quota.decision` (or `quota.reservation`) row.
    pub fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            allowed: r.try_get("allowed")?,
            meter: r.try_get("meter")?,
            plan: r.try_get("plan")?,
            used: r.try_get("used")?,
            limit: r.try_get("limit")?,
            remaining: r.try_get("remaining")?,
            resets_at: timestamp::optional(r, "resets_at")?,
            status: r.try_get("status")?,
            reason: r.try_get("reason")?,
            retry_after_s: r.try_get("retry_after_s")?,
            period: r.try_get("period")?,
            replayed: r.try_get("replayed")?,
            held: r.try_get("held")?,
            credits_used: r.try_get("credits_used")?,
            policies: parse_policies(r.try_get("limits")?),
        })
    }
}

/// The decision's `limits` (`{"day": 10, "month": 300}`) into pairs; anything that is not a whole number is left
/// out, so a header is never built from it.
pub(crate) fn parse_policies(limits: Option<serde_json::Value>) -> Vec<(String, i64)> {
    match limits {
        Some(serde_json::Value::Object(m)) => m
            .into_iter()
            .filter_map(|(period, limit)| Some((period, limit.as_i64()?)))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::store::decision::parse_policies;

    #[test]
    fn policies_skip_what_does_not_parse() {
        assert_eq!(
            parse_policies(Some(
                serde_json::json!({"day": 10, "hour": "x", "month": 300, "week": 1.5})
            )),
            vec![("day".to_string(), 10), ("month".to_string(), 300)]
        );
        assert!(parse_policies(None).is_empty());
    }
}
