//! The request deadline, carried in a task-local so every database call of a request can see what is left
//! of it without each handler passing it down: the pool wait, the per-user queue and the statement all
//! share one budget, `AIQUOTA_REQUEST_TIMEOUT_S` from the moment the request arrived.

use std::future::Future;

use tokio::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `fut` with `deadline` as the request deadline.
pub async fn scope<F: Future>(deadline: Instant, fut: F) -> F::Output {
    DEADLINE.scope(deadline, fut).await
}

/// The current request's deadline, or `fallback` from now outside a request (background tasks).
pub fn current(fallback: Duration) -> Instant {
    DEADLINE
        .try_with(|d| *d)
        .unwrap_or_else(|_| Instant::now() + fallback)
}
