//! Probes and machine endpoints: liveness, readiness (database reachable and the extension at the version
//! this API was built for), Prometheus metrics.

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{db::Retry, problem::Problem, AppState};

/// The extension version this API calls: the workspace version, shared by both crates.
pub const EXTENSION_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Body of the probes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
    /// Extension version found (readyz only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        extension: None,
    })
}

/// The database answers and has extension `aiquota` at the version this API was built for.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Health), (status = 503, description = "Not ready", content_type = "application/problem+json")))]
async fn readyz(State(s): State<AppState>) -> Response {
    let found =
        s.db.run(Retry::Safe, |c| async move {
            let stmt = c
                .prepare_cached("SELECT extversion FROM pg_extension WHERE extname = 'aiquota'")
                .await?;
            Ok(c.query_opt(&stmt, &[])
                .await?
                .map(|r| r.get::<_, String>(0)))
        })
        .await;
    let not_ready = |detail: String| {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "Not ready")
            .detail(detail)
            .into_response()
    };
    match found {
        Ok(Some(v)) if v == EXTENSION_VERSION => Json(Health {
            status: "ok",
            extension: Some(v),
        })
        .into_response(),
        Ok(Some(v)) => not_ready(format!(
            "extension aiquota is at {v}, this API needs {EXTENSION_VERSION}"
        )),
        Ok(None) => not_ready("extension aiquota is not installed".into()),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            not_ready("database unreachable".into())
        }
    }
}

/// Prometheus text format: requests by route and status, latency, decisions, retries, pool usage.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(s.db.pool.status()),
    )
        .into_response()
}
