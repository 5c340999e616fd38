//! The accept loop: HTTP/1 with hyper directly (rather than `axum::serve`) because two abuse limits live
//! here and `axum::serve` offers neither. A connection is accepted only with one of
//! `AIQUOTA_MAX_CONNECTIONS` permits, so a flood of idle sockets waits in the kernel's backlog instead of
//! holding file descriptors and tasks; and a client must send a whole request head within
//! `AIQUOTA_HEADER_READ_TIMEOUT_S` (hyper's header-read timeout, which needs a timer that `axum::serve`
//! does not give it), so a trickled head (slowloris) is cut off.
//!
//! Graceful shutdown: once `shutdown` is cancelled no connection is accepted, every connection finishes its
//! request in flight and closes, and [`run`] returns when all of them have (every permit is back).

use std::{sync::Arc, time::Duration};

use axum::{extract::Request, Router};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The limits of the connection layer.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time to receive a whole request head.
    pub header_read_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` is cancelled and every connection has closed.
pub async fn run(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
    loop {
        // A permit first: at the cap, new connections wait in the backlog, unaccepted.
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (socket, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = socket.set_nodelay(true);
        let service = TowerToHyperService::new(
            router
                .clone()
                .map_request(|req: Request<Incoming>| req.map(axum::body::Body::new)),
        );
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(socket), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = shutdown.cancelled() => {}
            }
            conn.as_mut().graceful_shutdown();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // Every permit back: every connection has closed.
    let _all = permits.acquire_many(max as u32).await;
    Ok(())
}
