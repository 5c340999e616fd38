//! Bearer-token authentication: the extractors [`User`], [`Writer`] and [`Admin`], over any state that
//! hands out the [`Verifier`] (`FromRef`). HS256 with the shared secret, RS256/ES256 with keys from the JWKS URL.
//!
//! The user id is always the token's `sub`; no route takes a user id from the request for the caller's own
//! quota, so nobody can read or spend another user's quota. Algorithms are pinned per key (the token's
//! `alg` must match the key it selects), which rules out `alg: none` and RS/HS confusion. Tokens are never
//! logged.

pub mod error;
pub mod jwks;
pub mod mint;
pub mod verifier;

use std::sync::Arc;

use axum::{
    extract::{FromRef, FromRequestParts},
    http::request::Parts,
};

pub use crate::auth::{error::AuthError, mint::mint_hs256, verifier::Verifier};
use crate::{auth::verifier::Verified, error::ApiError};

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

async fn claims(parts: &Parts, verifier: &Verifier) -> Result<Verified, ApiError> {
    let token = bearer(parts)?;
    Ok(verifier.verify(token).await?)
}

impl<S> FromRequestParts<S> for User
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let c = claims(parts, &Arc::<Verifier>::from_ref(state)).await?;
        Ok(User { id: c.sub })
    }
}

impl<S> FromRequestParts<S> for Writer
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<Verifier>::from_ref(state);
        let c = claims(parts, &verifier).await?;
        if !verifier.may_write(&c) {
            return Err(ApiError::ServerOnly);
        }
        Ok(Writer { id: c.sub })
    }
}

impl<S> FromRequestParts<S> for Admin
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<Verifier>::from_ref(state);
        if let Some(id) = verifier.admin_key(bearer(parts)?) {
            return Ok(Admin { id });
        }
        let c = claims(parts, &verifier).await?;
        if !verifier.is_admin(&c) {
            return Err(ApiError::Forbidden);
        }
        Ok(Admin { id: c.sub })
    }
}
