//! The development demo page at `/demo/`, on only when `AIQUOTA_DEMO_DIR` names a directory (`make run`
//! sets it to the web kit's built demo). Files are served by bare name from that one directory: a name with
//! a slash, a backslash or a leading dot is not found, so nothing outside it can be reached. With the demo
//! on, Razorpay's callback (`AIQUOTA_PUBLIC_URL` + `/billing/razorpay/callback`) is sent on to the demo page
//! with its query, where the page completes the upgrade.

use std::sync::Arc;

use axum::{
    extract::{Path, RawQuery},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::get,
    Router,
};

use crate::AppState;

/// The demo routes, or none when the demo is off.
pub fn router(dir: Option<&std::path::Path>) -> Router<AppState> {
    let Some(dir) = dir else {
        return Router::new();
    };
    let dir = Arc::new(dir.to_path_buf());
    let index = dir.clone();
    Router::new()
        .route("/demo", get(|| async { Redirect::temporary("/demo/") }))
        .route(
            crate::payments::razorpay::CALLBACK_PATH,
            get(|RawQuery(q): RawQuery| async move { to_demo(q.as_deref()) }),
        )
        .route(
            "/demo/",
            get(move || {
                let d = index.clone();
                async move { file(&d, "index.html").await }
            }),
        )
        .route(
            "/demo/{name}",
            get(move |Path(name): Path<String>| {
                let d = dir.clone();
                async move { file(&d, &name).await }
            }),
        )
}

/// 303 to the demo page with the callback's query (already valid URI characters, checked again here).
fn to_demo(query: Option<&str>) -> Response {
    match HeaderValue::from_str(&format!("/demo/?{}", query.unwrap_or_default())) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn file(dir: &std::path::Path, name: &str) -> Response {
    let safe = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !safe {
        return StatusCode::NOT_FOUND.into_response();
    }
    let kind = match name.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("map") | Some("json") => "application/json",
        Some("png") => "image/png",
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match tokio::fs::read(dir.join(name)).await {
        Ok(bytes) => {
            let mut res = bytes.into_response();
            res.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            res
        }
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}
