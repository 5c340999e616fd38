//! Bearer-token authentication: HS256 with the shared secret, RS256/ES256 with keys from the JWKS URL.
//!
//! The user id is always the token's `sub`; no route takes a user id from the request for the caller's own
//! quota, so nobody can read or spend another user's quota. Algorithms are pinned per key (the token's
//! `alg` must match the key it selects), which rules out `alg: none` and RS/HS confusion. Tokens are never
//! logged.

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{config::Config, jwks::Jwks, problem::ApiError, AppState};

/// Why a request is not authenticated; the message is safe to show to the client.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token")]
    Missing,
    /// Not a JWT, or an algorithm that is not accepted (including `none`).
    #[error("malformed token or unsupported algorithm")]
    Malformed,
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the same leeway `exp` gets).
    #[error("token not valid yet")]
    NotYetValid,
    /// `aud` is not the configured audience.
    #[error("wrong audience")]
    WrongAudience,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `exp`, `sub` or `aud` missing, or `sub` empty.
    #[error("required claim missing")]
    MissingClaim,
    /// `sub` holds a U+0000, which no user id may contain (PostgreSQL could not store it).
    #[error("invalid sub claim")]
    InvalidSubject,
    /// The signature does not verify with any configured key.
    #[error("invalid signature")]
    BadSignature,
    /// The JWKS could not be fetched, so the token cannot be checked now (answered 503, not 401).
    #[error("signing keys unavailable")]
    KeysUnavailable,
}

/// The claims the API reads from a verified token; `exp`, `aud` and `iss` are checked by the library.
#[derive(Debug, Clone, Deserialize)]
pub struct Verified {
    /// The user id.
    pub sub: String,
    /// `authenticated`, `service_role`, ...
    #[serde(default)]
    pub role: Option<String>,
}

/// The claims of a minted token (Supabase-style).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// `authenticated`, `service_role`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Audience.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    #[serde(default)]
    pub iat: i64,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
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
    fn admin_key(&self, token: &str) -> Option<String> {
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

    fn is_admin(&self, claims: &Verified) -> bool {
        claims
            .role
            .as_ref()
            .is_some_and(|r| self.admin_roles.iter().any(|a| a == r))
    }
}

/// The authenticated caller; its `id` is the token's `sub`.
#[derive(Debug, Clone)]
pub struct User {
    /// The user id (`sub`).
    pub id: String,
}

/// A caller that may write to its own quota (consume, reserve, commit, release): any end user by default;
/// with `AIQUOTA_USER_WRITES=off` (server-only mode) only a token whose `role` is one of
/// `AIQUOTA_ADMIN_ROLES` (a service token, `sub` = the user it acts for). End users then get 403, so no
/// usage is self-reported from a browser. The metering proxy does not go through this: it charges on its own.
#[derive(Debug, Clone)]
pub struct Writer {
    /// The user id (`sub`) whose quota is written.
    pub id: String,
}

/// An authenticated caller whose `role` is one of `AIQUOTA_ADMIN_ROLES`, or who sent an admin API key
/// (`AIQUOTA_ADMIN_KEYS`); `id` is recorded as the actor.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The admin's `sub`, passed to the extension as `p_actor`.
    pub id: String,
}

fn bearer(parts: &Parts) -> Result<&str, AuthError> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(token.trim())
}

async fn claims(parts: &Parts, state: &AppState) -> Result<Verified, ApiError> {
    let token = bearer(parts)?;
    Ok(state.verifier.verify(token).await?)
}

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let c = claims(parts, state).await?;
        Ok(User { id: c.sub })
    }
}

impl FromRequestParts<AppState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let c = claims(parts, state).await?;
        if !state.config.user_writes && !state.verifier.is_admin(&c) {
            return Err(ApiError::ServerOnly);
        }
        Ok(Writer { id: c.sub })
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(id) = state.verifier.admin_key(bearer(parts)?) {
            return Ok(Admin { id });
        }
        let c = claims(parts, state).await?;
        if !state.verifier.is_admin(&c) {
            return Err(ApiError::Forbidden);
        }
        Ok(Admin { id: c.sub })
    }
}

/// Mints an HS256 token (the `aiquota-api token` command, for development and the README tour).
pub fn mint_hs256(
    secret: &str,
    sub: &str,
    role: &str,
    audience: &str,
    issuer: Option<&str>,
    ttl_s: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: sub.into(),
        role: Some(role.into()),
        aud: audience.into(),
        exp: now + ttl_s,
        iat: now,
        iss: issuer.map(str::to_string),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}
