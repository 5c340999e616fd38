//! Rate-limit response headers for a decision: `RateLimit-Policy` and `RateLimit` (IETF draft "RateLimit
//! header fields for HTTP") on every decision about a limited window, and `Retry-After` (RFC 9110) on a
//! denial that can pass later. A denial that can never pass on the plan gets no `Retry-After`, so a client
//! does not wait for nothing.

use axum::http::{HeaderMap, HeaderValue};
use chrono::Utc;

use crate::store::Decision;

/// Policy name and nominal window length in seconds of a period. Calendar windows vary (DST days, months),
/// so `w` is the nominal length; `t` in `RateLimit` is exact.
fn policy(period: &str) -> Option<(&'static str, i64)> {
    Some(match period {
        "hour" => ("hourly", 3_600),
        "day" => ("daily", 86_400),
        "week" => ("weekly", 604_800),
        "month" => ("monthly", 2_592_000),
        _ => return None,
    })
}

/// Adds the headers that `decision` calls for.
pub fn rate_limit(headers: &mut HeaderMap, decision: &Decision) {
    if let Some(s) = decision.retry_after_s.filter(|_| !decision.allowed) {
        headers.insert("retry-after", HeaderValue::from(s.max(1)));
    }
    let (Some(period), Some(limit), Some(resets_at)) =
        (&decision.period, decision.limit, decision.resets_at)
    else {
        return;
    };
    let Some((name, window)) = policy(period) else {
        return;
    };
    let remaining = decision.remaining.unwrap_or(0);
    // Rounded up like the extension's retry_after_s, so `t` and `Retry-After` agree.
    let reset = ((resets_at - Utc::now()).num_milliseconds() + 999)
        .div_euclid(1000)
        .max(0);
    // Every limited window of the meter, shortest first (the draft's list form); the binding one alone when the
    // caller did not read them. `RateLimit` below names the binding window: the one closest to running out.
    let mut policies: Vec<(&'static str, i64, i64)> = decision
        .policies
        .iter()
        .filter_map(|(p, q)| policy(p).map(|(n, w)| (n, *q, w)))
        .collect();
    if !policies.iter().any(|(n, ..)| *n == name) {
        policies.push((name, limit, window));
    }
    policies.sort_by_key(|(_, _, w)| *w);
    let list = policies
        .iter()
        .map(|(n, q, w)| format!("\"{n}\";q={q};w={w}"))
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(v) = HeaderValue::from_str(&list) {
        headers.insert("ratelimit-policy", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{name}\";r={remaining};t={reset}")) {
        headers.insert("ratelimit", v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_lists_every_window_and_ratelimit_names_the_binding_one() {
        let mut d = decision(true, None, Some(10));
        d.policies = vec![
            ("month".into(), 300),
            ("day".into(), 10),
            ("hour".into(), 3),
        ];
        let mut h = HeaderMap::new();
        rate_limit(&mut h, &d);
        assert_eq!(
            h["ratelimit-policy"],
            "\"hourly\";q=3;w=3600, \"daily\";q=10;w=86400, \"monthly\";q=300;w=2592000"
        );
        assert!(h["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"daily\";r=0;t="));
    }

    fn decision(allowed: bool, retry: Option<i32>, limit: Option<i64>) -> Decision {
        Decision {
            allowed,
            meter: "ai_requests".into(),
            plan: "free".into(),
            used: 10,
            limit,
            remaining: Some(0),
            resets_at: Some(Utc::now() + chrono::Duration::seconds(7200)),
            status: "exceeded".into(),
            reason: None,
            retry_after_s: retry,
            period: Some("day".into()),
            replayed: false,
            held: 0,
            credits_used: None,
            policies: Vec::new(),
        }
    }

    #[test]
    fn denial_that_can_pass_later() {
        let mut h = HeaderMap::new();
        rate_limit(&mut h, &decision(false, Some(7200), Some(10)));
        assert_eq!(h["retry-after"], "7200");
        assert_eq!(h["ratelimit-policy"], "\"daily\";q=10;w=86400");
        let rl = h["ratelimit"].to_str().unwrap();
        assert!(
            rl == "\"daily\";r=0;t=7200" || rl == "\"daily\";r=0;t=7199",
            "{rl}"
        );
    }

    #[test]
    fn denial_that_never_passes_has_no_retry_after() {
        let mut h = HeaderMap::new();
        rate_limit(&mut h, &decision(false, None, Some(10)));
        assert!(!h.contains_key("retry-after"));
        assert!(h.contains_key("ratelimit"));
    }

    #[test]
    fn unlimited_window_has_no_rate_limit_headers() {
        let mut h = HeaderMap::new();
        rate_limit(&mut h, &decision(true, None, None));
        assert!(h.is_empty());
    }
}
