//! Burst limits: a GCRA (generic cell rate algorithm) per user and meter, e.g. "1 request per 10 s, burst 3".
//!
//! The engine applies it (`attempt::next_step`) in the same all-or-nothing decision as the calendar limits, on
//! the state row it locked after the counter rows; this module is the arithmetic, and explains a decision: how
//! full the bucket is and exactly when the next call of a given size passes.

use pgrx::prelude::*;

use crate::decision::Window;
use crate::error::{QuotaError, Result};
use crate::period;

/// A plan's burst limit for one meter, with the user's state.
pub struct Bucket {
    /// Microseconds one unit occupies the bucket: per / rate.
    emission_us: i64,
    /// How many units may pass at once.
    burst: i64,
    /// The theoretical arrival time in microseconds; i64::MIN before the first call (a full bucket).
    tat_us: i64,
}

impl Bucket {
    pub fn new(emission_us: i64, burst: i64, tat_us: i64) -> Bucket {
        Bucket {
            emission_us,
            burst,
            tat_us,
        }
    }

    /// The theoretical arrival time once a call of `amount` passed at `now_us`.
    pub fn after(&self, now_us: i64, amount: i64) -> i64 {
        self.tat_us
            .max(now_us)
            .saturating_add(amount.saturating_mul(self.emission_us))
    }

    /// Microseconds from `now_us` until a call of `amount` passes (0: it passes now); None when it never can.
    pub fn wait_us(&self, now_us: i64, amount: i64) -> Option<i64> {
        if amount > self.burst {
            return None;
        }
        let start = self.tat_us.max(now_us);
        let due = start.saturating_add((amount - self.burst).saturating_mul(self.emission_us));
        Some((due - now_us).max(0))
    }

    /// How much of the burst is taken at `now_us`, rounded up: the bucket's fill level.
    pub fn taken(&self, now_us: i64) -> i64 {
        let ahead = self.tat_us.max(now_us) - now_us;
        ((ahead + self.emission_us - 1) / self.emission_us).min(self.burst)
    }

    /// The burst limit as a window of a decision: `used` is the fill level, `resets_at` when a call of `amount`
    /// passes (denied) or when the bucket is empty again (allowed).
    pub fn window(&self, now: TimestampWithTimeZone, amount: i64, denied: bool) -> Result<Window> {
        let now_us = pg_sys::TimestampTz::from(now);
        let wait = if denied {
            self.wait_us(now_us, amount).unwrap_or(0)
        } else {
            self.tat_us.max(now_us) - now_us
        };
        let at = TimestampWithTimeZone::try_from(now_us.saturating_add(wait))
            .map_err(|e| QuotaError::Internal(format!("burst time: {e}")))?;
        Ok(Window {
            period: period::BURST.to_string(),
            limit: Some(self.burst),
            used: if denied {
                self.burst.max(self.taken(now_us))
            } else {
                self.taken(now_us)
            },
            resets_at: at,
            seconds_left: (wait + 999_999) / 1_000_000,
            denied,
            held: 0,
        })
    }
}

#[cfg(test)]
mod unit {
    use super::Bucket;

    const S: i64 = 1_000_000;

    #[test]
    fn one_per_ten_seconds_burst_three() {
        let mut b = Bucket {
            emission_us: 10 * S,
            burst: 3,
            tat_us: i64::MIN,
        };
        let now = 1_000 * S;
        assert_eq!(b.wait_us(now, 1), Some(0));
        // Three calls at once fill the bucket: tat is 30 s ahead.
        b.tat_us = now + 30 * S;
        assert_eq!(b.taken(now), 3);
        assert_eq!(b.wait_us(now, 1), Some(10 * S));
        assert_eq!(b.wait_us(now + 4 * S, 1), Some(6 * S));
        assert_eq!(b.wait_us(now, 2), Some(20 * S));
        assert_eq!(b.wait_us(now, 4), None);
        assert_eq!(b.taken(now + 25 * S), 1);
        assert_eq!(b.taken(now + 30 * S), 0);
    }
}
