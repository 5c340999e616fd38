//! [`AuthError`] and its answer: 401 with `WWW-Authenticate`, or 503 when the keys to check a token are missing.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

use crate::problem::{unavailable, Problem};

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

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        // Not the client's fault: the token may be fine, the keys to check it are missing.
        if let AuthError::KeysUnavailable = self {
            tracing::warn!("no JWKS keys to verify a token");
            return unavailable(
                "The keys to verify tokens cannot be fetched right now; try again.",
            );
        }
        tracing::info!(reason = %self, "unauthorized");
        let mut res = Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
            .detail(self.to_string())
            .into_response();
        let challenge = match self {
            AuthError::Missing => "Bearer",
            _ => "Bearer error=\"invalid_token\"",
        };
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        res
    }
}
