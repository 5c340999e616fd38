//! The abuse limits' part of the configuration (`AIQUOTA_RESERVE_RATE`, `AIQUOTA_PAYMENT_LINK_RATE`,
//! `AIQUOTA_MAX_CONNECTIONS`, `AIQUOTA_HEADER_READ_TIMEOUT_S`, `AIQUOTA_SSE_PER_USER`); [`crate::limits`]
//! enforces them.

use std::time::Duration;

use crate::config::error::{whole, ConfigError};

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
            c.max_connections = whole("AIQUOTA_MAX_CONNECTIONS", &v, 1, 1_000_000)? as usize;
        }
        if let Some(v) = get("AIQUOTA_HEADER_READ_TIMEOUT_S") {
            c.header_read_timeout =
                Duration::from_secs(whole("AIQUOTA_HEADER_READ_TIMEOUT_S", &v, 1, 600)?);
        }
        if let Some(v) = get("AIQUOTA_SSE_PER_USER") {
            c.sse_per_user = whole("AIQUOTA_SSE_PER_USER", &v, 1, 1000)? as usize;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::limits::{LimitsConfig, Rate};

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
}
