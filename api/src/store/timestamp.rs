//! Reading `timestamptz` values that may be `infinity`.
//!
//! chrono cannot hold PostgreSQL's `infinity` / `-infinity`, so a row carrying one failed to decode and the
//! request was answered 500. The extension's burst arithmetic saturates rather than overflow: a burst so
//! slow that a call would pass only after the end of time reports `resets_at = infinity`. [`Timestamp`]
//! reads those (and anything else past year 9999, which RFC 3339 cannot write) as 9999-12-31T23:59:59Z, and
//! anything before year 1 as 0001-01-01T00:00:00Z, so the answer is a far-future time, as meant, and stays a
//! valid `date-time` in the OpenAPI document.

use std::error::Error;

use chrono::{DateTime, Duration, TimeZone, Utc};
use tokio_postgres::types::{accepts, FromSql, Type};

/// A `timestamptz` read with `±infinity` clamped to years 1 to 9999.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp(pub DateTime<Utc>);

impl<'a> FromSql<'a> for Timestamp {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let micros = i64::from_sql(&Type::INT8, raw).map_err(|_| format!("bad {ty} value"))?;
        // Fixed, valid UTC dates (UTC has no gaps or folds), so `single()` is always Some; a decode error
        // rather than a panic all the same.
        let at_utc = |y, mo, d, h, mi, s| {
            Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
                .single()
                .ok_or("timestamp constant")
        };
        let epoch = at_utc(2000, 1, 1, 0, 0, 0)?;
        let (first, last) = (at_utc(1, 1, 1, 0, 0, 0)?, at_utc(9999, 12, 31, 23, 59, 59)?);
        let at = match micros {
            i64::MAX => last,
            i64::MIN => first,
            us => epoch
                .checked_add_signed(Duration::microseconds(us))
                .unwrap_or(if us > 0 { last } else { first }),
        };
        Ok(Timestamp(at.clamp(first, last)))
    }

    accepts!(TIMESTAMPTZ);
}

/// Column `col` of `row` as an optional instant, `±infinity` clamped.
pub fn optional(
    row: &tokio_postgres::Row,
    col: &str,
) -> Result<Option<DateTime<Utc>>, tokio_postgres::Error> {
    Ok(row.try_get::<_, Option<Timestamp>>(col)?.map(|t| t.0))
}

#[cfg(test)]
mod tests {
    use crate::store::timestamp::*;

    fn read(us: i64) -> String {
        Timestamp::from_sql(&Type::TIMESTAMPTZ, &us.to_be_bytes())
            .unwrap()
            .0
            .to_rfc3339()
    }

    #[test]
    fn infinity_is_clamped_and_the_rest_is_exact() {
        assert_eq!(read(0), "2000-01-01T00:00:00+00:00");
        assert_eq!(read(1_500_000), "2000-01-01T00:00:01.500+00:00");
        assert_eq!(read(i64::MAX), "9999-12-31T23:59:59+00:00");
        assert_eq!(read(i64::MAX - 1), "9999-12-31T23:59:59+00:00");
        assert_eq!(read(i64::MIN), "0001-01-01T00:00:00+00:00");
    }
}
