//! Input validation shared by every entry point: bad input fails before any statement runs, so it changes nothing.

use pgrx::JsonB;

use crate::error::{QuotaError, Result};

/// Longest accepted user id, in characters.
pub const MAX_USER_ID_CHARS: usize = 255;
/// Largest amount one call may consume: far above any real AI call, low enough that counters cannot overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// Longest accepted idempotency key, in characters.
pub const MAX_KEY_CHARS: usize = 255;
// The largest metadata document is the setting quota.max_metadata_bytes (gucs.rs).

/// A user id: present, not blank, at most 255 characters.
pub fn user(v: Option<&str>) -> Result<&str> {
    let v = v.ok_or(QuotaError::Null("user id"))?;
    if v.trim().is_empty() {
        return Err(QuotaError::Invalid("user id must not be empty".into()));
    }
    if v.chars().count() > MAX_USER_ID_CHARS {
        return Err(QuotaError::Invalid(format!(
            "user id is longer than {MAX_USER_ID_CHARS} characters"
        )));
    }
    Ok(v)
}

/// A meter key: present and not blank (whether it is declared is checked against quota.meters).
pub fn meter(v: Option<&str>) -> Result<&str> {
    let v = v.ok_or(QuotaError::Null("meter"))?;
    if v.trim().is_empty() {
        return Err(QuotaError::Invalid("meter must not be empty".into()));
    }
    Ok(v)
}

/// An amount to consume: 1 ..= MAX_AMOUNT.
pub fn amount(v: Option<i64>) -> Result<i64> {
    let v = v.ok_or(QuotaError::Null("amount"))?;
    if v <= 0 {
        return Err(QuotaError::Invalid(format!(
            "amount must be positive, got {v}"
        )));
    }
    if v > MAX_AMOUNT {
        return Err(QuotaError::Invalid(format!(
            "amount {v} is larger than the maximum of {MAX_AMOUNT} per call"
        )));
    }
    Ok(v)
}

/// An optional idempotency key: when given, 1 ..= 255 characters.
pub fn idempotency_key(v: Option<&str>) -> Result<Option<&str>> {
    match v {
        None => Ok(None),
        Some("") => Err(QuotaError::Invalid(
            "idempotency key must not be empty".into(),
        )),
        Some(k) if k.chars().count() > MAX_KEY_CHARS => Err(QuotaError::Invalid(format!(
            "idempotency key is longer than {MAX_KEY_CHARS} characters"
        ))),
        Some(k) => Ok(Some(k)),
    }
}

/// Optional metadata: a JSON object of at most `quota.max_metadata_bytes` (default 2 KiB) as JSON text: it is
/// stored on every ledger row, so the bound is what a caller can store per call.
pub fn metadata(v: &Option<JsonB>) -> Result<()> {
    let Some(JsonB(value)) = v else { return Ok(()) };
    if !value.is_object() {
        return Err(QuotaError::Invalid("metadata must be a JSON object".into()));
    }
    let size = serde_json::to_string(value)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    let max = usize::try_from(crate::gucs::MAX_METADATA_BYTES.get()).unwrap_or(0);
    if size > max {
        return Err(QuotaError::Invalid(format!(
            "metadata is {size} bytes; the maximum is {max} (setting quota.max_metadata_bytes)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn users() {
        assert!(matches!(user(None), Err(QuotaError::Null(_))));
        assert!(matches!(user(Some("")), Err(QuotaError::Invalid(_))));
        assert!(matches!(user(Some("  ")), Err(QuotaError::Invalid(_))));
        assert!(user(Some(&"é".repeat(255))).is_ok());
        assert!(matches!(
            user(Some(&"x".repeat(256))),
            Err(QuotaError::Invalid(_))
        ));
    }

    #[test]
    fn amounts() {
        assert!(matches!(amount(None), Err(QuotaError::Null(_))));
        assert!(matches!(amount(Some(0)), Err(QuotaError::Invalid(_))));
        assert!(matches!(amount(Some(-5)), Err(QuotaError::Invalid(_))));
        assert!(amount(Some(MAX_AMOUNT)).is_ok());
        assert!(matches!(
            amount(Some(MAX_AMOUNT + 1)),
            Err(QuotaError::Invalid(_))
        ));
    }

    #[test]
    fn keys() {
        assert_eq!(idempotency_key(None).ok(), Some(None));
        assert!(idempotency_key(Some("")).is_err());
        assert!(idempotency_key(Some(&"k".repeat(256))).is_err());
        assert_eq!(idempotency_key(Some("abc")).ok(), Some(Some("abc")));
    }
}
