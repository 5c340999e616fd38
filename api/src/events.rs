//! Live quota updates: ONE `LISTEN quota_events` connection for the whole process fans out to every SSE
//! subscriber through a broadcast channel; each subscriber keeps only its own user's events and re-reads
//! `quota.status` on each, so the stream carries exactly what `GET /v1/quota` would return. A stream holds
//! one of its user's `AIQUOTA_SSE_PER_USER` slots and ends when the caller's token expires.
//!
//! The listener reconnects with backoff when its connection drops; after every (re)connect it broadcasts a
//! resync that makes every subscriber re-read, because notifications sent while it was away are lost. The
//! backoff starts again from its shortest after every connection that got as far as `LISTEN`, so a run of
//! losses never slows the next recovery down, and a ping finds a connection that died without a word. A
//! stream whose re-read fails (the database is still coming back) tries again every second until it works.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::State,
    http::{header, HeaderMap},
    response::sse::{Event as SseEvent, KeepAlive, Sse},
};
use chrono::{DateTime, Utc};
use futures_util::{stream::Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{auth::User, config::Secret, error::ApiError, problem::ProblemDoc, store, AppState};

/// The channel the extension notifies on.
const CHANNEL: &str = "quota_events";

/// A notification from the extension: `{"user": ..., "kind": ...}`. `user` is `None` for the resync
/// the listener sends after connecting. Nothing else of a payload is read (older extensions send usage,
/// plan and amounts too; newer ones only these two, so that no role listening on the channel learns them):
/// a stream re-reads the user's quota on every notification, so both give clients the same events.
#[derive(Clone, Debug, Deserialize)]
pub struct Event {
    /// Whose quota changed; `None`: possibly everybody's.
    pub user: Option<String>,
    /// plan_changed, threshold_crossed, exhausted, reset, ...
    pub kind: String,
}

/// The fan-out point: subscribe to receive every event of the process.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Event>,
}

impl Hub {
    /// Starts the listener task; it stops when `shutdown` is cancelled.
    pub fn start(
        database_url: Secret,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, _) = broadcast::channel(1024);
        let task = tokio::spawn(listen_forever(database_url, tx.clone(), shutdown));
        (Self { tx }, task)
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

/// Shortest wait before reconnecting the listener, doubled after each failed attempt up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the idle LISTEN connection is checked, and how long the check may take.
const PING_EVERY: Duration = Duration::from_secs(5);

async fn listen_forever(url: Secret, tx: broadcast::Sender<Event>, shutdown: CancellationToken) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let mut listening = false;
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listen_once(&url, &tx, &mut listening) => r,
        };
        if listening {
            backoff = MIN_BACKOFF;
        }
        match outcome {
            Ok(()) => tracing::warn!("LISTEN connection closed; reconnecting"),
            Err(why) => {
                tracing::warn!(%why, retry_in_ms = backoff.as_millis() as u64, "LISTEN connection failed")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life: connect, LISTEN, forward notifications until the connection ends or stops
/// answering pings. `listening` is set once LISTEN has succeeded.
async fn listen_once(
    url: &Secret,
    tx: &broadcast::Sender<Event>,
    listening: &mut bool,
) -> Result<(), String> {
    // The same TLS (sslmode, sslrootcert) as the pool: a database that requires TLS gets it here too.
    let (client, mut messages) = crate::tls::connect(url.expose()).await?;
    let (ntx, mut nrx) = mpsc::unbounded_channel::<String>();
    // The connection's messages must be polled for notifications to arrive; they end when the socket does.
    let driver = tokio::spawn(async move {
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    if ntx.send(n.payload().to_string()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| e.to_string())?;
    *listening = true;
    tracing::info!("listening on {CHANNEL}");
    let _ = tx.send(Event {
        user: None,
        kind: "resync".into(),
    });
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            payload = nrx.recv() => match payload {
                Some(payload) => match serde_json::from_str::<Event>(&payload) {
                    Ok(e) if e.user.is_some() => {
                        // No receivers is not an error: nobody is subscribed right now.
                        let _ = tx.send(e);
                    }
                    _ => tracing::warn!("ignoring a {CHANNEL} payload without a user"),
                },
                None => break,
            },
            _ = ping.tick() => {
                let alive = tokio::time::timeout(PING_EVERY, client.simple_query("SELECT 1")).await;
                if !matches!(alive, Ok(Ok(_))) {
                    driver.abort();
                    return Err("the LISTEN connection stopped answering".into());
                }
            }
        }
    }
    drop(client);
    driver.await.map_err(|e| e.to_string())?
}

/// How soon a stream whose read failed reads again.
const REREAD_AFTER: Duration = Duration::from_secs(1);

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// How long a client over the stream cap is told to wait.
const STREAM_CAP_RETRY: Duration = Duration::from_secs(5);

/// The `exp` claim of the request's bearer token. The token was verified by the [`User`] extractor
/// already, so its claims are read here without checking the signature again.
fn token_expiry(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    #[derive(Deserialize)]
    struct Exp {
        exp: i64,
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (_, token) = value.split_once(' ')?;
    let data = jsonwebtoken::dangerous::insecure_decode::<Exp>(token.trim()).ok()?;
    DateTime::from_timestamp(data.claims.exp, 0)
}

/// Server-Sent Events: the caller's quota (the body of `GET /v1/quota`) at connect and after every change,
/// as `event: quota`; keep-alive comments every 15 s. The stream ends when the token expires (reconnect
/// with a fresh one), and a user may hold at most `AIQUOTA_SSE_PER_USER` streams at once.
#[utoipa::path(get, path = "/v1/quota/events", tag = "quota", security(("bearer" = [])),
    responses(
        (status = 200, description = "text/event-stream of `event: quota` with a Quota as data; ends when the token expires", content_type = "text/event-stream"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 429, body = ProblemDoc, content_type = "application/problem+json", description = "The caller already holds AIQUOTA_SSE_PER_USER streams (Retry-After)"),
    ))]
async fn events(
    State(s): State<AppState>,
    user: User,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let slot = s
        .limits
        .streams
        .open(&user.id)
        .ok_or(ApiError::RateLimited(
            "open event streams",
            STREAM_CAP_RETRY,
        ))?;
    // Without an expiry (none is a token this API accepts) the stream lasts until the client or shutdown.
    let ends = token_expiry(&headers).map(|exp| {
        let left = (exp - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::time::Instant::now() + left
    });
    // Subscribe before the first read so nothing that happens in between is missed.
    let mut rx = s.events.subscribe();
    let shutdown = s.shutdown.clone();
    let stream = async_stream::stream! {
        // Held for as long as the stream lives: dropping the stream frees the user's slot.
        let _slot = slot;
        let mut last: Option<String> = None;
        let mut refresh = true;
        loop {
            // After a failed read, try again soon: the resync that asked for it will not come again.
            let mut again = None;
            if refresh {
                match store::quota::status(&s.db, &user.id).await {
                    Ok(q) => {
                        let json = serde_json::to_string(&q).unwrap_or_default();
                        if last.as_deref() != Some(json.as_str()) {
                            yield Ok(SseEvent::default().event("quota").data(json.clone()));
                            last = Some(json);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "SSE: could not read the quota; trying again");
                        again = Some(REREAD_AFTER);
                    }
                }
            }
            let retrying = again.is_some();
            refresh = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = sleep_until_opt(ends) => {
                    tracing::info!("SSE: the token expired; ending the stream");
                    break;
                }
                _ = tokio::time::sleep(again.unwrap_or(Duration::MAX)), if retrying => true,
                r = rx.recv() => match r {
                    Ok(e) => retrying || e.user.as_deref().is_none_or(|u| u == user.id),
                    // Missed some events: re-read to be safe.
                    Err(broadcast::error::RecvError::Lagged(_)) => true,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            };
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Sleeps until `at`, or for ever when there is no `at`.
async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
