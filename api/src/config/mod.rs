//! Configuration from the environment, validated once at start so a typo fails the start with a clear
//! message instead of a confusing error on the first request. Secrets are wrapped in [`Secret`], whose
//! `Debug` prints nothing, so logging the config can never leak them.

pub mod auth;
pub mod cors;
pub mod error;
pub mod limits;
pub mod payments;
pub mod proxy;
pub mod secret;

use std::{net::SocketAddr, time::Duration};

use axum::http::StatusCode;

use crate::config::error::{invalid, whole};
pub use crate::config::{
    error::ConfigError, limits::LimitsConfig, payments::PaymentsConfig, proxy::ProxyConfig,
    secret::Secret,
};

/// Everything the API needs to start. Tests build it directly; `main` uses [`Config::from_env`].
#[derive(Clone, Debug)]
pub struct Config {
    /// PostgreSQL connection string (URL or `key=value` form); it may hold a password, hence [`Secret`].
    pub database_url: Secret,
    /// Where to listen; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// HS256 shared secret (Supabase's JWT secret).
    pub jwt_secret: Option<Secret>,
    /// JWKS URL for RS256/ES256 keys.
    pub jwks_url: Option<String>,
    /// How long fetched JWKS keys are trusted before a refresh.
    pub jwks_refresh: Duration,
    /// How long keys are kept through failed refreshes after the last successful fetch before they are
    /// dropped (`AIQUOTA_JWKS_MAX_STALE_S`); `None` means ten times `jwks_refresh`.
    pub jwks_max_stale: Option<Duration>,
    /// Required `aud` claim.
    pub jwt_audience: String,
    /// Required `iss` claim, when set.
    pub jwt_issuer: Option<String>,
    /// JWT `role` values that may use the admin routes.
    pub admin_roles: Vec<String>,
    /// SHA-256 digests of the admin API keys (`AIQUOTA_ADMIN_KEYS`): a bearer token whose digest is one of
    /// these is an admin, so a Supabase `sb_secret_...` key or a service's key gets in without a JWT.
    pub admin_key_hashes: Vec<[u8; 32]>,
    /// Browser origins allowed to call the user, payment and event routes (CORS); `*` for any.
    pub cors_origins: Vec<String>,
    /// Directory of the development demo page, served at `/demo/` (`AIQUOTA_DEMO_DIR`); off when `None`.
    pub demo_dir: Option<std::path::PathBuf>,
    /// Whether end-user tokens may consume, reserve, commit and release (`AIQUOTA_USER_WRITES`, default on).
    /// Off is the server-only mode: only service tokens (a role in `admin_roles`) and the metering proxy
    /// write, so usage can never be self-reported from a browser (see docs/http.md).
    pub user_writes: bool,
    /// Status of a denied consume or reservation: 429, or 403 for clients that must stop retrying.
    pub deny_status: StatusCode,
    /// Maximum number of pooled database connections.
    pub pool_size: usize,
    /// Requests of one user that may run database work at once; the rest wait for a turn.
    pub user_concurrency: usize,
    /// Time a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// `AIQUOTA_PURGE_INTERVAL_S`: how often old idempotency keys and reservations are deleted (0: never).
    pub purge_interval: Duration,
    /// `AIQUOTA_RETENTION_DAYS`: how long idempotency keys and settled reservations are kept.
    pub retention_days: i32,
    /// Largest request body accepted.
    pub body_limit: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// The metering proxy (`AIQUOTA_PROXY_*`); off when `None`.
    pub proxy: Option<ProxyConfig>,
    /// Payment providers; each part is optional and its routes answer 503 without it.
    pub payments: PaymentsConfig,
    /// Abuse limits: rates, connection cap, header timeout, streams per user (see [`crate::limits`]).
    pub limits: LimitsConfig,
}

impl Config {
    /// Defaults for everything but the keys: the private dev cluster and `127.0.0.1:8080`.
    pub fn with_defaults() -> Self {
        let port = std::env::var("AIQUOTA_PGPORT").unwrap_or_else(|_| "55432".into());
        Self {
            database_url: Secret::new(format!("postgres://aiquota_api@127.0.0.1:{port}/aiquota")),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            jwt_secret: None,
            jwks_url: None,
            jwks_refresh: Duration::from_secs(600),
            jwks_max_stale: None,
            jwt_audience: "authenticated".into(),
            jwt_issuer: None,
            admin_roles: vec!["service_role".into()],
            admin_key_hashes: Vec::new(),
            cors_origins: Vec::new(),
            demo_dir: None,
            user_writes: true,
            deny_status: StatusCode::TOO_MANY_REQUESTS,
            pool_size: 16,
            user_concurrency: 2,
            request_timeout: Duration::from_secs(10),
            purge_interval: Duration::from_secs(3600),
            retention_days: 30,
            body_limit: 64 * 1024,
            shutdown_timeout: Duration::from_secs(30),
            proxy: None,
            payments: PaymentsConfig::default(),
            limits: LimitsConfig::default(),
        }
    }

    /// Reads and validates the `AIQUOTA_*` variables (see docs/http.md for the table).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// [`Config::from_env`] over any lookup function, so validation is testable without touching the
    /// process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut c = Self::with_defaults();
        if let Some(url) = get("AIQUOTA_DATABASE_URL") {
            crate::tls::parse(&url).map_err(|e| {
                invalid(
                    "AIQUOTA_DATABASE_URL",
                    format!("not a usable PostgreSQL connection string ({e})"),
                )
            })?;
            c.database_url = Secret::new(url);
        }
        if let Some(listen) = get("AIQUOTA_LISTEN") {
            c.listen = listen.parse().map_err(|_| {
                invalid(
                    "AIQUOTA_LISTEN",
                    format!("{listen:?} is not an address like 127.0.0.1:8080"),
                )
            })?;
        }
        c.jwt_secret = get("AIQUOTA_JWT_SECRET").map(Secret::new);
        if let Some(secret) = &c.jwt_secret {
            if secret.expose().len() < 32 {
                return Err(invalid(
                    "AIQUOTA_JWT_SECRET",
                    "must be at least 32 bytes".into(),
                ));
            }
        }
        if let Some(url) = get("AIQUOTA_JWKS_URL") {
            auth::check_url(&url).map_err(|why| invalid("AIQUOTA_JWKS_URL", why))?;
            c.jwks_url = Some(url);
        }
        if c.jwt_secret.is_none() && c.jwks_url.is_none() {
            return Err(ConfigError::NoKeys);
        }
        if let Some(s) = get("AIQUOTA_JWKS_REFRESH_S") {
            c.jwks_refresh = Duration::from_secs(whole("AIQUOTA_JWKS_REFRESH_S", &s, 10, 86_400)?);
        }
        if let Some(s) = get("AIQUOTA_JWKS_MAX_STALE_S") {
            c.jwks_max_stale = Some(Duration::from_secs(whole(
                "AIQUOTA_JWKS_MAX_STALE_S",
                &s,
                10,
                30 * 86_400,
            )?));
        }
        if let Some(aud) = get("AIQUOTA_JWT_AUDIENCE") {
            c.jwt_audience = aud;
        }
        c.jwt_issuer = get("AIQUOTA_JWT_ISSUER");
        if let Some(roles) = get("AIQUOTA_ADMIN_ROLES") {
            c.admin_roles = roles
                .split(',')
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty())
                .collect();
            if c.admin_roles.is_empty() {
                return Err(invalid("AIQUOTA_ADMIN_ROLES", "names no role".into()));
            }
        }
        if let Some(list) = get("AIQUOTA_ADMIN_KEYS") {
            c.admin_key_hashes = auth::admin_key_hashes(&list)?;
        }
        if let Some(list) = get("AIQUOTA_CORS_ORIGINS") {
            c.cors_origins = cors::parse_origins("AIQUOTA_CORS_ORIGINS", &list)?;
        }
        if let Some(dir) = get("AIQUOTA_DEMO_DIR") {
            let dir = std::path::PathBuf::from(dir.trim());
            if !dir.join("index.html").is_file() {
                return Err(invalid(
                    "AIQUOTA_DEMO_DIR",
                    format!("{} holds no index.html", dir.display()),
                ));
            }
            c.demo_dir = Some(dir);
        }
        if let Some(s) = get("AIQUOTA_USER_WRITES") {
            c.user_writes = match s.trim().to_ascii_lowercase().as_str() {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                _ => {
                    return Err(invalid(
                        "AIQUOTA_USER_WRITES",
                        format!("{s:?} must be on or off"),
                    ))
                }
            };
        }
        if let Some(s) = get("AIQUOTA_DENY_STATUS") {
            c.deny_status = match s.trim() {
                "429" => StatusCode::TOO_MANY_REQUESTS,
                "403" => StatusCode::FORBIDDEN,
                other => {
                    return Err(invalid(
                        "AIQUOTA_DENY_STATUS",
                        format!("{other:?} must be 429 or 403"),
                    ))
                }
            };
        }
        if let Some(s) = get("AIQUOTA_POOL_SIZE") {
            c.pool_size = whole("AIQUOTA_POOL_SIZE", &s, 1, 1000)? as usize;
        }
        if let Some(s) = get("AIQUOTA_USER_CONCURRENCY") {
            c.user_concurrency = whole("AIQUOTA_USER_CONCURRENCY", &s, 1, 1000)? as usize;
        }
        if let Some(s) = get("AIQUOTA_REQUEST_TIMEOUT_S") {
            c.request_timeout =
                Duration::from_secs(whole("AIQUOTA_REQUEST_TIMEOUT_S", &s, 1, 600)?);
        }
        if let Some(s) = get("AIQUOTA_PURGE_INTERVAL_S") {
            c.purge_interval =
                Duration::from_secs(whole("AIQUOTA_PURGE_INTERVAL_S", &s, 0, 86_400 * 7)?);
        }
        if let Some(s) = get("AIQUOTA_RETENTION_DAYS") {
            c.retention_days = whole("AIQUOTA_RETENTION_DAYS", &s, 1, 3650)? as i32;
        }
        if let Some(s) = get("AIQUOTA_SHUTDOWN_TIMEOUT_S") {
            c.shutdown_timeout =
                Duration::from_secs(whole("AIQUOTA_SHUTDOWN_TIMEOUT_S", &s, 0, 3600)?);
        }
        c.payments = payments::from_lookup(&get)?;
        c.limits = LimitsConfig::from_lookup(&get)?;
        c.proxy = proxy::from_lookup(&get)?;
        Ok(c)
    }

    /// The database URL with any password replaced, for logs.
    pub fn database_url_redacted(&self) -> String {
        match crate::tls::parse(self.database_url.expose()).map(|t| t.config) {
            Ok(pg) => {
                let host = pg
                    .get_hosts()
                    .first()
                    .map(|h| match h {
                        tokio_postgres::config::Host::Tcp(h) => h.clone(),
                        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                    })
                    .unwrap_or_default();
                let port = pg.get_ports().first().copied().unwrap_or(5432);
                format!(
                    "postgres://{}@{host}:{port}/{}",
                    pg.get_user().unwrap_or(""),
                    pg.get_dbname().unwrap_or("")
                )
            }
            Err(_) => "(unparsable)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::StatusCode;

    use crate::config::{Config, ConfigError};

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn needs_a_key() {
        assert!(matches!(
            Config::from_lookup(lookup(&[])),
            Err(ConfigError::NoKeys)
        ));
    }

    #[test]
    fn rejects_bad_values_by_name() {
        let secret = ("AIQUOTA_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let err =
            Config::from_lookup(lookup(&[secret, ("AIQUOTA_DENY_STATUS", "500")])).unwrap_err();
        assert!(err.to_string().contains("AIQUOTA_DENY_STATUS"));
        let err = Config::from_lookup(lookup(&[secret, ("AIQUOTA_LISTEN", "nope")])).unwrap_err();
        assert!(err.to_string().contains("AIQUOTA_LISTEN"));
        let err = Config::from_lookup(lookup(&[("AIQUOTA_JWT_SECRET", "short")])).unwrap_err();
        assert!(err.to_string().contains("32 bytes"));
    }

    #[test]
    fn user_concurrency_defaults_to_two_and_is_checked() {
        let secret = ("AIQUOTA_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        assert_eq!(
            Config::from_lookup(lookup(&[secret]))
                .unwrap()
                .user_concurrency,
            2
        );
        let c = Config::from_lookup(lookup(&[secret, ("AIQUOTA_USER_CONCURRENCY", "4")])).unwrap();
        assert_eq!(c.user_concurrency, 4);
        let err =
            Config::from_lookup(lookup(&[secret, ("AIQUOTA_USER_CONCURRENCY", "0")])).unwrap_err();
        assert!(err.to_string().contains("AIQUOTA_USER_CONCURRENCY"));
    }

    #[test]
    fn payments_are_optional_but_consistent() {
        let secret = ("AIQUOTA_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let c = Config::from_lookup(lookup(&[secret])).unwrap();
        assert!(c.payments.razorpay_key_id.is_none());
        assert_eq!(c.payments.razorpay_api_base, "https://api.razorpay.com");
        let err = Config::from_lookup(lookup(&[secret, ("AIQUOTA_RAZORPAY_KEY_ID", "rzp_test_1")]))
            .unwrap_err();
        assert!(err.to_string().contains("AIQUOTA_RAZORPAY_KEY_SECRET"));
        let err = Config::from_lookup(lookup(&[secret, ("AIQUOTA_PUBLIC_URL", "example.com")]))
            .unwrap_err();
        assert!(err.to_string().contains("AIQUOTA_PUBLIC_URL"));
        let c = Config::from_lookup(lookup(&[
            secret,
            ("AIQUOTA_RAZORPAY_KEY_ID", "rzp_test_1"),
            ("AIQUOTA_RAZORPAY_KEY_SECRET", "rzp-key-secret-value"),
            (
                "AIQUOTA_RAZORPAY_WEBHOOK_SECRET",
                "rzp-webhook-secret-value",
            ),
            ("AIQUOTA_RAZORPAY_API_BASE", "http://127.0.0.1:9/"),
            ("AIQUOTA_PUBLIC_URL", "https://app.example.com/"),
            (
                "AIQUOTA_STRIPE_WEBHOOK_SECRETS",
                "whsec_old-value, whsec_new-value",
            ),
        ]))
        .unwrap();
        assert_eq!(c.payments.razorpay_api_base, "http://127.0.0.1:9");
        assert_eq!(
            c.payments.public_url.as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(c.payments.stripe_webhook_secrets.len(), 2);
        let printed = format!("{c:?}");
        for s in [
            "rzp-key-secret-value",
            "rzp-webhook-secret-value",
            "whsec_old-value",
            "whsec_new-value",
        ] {
            assert!(!printed.contains(s), "{s} printed");
        }
    }

    #[test]
    fn stripe_livemode_is_a_boolean_defaulting_to_test_mode() {
        let secret = ("AIQUOTA_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        assert!(
            !Config::from_lookup(lookup(&[secret]))
                .unwrap()
                .payments
                .stripe_livemode
        );
        let c =
            Config::from_lookup(lookup(&[secret, ("AIQUOTA_STRIPE_LIVEMODE", "true")])).unwrap();
        assert!(c.payments.stripe_livemode);
        let err =
            Config::from_lookup(lookup(&[secret, ("AIQUOTA_STRIPE_LIVEMODE", "yes")])).unwrap_err();
        assert!(err.to_string().contains("AIQUOTA_STRIPE_LIVEMODE"));
    }

    #[test]
    fn admin_keys_are_digests() {
        let secret = ("AIQUOTA_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let d = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
        let c = Config::from_lookup(lookup(&[
            secret,
            ("AIQUOTA_ADMIN_KEYS", &format!("{d}, {d}")),
        ]))
        .unwrap();
        assert_eq!(c.admin_key_hashes.len(), 2);
        assert_eq!(c.admin_key_hashes[0][0], 0x9f);
        assert_eq!(c.admin_key_hashes[0][31], 0x08);
        let err = Config::from_lookup(lookup(&[secret, ("AIQUOTA_ADMIN_KEYS", "sb_secret_abc")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AIQUOTA_ADMIN_KEYS") && !err.contains("sb_secret_abc"),
            "{err}"
        );
        let err =
            Config::from_lookup(lookup(&[secret, ("AIQUOTA_CORS_ORIGINS", "nope")])).unwrap_err();
        assert!(err.to_string().contains("AIQUOTA_CORS_ORIGINS"));
    }

    #[test]
    fn token_settings_are_checked() {
        let secret = ("AIQUOTA_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let c = Config::from_lookup(lookup(&[secret])).unwrap();
        assert!(c.user_writes);
        assert_eq!(c.jwks_max_stale, None);
        let c = Config::from_lookup(lookup(&[
            secret,
            ("AIQUOTA_USER_WRITES", "off"),
            ("AIQUOTA_JWKS_MAX_STALE_S", "3600"),
        ]))
        .unwrap();
        assert!(!c.user_writes);
        assert_eq!(c.jwks_max_stale, Some(Duration::from_secs(3600)));
        for (name, value) in [
            ("AIQUOTA_USER_WRITES", "maybe"),
            ("AIQUOTA_JWKS_MAX_STALE_S", "1"),
            ("AIQUOTA_JWKS_URL", "http://issuer.example.com/jwks.json"),
        ] {
            let err = Config::from_lookup(lookup(&[secret, (name, value)])).unwrap_err();
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
        let c = Config::from_lookup(lookup(&[("AIQUOTA_JWKS_URL", "http://127.0.0.1:9/jwks")]))
            .unwrap();
        assert!(c.jwks_url.is_some());
    }

    #[test]
    fn secrets_never_print() {
        let c = Config::from_lookup(lookup(&[
            ("AIQUOTA_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            (
                "AIQUOTA_DATABASE_URL",
                "postgres://u:hunter2@localhost:5432/db",
            ),
            ("AIQUOTA_DENY_STATUS", "403"),
        ]))
        .unwrap();
        let printed = format!("{c:?} {}", c.database_url_redacted());
        assert!(!printed.contains("hunter2") && !printed.contains("0123456789abcdef"));
        assert_eq!(c.deny_status, StatusCode::FORBIDDEN);
    }
}
