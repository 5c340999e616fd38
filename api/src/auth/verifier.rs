//! [`Verifier`]: checks a token's signature (HS256 with the shared secret, RS256/ES256 with the JWKS keys),
//! algorithm and claims, and recognises admin API keys and roles.

use std::sync::Arc;

use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::error::AuthError;
use crate::auth::jwks::Jwks;
use crate::config::Config;

/// The claims the API reads from a verified token; `exp`, `aud` and `iss` are checked by the library.
#[derive(Debug, Clone, Deserialize)]
pub struct Verified {
    /// The user id.
    pub sub: String,
    /// `authenticated`, `service_role`, ...
    #[serde(default)]
    pub role: Option<String>,
}

/// Seconds of clock skew allowed on `exp` and on `nbf`.
pub const LEEWAY_S: u64 = 30;

/// Verifies tokens against the configured keys.
pub struct Verifier {
    hs256: Option<DecodingKey>,
    jwks: Option<Jwks>,
    audience: String,
    issuer: Option<String>,
    admin_roles: Vec<String>,
    admin_key_hashes: Vec<[u8; 32]>,
    user_writes: bool,
}

impl Verifier {
    /// Keys and rules from the configuration.
    pub fn new(config: &Config) -> Self {
        Self {
            hs256: config
                .jwt_secret
                .as_ref()
                .map(|s| DecodingKey::from_secret(s.expose().as_bytes())),
            jwks: config.jwks_url.as_ref().map(|u| {
                let max_stale = config.jwks_max_stale.unwrap_or(config.jwks_refresh * 10);
                Jwks::new(u.clone(), config.jwks_refresh, max_stale)
            }),
            audience: config.jwt_audience.clone(),
            issuer: config.jwt_issuer.clone(),
            admin_roles: config.admin_roles.clone(),
            admin_key_hashes: config.admin_key_hashes.clone(),
            user_writes: config.user_writes,
        }
    }

    /// The JWKS cache, if one is configured (started by the app to prefetch keys).
    pub fn jwks(&self) -> Option<&Jwks> {
        self.jwks.as_ref()
    }

    /// Checks signature, algorithm, `exp`, `nbf` (when present), `aud`, `iss` (when configured) and `sub`,
    /// and returns the claims.
    pub async fn verify(&self, token: &str) -> Result<Verified, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let key: Arc<DecodingKey> = match header.alg {
            Algorithm::HS256 => match &self.hs256 {
                Some(k) => Arc::new(k.clone()),
                None => return Err(AuthError::Malformed),
            },
            Algorithm::RS256 | Algorithm::ES256 => match &self.jwks {
                Some(jwks) => jwks.key(header.kid.as_deref(), header.alg).await?,
                None => return Err(AuthError::Malformed),
            },
            _ => return Err(AuthError::Malformed),
        };
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        // One leeway for both ends of the validity window: clocks drift the same way for `nbf` as for `exp`.
        validation.leeway = LEEWAY_S;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.audience]);
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
        }
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        let data =
            jsonwebtoken::decode::<Verified>(token, &key, &validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                    ErrorKind::InvalidAudience => AuthError::WrongAudience,
                    ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
                    ErrorKind::MissingRequiredClaim(_) => AuthError::MissingClaim,
                    ErrorKind::InvalidSignature => AuthError::BadSignature,
                    _ => AuthError::Malformed,
                }
            })?;
        if data.claims.sub.trim().is_empty() {
            return Err(AuthError::MissingClaim);
        }
        if crate::input::has_nul(&data.claims.sub) {
            return Err(AuthError::InvalidSubject);
        }
        Ok(data.claims)
    }

    /// The actor name of an admin API key (`AIQUOTA_ADMIN_KEYS`), or `None` when `token` is no such key.
    /// Every digest is compared in constant time, and all of them, so the timing tells nothing about which
    /// digest (or how much of one) matched. The actor is `api-key:` and the first 12 hex digits of the
    /// digest: it tells keys apart in the audit log without revealing them.
    pub(crate) fn admin_key(&self, token: &str) -> Option<String> {
        if self.admin_key_hashes.is_empty() {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for h in &self.admin_key_hashes {
            if bool::from(h.ct_eq(&digest)) {
                found = Some(h);
            }
        }
        found.map(|h| {
            let hex: String = h[..6].iter().map(|b| format!("{b:02x}")).collect();
            format!("api-key:{hex}")
        })
    }

    /// Whether the caller of `claims` may write usage: anyone, unless `AIQUOTA_USER_WRITES=off` (server-only
    /// mode) leaves it to service tokens.
    pub(crate) fn may_write(&self, claims: &Verified) -> bool {
        self.user_writes || self.is_admin(claims)
    }

    pub(crate) fn is_admin(&self, claims: &Verified) -> bool {
        claims
            .role
            .as_ref()
            .is_some_and(|r| self.admin_roles.iter().any(|a| a == r))
    }
}
