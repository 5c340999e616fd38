//! Minting HS256 tokens (the `aiquota-api token` command, for development and the README tour).

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

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
