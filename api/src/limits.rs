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

use crate::config::ConfigError;

/// `count` calls per `per`, refilled continuously (a token bucket holding at most `count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Calls allowed in one `per` (and the largest burst).
    pub count: u32,
    /// The window.
    pub per: Duration,
}

impl Rate {
    /// Parses `N/second`, `N/minute`, `N/hour` or `N/day`; `off` (or `0/...`) is `None`: no limit.
    pub fn parse(name: &'static str, value: &str) -> Result<Option<Rate>, ConfigError> {
        let v = value.trim();
        if v.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let bad = || ConfigError::Invalid {
            name,
            why: format!("{value:?} must be N/second, N/minute, N/hour, N/day or off"),
        };
        let (n, unit) = v.split_once('/').ok_or_else(bad)?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "second" | "s" => Duration::from_secs(1),
            "minute" | "min" | "m" => Duration::from_secs(60),
            "hour" | "h" => Duration::from_secs(3600),
            "day" | "d" => Duration::from_secs(86_400),
            _ => return Err(bad()),
        };
        Ok((count > 0).then_some(Rate { count, per }))
    }
}

/// The abuse-limit settings (`AIQUOTA_RESERVE_RATE`, `AIQUOTA_PAYMENT_LINK_RATE`, `AIQUOTA_MAX_CONNECTIONS`,
/// `AIQUOTA_HEADER_READ_TIMEOUT_S`, `AIQUOTA_SSE_PER_USER`).
#[derive(Clone, Debug)]
pub struct LimitsConfig {
    /// Reservations one user may open; default 100 a minute.
    pub reserve_rate: Option<Rate>,
    /// Payment links one user may create; default 10 an hour.
    pub payment_link_rate: Option<Rate>,
    /// Open TCP connections the server accepts at once; more wait in the listen backlog. Default 1024.
    pub max_connections: usize,
    /// Time a client has to send a whole request head; default 30 s (hyper's own default). It also
    /// bounds how long an idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// Event streams one user may hold open; default 5.
    pub sse_per_user: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            reserve_rate: Some(Rate {
                count: 100,
                per: Duration::from_secs(60),
            }),
            payment_link_rate: Some(Rate {
                count: 10,
                per: Duration::from_secs(3600),
            }),
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(30),
            sse_per_user: 5,
        }
    }
}

impl LimitsConfig {
    /// The defaults, overridden by whichever variables are set.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        if let Some(v) = get("AIQUOTA_RESERVE_RATE") {
            c.reserve_rate = Rate::parse("AIQUOTA_RESERVE_RATE", &v)?;
        }
        if let Some(v) = get("AIQUOTA_PAYMENT_LINK_RATE") {
            c.payment_link_rate = Rate::parse("AIQUOTA_PAYMENT_LINK_RATE", &v)?;
        }
        if let Some(v) = get("AIQUOTA_MAX_CONNECTIONS") {
            c.max_connections = bounded("AIQUOTA_MAX_CONNECTIONS", &v, 1, 1_000_000)? as usize;
        }
        if let Some(v) = get("AIQUOTA_HEADER_READ_TIMEOUT_S") {
            c.header_read_timeout =
                Duration::from_secs(bounded("AIQUOTA_HEADER_READ_TIMEOUT_S", &v, 1, 600)?);
        }
        if let Some(v) = get("AIQUOTA_SSE_PER_USER") {
            c.sse_per_user = bounded("AIQUOTA_SSE_PER_USER", &v, 1, 1000)? as usize;
        }
        Ok(c)
    }
}

fn bounded(name: &'static str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::Invalid {
            name,
            why: format!("{value:?} must be a whole number from {min} to {max}"),
        }),
    }
}

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
    fn rates_parse() {
        let r = Rate::parse("X", "100/minute").unwrap().unwrap();
        assert_eq!((r.count, r.per), (100, Duration::from_secs(60)));
        assert_eq!(Rate::parse("X", "off").unwrap(), None);
        assert_eq!(Rate::parse("X", "0/hour").unwrap(), None);
        for bad in ["100", "x/minute", "5/fortnight", "-1/hour"] {
            assert!(Rate::parse("X", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_come_from_the_environment_and_bad_ones_are_named() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            }
        };
        let d = LimitsConfig::from_lookup(&vars(&[])).unwrap();
        assert_eq!(d.reserve_rate.unwrap().count, 100);
        assert_eq!(d.payment_link_rate.unwrap().per, Duration::from_secs(3600));
        assert_eq!((d.sse_per_user, d.max_connections), (5, 1024));
        let c = LimitsConfig::from_lookup(&vars(&[
            ("AIQUOTA_RESERVE_RATE", "off"),
            ("AIQUOTA_PAYMENT_LINK_RATE", "3/day"),
            ("AIQUOTA_MAX_CONNECTIONS", "64"),
            ("AIQUOTA_HEADER_READ_TIMEOUT_S", "5"),
            ("AIQUOTA_SSE_PER_USER", "2"),
        ]))
        .unwrap();
        assert_eq!(c.reserve_rate, None);
        assert_eq!(c.payment_link_rate.unwrap().count, 3);
        assert_eq!(c.max_connections, 64);
        assert_eq!(c.header_read_timeout, Duration::from_secs(5));
        assert_eq!(c.sse_per_user, 2);
        for (name, bad) in [
            ("AIQUOTA_RESERVE_RATE", "lots"),
            ("AIQUOTA_MAX_CONNECTIONS", "0"),
            ("AIQUOTA_SSE_PER_USER", "x"),
        ] {
            let err = LimitsConfig::from_lookup(&|n: &str| (n == name).then(|| bad.to_string()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{err}");
        }
    }

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
