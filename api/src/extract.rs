//! Request extractors whose rejections are [`ApiError`]s, so a malformed body, path or query is answered
//! with problem+json like every other error.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, HeaderMap, StatusCode},
};
use serde::de::DeserializeOwned;

use crate::{error::ApiError, input};

/// A path parameter.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Query parameters.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A JSON body; an empty body, or the JSON `null`, means `T::default()`, so `POST /v1/quota/consume` with
/// no body consumes one `ai_requests`. A non-empty body must be `application/json`, and no string in it
/// (key or value, at any depth) may hold a U+0000 (see [`crate::input`]).
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let mime = v.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
            });
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            let status = r.status();
            ApiError::BadRequest(r.body_text(), status)
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(T::default()));
        }
        if !is_json {
            return Err(ApiError::BadRequest(
                "Expected Content-Type: application/json".into(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ));
        }
        let invalid = |e: serde_json::Error| {
            ApiError::BadRequest(format!("Invalid JSON body: {e}"), StatusCode::BAD_REQUEST)
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(invalid)?;
        if value.is_null() {
            return Ok(JsonBody(T::default()));
        }
        if let Some(at) = input::find_nul(&value) {
            return Err(input::nul_in_body(&at));
        }
        serde_json::from_value(value).map(JsonBody).map_err(invalid)
    }
}

/// The `Idempotency-Key` header, if present; it must be visible ASCII (the extension checks its length).
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.trim().to_string())).map_err(|_| {
            ApiError::BadRequest(
                "Idempotency-Key must be ASCII".into(),
                StatusCode::BAD_REQUEST,
            )
        }),
    }
}
