//! `aiquota-api`: the HTTP layer over the aiquota extension. It holds no quota state: every decision is one
//! call into the extension. [`App::build`] makes the app from a [`Config`] and [`App::serve`] runs it until a
//! shutdown future resolves; `main` and the integration tests share both.

pub mod auth;
pub mod config;
pub mod cors;
pub mod db;
pub mod deadline;
pub mod denial;
pub mod error;
pub mod events;
pub mod extract;
pub mod fair;
pub mod headers;
pub mod hex;
pub mod input;
pub mod limits;
pub mod metrics;
pub mod openapi_errors;
pub mod payments;
pub mod problem;
pub mod proxy;
pub mod retention;
pub mod routes;
pub mod serve;
pub mod store;
pub mod tls;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::{DefaultBodyLimit, FromRef, Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnResponse, TraceLayer},
};
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};
use utoipa_axum::router::OpenApiRouter;

pub use config::Config;

/// What every handler can reach; each field is also a substate (`FromRef`), so an extractor asks only for
/// what it needs (the auth extractors for `Arc<auth::Verifier>`).
#[derive(Clone, FromRef)]
pub struct AppState {
    /// Database pool with the retry rule.
    pub db: db::Db,
    /// Per-user turns at the database (`AIQUOTA_USER_CONCURRENCY`).
    pub fair: Arc<fair::Fair>,
    /// Token verification.
    pub verifier: Arc<auth::Verifier>,
    /// Process metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// SSE fan-out.
    pub events: events::Hub,
    /// The configuration.
    pub config: Arc<Config>,
    /// Payment provider client and webhook event dedupe.
    pub payments: Arc<payments::Payments>,
    /// Per-user abuse limits (reserve and payment-link rates, open streams).
    pub limits: Arc<limits::Limits>,
    /// Cancelled when shutdown starts: ends SSE streams and the LISTEN task.
    pub shutdown: CancellationToken,
    /// The metering proxy's substate; `None` when the proxy is off.
    pub proxy: Option<proxy::ProxyState>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "aiquota API", description = "Per-user AI usage quotas; every decision is one call into the aiquota PostgreSQL extension."),
    modifiers(&BearerAuth),
    tags(
        (name = "quota", description = "The caller's own quota (user = JWT sub)"),
        (name = "admin", description = "Admin routes (JWT role in AIQUOTA_ADMIN_ROLES, or an admin API key from AIQUOTA_ADMIN_KEYS)"),
        (name = "payments", description = "Buying a plan: Razorpay payment links and callback, Razorpay and Stripe webhooks"),
        (name = "health", description = "Probes and metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The routes a browser app on another origin calls: the caller's quota, its event stream and payments.
/// They get the CORS layer (`AIQUOTA_CORS_ORIGINS`).
fn browser_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::quota::router())
        .merge(events::router())
        .merge(payments::razorpay_routes::router())
        .merge(payments::stripe::router())
}

/// The routes only servers and the same-origin dashboard call.
fn server_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::admin::router())
        .merge(routes::admin_user::router())
        .merge(routes::health::router())
}

/// Every route with its OpenAPI description, from one router so the document cannot drift.
fn api_router() -> OpenApiRouter<AppState> {
    let mut doc = ApiDoc::openapi();
    // The proxy's routes are described, not routed here: its router is mounted separately.
    doc.merge(proxy::openapi::ProxyDoc::openapi());
    OpenApiRouter::with_openapi(doc)
        .merge(browser_routes())
        .merge(server_routes())
}

/// The OpenAPI document (also served at `/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api_router().split_for_parts().1;
    openapi_errors::complete(&mut doc);
    doc
}

/// A built app, bound to its address, not yet serving.
pub struct App {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
    state: AppState,
    listen_task: tokio::task::JoinHandle<()>,
}

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The pool could not be built from the configuration.
    #[error("{0}")]
    Database(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The metering proxy's HTTP client could not be built.
    #[error("{0}")]
    Proxy(String),
    /// The payments HTTP client could not be built.
    #[error("{0}")]
    Payments(String),
}

impl App {
    /// Binds the listener, builds the pool, starts the LISTEN task and the JWKS prefetch.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let shutdown = CancellationToken::new();
        let metrics = Arc::new(metrics::Metrics::default());
        let (pool, tls) = db::pool(&config).map_err(StartError::Database)?;
        let proxy = match &config.proxy {
            Some(p) => Some(Arc::new(proxy::Proxy::new(p).map_err(StartError::Proxy)?)),
            None => None,
        };
        let verifier = Arc::new(auth::Verifier::new(&config));
        if verifier.jwks().is_some() {
            let v = verifier.clone();
            tokio::spawn(async move {
                if let Some(j) = v.jwks() {
                    j.refresh_if_due(Duration::ZERO).await;
                }
            });
        }
        let (events, listen_task) =
            events::Hub::start(config.database_url.clone(), shutdown.clone());
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| StartError::Bind(config.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Bind(config.listen, e))?;
        let db = db::Db {
            pool,
            metrics: metrics.clone(),
            timeout: config.request_timeout,
            tls,
        };
        let fair = fair::Fair::new(config.user_concurrency);
        let proxy = proxy.map(|proxy| proxy::ProxyState {
            proxy,
            db: db.clone(),
            fair: fair.clone(),
            metrics: metrics.clone(),
            verifier: verifier.clone(),
            request_timeout: config.request_timeout,
        });
        let state = AppState {
            db,
            fair,
            verifier,
            metrics: metrics.clone(),
            events,
            payments: Arc::new(
                payments::Payments::new(config.request_timeout).map_err(StartError::Payments)?,
            ),
            limits: Arc::new(limits::Limits::new(&config.limits)),
            config: Arc::new(config),
            shutdown,
            proxy,
        };
        // The timer ends with the shutdown token; its handle is not awaited (a purge is one short transaction).
        let _ = retention::start(
            state.db.clone(),
            state.config.purge_interval,
            state.config.retention_days,
            state.shutdown.clone(),
        );
        let router = router(state.clone());
        Ok(Self {
            listener,
            addr,
            router,
            state,
            listen_task,
        })
    }

    /// The bound address (the port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish (at most
    /// `AIQUOTA_SHUTDOWN_TIMEOUT_S`), ends SSE streams and the LISTEN task, and closes the pool.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let token = self.state.shutdown.clone();
        {
            let token = token.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = shutdown => {
                        tracing::info!("shutting down: finishing in-flight requests");
                        token.cancel();
                    }
                    _ = token.cancelled() => {}
                }
            });
        }
        let limits = serve::ConnLimits {
            max_connections: self.state.config.limits.max_connections,
            header_read_timeout: self.state.config.limits.header_read_timeout,
        };
        let server = serve::run(self.listener, self.router, limits, token.clone());
        let grace = self.state.config.shutdown_timeout;
        let result = tokio::select! {
            r = server => r,
            _ = async { token.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("shutdown timeout reached; dropping the requests still running");
                Ok(())
            }
        };
        let _ = self.listen_task.await;
        self.state.db.pool.close();
        tracing::info!("stopped");
        result
    }
}

/// The router with every layer; the order of the layers is part of the behaviour (see comments).
fn router(state: AppState) -> Router {
    let doc = Arc::new(openapi());
    let (browser, _) = browser_routes().split_for_parts();
    let browser = match cors::layer(&state.config.cors_origins) {
        Some(c) => browser.layer(c),
        None => browser,
    };
    let (server, _) = server_routes().split_for_parts();
    let timeout = state.config.request_timeout;
    server
        .merge(browser)
        .merge(routes::dashboard::router())
        .merge(routes::demo::router(state.config.demo_dir.as_deref()))
        .route("/openapi.json", get(move || async move { Json(doc.as_ref().clone()) }))
        // Inside the route: the timeout, then the matched route noted for the metrics.
        .route_layer(middleware::from_fn_with_state(timeout, time_limit))
        .route_layer(middleware::from_fn(metrics::route_label))
        // The metering proxy after the route layers: its streams are bounded by its own timeout.
        .merge(proxy::router(state.proxy.clone()))
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .layer(
            // Outermost first: request id, then the span that logs it, then metrics and problem bodies.
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            let id = req
                                .headers()
                                .get("x-request-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("");
                            // The path only: no query string, no headers (tokens live there).
                            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                        })
                        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
                .layer(middleware::from_fn(problem::finish))
                // Inside `finish`, so its refusal gets a problem body; before routing, so it covers every route.
                .layer(middleware::from_fn(input::refuse_nul_in_url)),
        )
        .with_state(state)
}

/// Gives the request its deadline (`AIQUOTA_REQUEST_TIMEOUT_S` from now, see [`deadline`]). Database work
/// answers by itself at that deadline, or after one more timeout of grace when a cancelled statement has not
/// answered yet; dropping a statement in flight would leave its outcome unknown, so the hard cut that
/// answers `503` here comes only after both and catches work that is not a database call.
async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let deadline = tokio::time::Instant::now() + limit;
    let backstop = deadline + limit.max(Duration::from_secs(1)) + Duration::from_secs(1);
    match tokio::time::timeout_at(backstop, deadline::scope(deadline, next.run(req))).await {
        Ok(res) => res,
        Err(_) => error::ApiError::Timeout.into_response(),
    }
}
