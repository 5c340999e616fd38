//! Abuse limits that cost no quota: a per-user rate on calls that write rows without spending anything
//! (reserve, payment-link creation), a cap on each user's open event streams, and the knobs of the
//! connection layer (how many connections, how long a request head may take to arrive).
//!
//! The rates are kept per process, in memory: with several API instances each enforces its own limit, so a
//! user gets at most `instances x limit`. That bounds the rows one user can write, which is the point; the
//! quotas themselves are still exact, because they live in PostgreSQL.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::time::Instant;

pub use crate::config::limits::{LimitsConfig, Rate};

/// The tokens one user has left, as of `at`.
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Per-user token buckets for one kind of call. Users whose bucket is full again are forgotten, so the map
/// holds only users active within the last window.
pub struct RateLimiter {
    rate: Option<Rate>,
    users: Mutex<HashMap<String, Bucket>>,
}

/// Over the rate: the call may be made again after this long.
#[derive(Debug, Clone, Copy)]
pub struct Limited(pub Duration);

impl RateLimiter {
    /// A limiter of `rate`; `None` lets everything through.
    pub fn new(rate: Option<Rate>) -> Self {
        Self {
            rate,
            users: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one call of `user`, or says how long until one is available.
    pub fn take(&self, user: &str) -> Result<(), Limited> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let capacity = f64::from(rate.count);
        let per_token = rate.per.as_secs_f64() / capacity;
        let now = Instant::now();
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if users.len() > 10_000 {
            users.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() / per_token < capacity
            });
        }
        let b = users.entry(user.to_string()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() / per_token).min(capacity);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Limited(Duration::from_secs_f64(
                (1.0 - b.tokens) * per_token,
            )))
        }
    }
}

/// Counts each user's open event streams.
pub struct StreamCap {
    per_user: usize,
    users: Mutex<HashMap<String, usize>>,
}

/// One open stream; dropping it (the stream ended or the client left) frees the slot.
pub struct StreamSlot {
    cap: Arc<StreamCap>,
    user: String,
}

impl StreamCap {
    /// At most `per_user` streams per user.
    pub fn new(per_user: usize) -> Arc<Self> {
        Arc::new(Self {
            per_user: per_user.max(1),
            users: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more stream of `user`, or `None` when the user already has the most allowed.
    pub fn open(self: &Arc<Self>, user: &str) -> Option<StreamSlot> {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let n = users.entry(user.to_string()).or_default();
        if *n >= self.per_user {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            cap: self.clone(),
            user: user.to_string(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut users = self.cap.users.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = users.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                users.remove(&self.user);
            }
        }
    }
}

/// What the app keeps for the limits.
pub struct Limits {
    /// `POST /v1/quota/reservations` (the proxy's holds are not counted: each is charged or released by a
    /// real upstream call).
    pub reserve: RateLimiter,
    /// `POST /v1/payments/razorpay/links`.
    pub payment_links: RateLimiter,
    /// `GET /v1/quota/events`.
    pub streams: Arc<StreamCap>,
}

impl Limits {
    /// The limiters of `c`.
    pub fn new(c: &LimitsConfig) -> Self {
        Self {
            reserve: RateLimiter::new(c.reserve_rate),
            payment_links: RateLimiter::new(c.payment_link_rate),
            streams: StreamCap::new(c.sse_per_user),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_and_other_users_are_not_affected() {
        let l = RateLimiter::new(Some(Rate {
            count: 3,
            per: Duration::from_secs(3600),
        }));
        for _ in 0..3 {
            l.take("a").unwrap();
        }
        let wait = l.take("a").unwrap_err().0;
        assert!(wait > Duration::from_secs(1000) && wait <= Duration::from_secs(1200));
        l.take("b").unwrap();
        assert!(RateLimiter::new(None).take("a").is_ok());
    }

    #[test]
    fn stream_slots_are_freed_on_drop() {
        let cap = StreamCap::new(2);
        let a = cap.open("a").unwrap();
        let _b = cap.open("a").unwrap();
        assert!(cap.open("a").is_none());
        assert!(cap.open("z").is_some());
        drop(a);
        assert!(cap.open("a").is_some());
    }
}
