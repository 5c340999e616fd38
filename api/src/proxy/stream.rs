//! The upstream body on its way to the client, chunk by chunk as it arrives (nothing is buffered), watched
//! for a usage report, and settling the call's holds exactly once when it ends:
//!
//! | how it ends | upstream status | output sent | settle |
//! |---|---|---|---|
//! | the body ended | 2xx | yes | commit 1 request and the reported usage, else the estimate |
//! | the body broke (upstream error, timeout) or the client went away (stream dropped) | 2xx | yes | same, with the usage seen so far |
//! | any | 2xx | no | release: the user is not charged for a call that produced nothing |
//! | any | not 2xx | any | release: a failed AI call is not charged |

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use axum::body::Bytes;
use futures_util::{stream::BoxStream, Stream};

use super::{
    meter::{Holds, Settle},
    usage::UsageScanner,
};

/// A charged call's response body.
pub struct Metered {
    inner: BoxStream<'static, reqwest::Result<Bytes>>,
    holds: Option<Holds>,
    scanner: UsageScanner,
    upstream_ok: bool,
    output: bool,
    estimate: i64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Complete,
    Broken,
    Dropped,
}

impl Metered {
    /// Wraps the body of an upstream response whose status was `upstream_ok` (2xx) and whose content type
    /// was `content_type`.
    pub fn new(
        inner: BoxStream<'static, reqwest::Result<Bytes>>,
        holds: Holds,
        content_type: Option<&str>,
        upstream_ok: bool,
        estimate: i64,
    ) -> Self {
        Self {
            inner,
            holds: Some(holds),
            scanner: UsageScanner::new(content_type),
            upstream_ok,
            output: false,
            estimate,
        }
    }

    fn end(&mut self, how: End) {
        let Some(holds) = self.holds.take() else {
            return;
        };
        if !self.upstream_ok {
            return holds.finish(Settle::Release, "upstream_error");
        }
        if !self.output {
            return holds.finish(Settle::Release, "released");
        }
        let tokens = self
            .scanner
            .usage(how == End::Complete)
            .unwrap_or(self.estimate);
        let outcome = match how {
            End::Complete => "committed",
            End::Broken | End::Dropped => "committed_partial",
        };
        holds.finish(Settle::Commit { tokens }, outcome);
    }
}

impl Stream for Metered {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if !chunk.is_empty() {
                    this.output = true;
                    this.scanner.feed(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::warn!(error = %e.without_url(), "upstream body broke off");
                this.end(End::Broken);
                Poll::Ready(Some(Err(std::io::Error::other("upstream body broke off"))))
            }
            Poll::Ready(None) => {
                this.end(End::Complete);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.end(End::Dropped);
    }
}
