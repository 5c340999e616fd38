//! A charged call runs in its own task, so that what the upstream spends is charged whatever the client does:
//! the task sends the request, hands the response head to the handler, relays the body chunk by chunk as it
//! arrives (nothing is buffered; a slow client slows the task through a small channel), and keeps reading
//! the upstream to its end when the client has gone, even before the head. Then it settles the holds once:
//!
//! | how the upstream ended | status | output | settle |
//! |---|---|---|---|
//! | the body ended | 2xx | yes | commit 1 request and the reported usage, else the prompt estimate plus the output's bytes / 3 |
//! | the body broke off (upstream error, timeout) | 2xx | yes | the same, with the usage seen so far |
//! | any | 2xx | no | release: a call that produced nothing is not charged |
//! | any | not 2xx | any | release: a failed AI call is not charged |
//! | no answer (unreachable, timeout) | — | — | release |
//!
//! The client leaving changes nothing in this table: the upstream finishes and bills, so the user pays.

use axum::{body::Bytes, http::HeaderMap, http::StatusCode};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::{
    classify::prompt_estimate,
    forward,
    meter::{Holds, Settle},
    usage::UsageScanner,
};

/// Chunks in flight between the task and a slow client.
const CHANNEL: usize = 16;

/// The upstream's answer as the handler gets it.
pub struct Head {
    /// The upstream status.
    pub status: StatusCode,
    /// The headers to send back ([`forward::response_headers`]).
    pub headers: HeaderMap,
    /// The body, chunk by chunk; an `Err` when the upstream broke off.
    pub body: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

/// Starts the call; the receiver yields its head, or the error when the upstream gave none.
pub fn spawn(
    request: reqwest::RequestBuilder,
    holds: Holds,
    prompt: i64,
) -> oneshot::Receiver<Result<Head, reqwest::Error>> {
    let (head_tx, head_rx) = oneshot::channel();
    tokio::spawn(run(request, holds, prompt, head_tx));
    head_rx
}

async fn run(
    request: reqwest::RequestBuilder,
    holds: Holds,
    prompt: i64,
    head_tx: oneshot::Sender<Result<Head, reqwest::Error>>,
) {
    let res = match request.send().await {
        Ok(res) => res,
        Err(e) => {
            holds.finish(Settle::Release, "unreachable");
            let _ = head_tx.send(Err(e));
            return;
        }
    };
    let status = res.status();
    let headers = forward::response_headers(res.headers());
    let mut scanner = UsageScanner::new(
        headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let (tx, rx) = mpsc::channel(CHANNEL);
    let mut client = head_tx
        .send(Ok(Head {
            status,
            headers,
            body: rx,
        }))
        .is_ok()
        .then_some(tx);
    let mut output = false;
    let mut body = res.bytes_stream();
    let complete = loop {
        match body.next().await {
            Some(Ok(chunk)) => {
                if chunk.is_empty() {
                    continue;
                }
                output = true;
                scanner.feed(&chunk);
                if let Some(tx) = &client {
                    if tx.send(Ok(chunk)).await.is_err() {
                        client = None;
                    }
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e.without_url(), "upstream body broke off");
                if let Some(tx) = &client {
                    let _ = tx
                        .send(Err(std::io::Error::other("upstream body broke off")))
                        .await;
                }
                break false;
            }
            None => break true,
        }
    };
    if !status.is_success() {
        return holds.finish(Settle::Release, "upstream_error");
    }
    if !output {
        return holds.finish(Settle::Release, "released");
    }
    let tokens = scanner.usage(complete).unwrap_or_else(|| {
        prompt.saturating_add(prompt_estimate(
            usize::try_from(scanner.output_bytes()).unwrap_or(usize::MAX),
        ))
    });
    let outcome = if complete && client.is_some() {
        "committed"
    } else {
        "committed_partial"
    };
    holds.finish(Settle::Commit { tokens }, outcome);
}
