//! The quota side of a charged call: up to two holds taken before forwarding (one `ai_requests`, the
//! `ai_tokens` estimate; a route may charge only one of them), settled once when the call ends. Each reserve,
//! commit and release is one call of [`crate::store::reservations`] (one prepared statement each), so
//! SQLSTATEs map as everywhere else and a statement whose row arrived is never mistaken for one that failed:
//! a proxied call's outcome is as certain as a consume's.
//!
//! Commits pass `p_overage => true`: the upstream has already spent what it reports, so the whole amount is
//! charged even past the limit (the next call is then denied until the window resets), never cut to the hold.
//!
//! [`Holds`] is a guard: whichever way the call ends it is settled exactly once. The stream settles it
//! explicitly; if it is dropped unsettled (the client went away while the upstream was still thinking) its
//! `Drop` releases both holds in a spawned task. Should that fail too, the holds expire after their TTL.

use std::{sync::Arc, time::Duration};

use uuid::Uuid;

use crate::{
    config::proxy::routes::Meters,
    db::{Db, DbError, Retry},
    metrics::Metrics,
    store::{
        reservations::{self, Reserve},
        Decision,
    },
};

/// Meter charged once per call.
pub const REQUESTS: &str = "ai_requests";
/// Meter charged with the tokens the call used.
pub const TOKENS: &str = "ai_tokens";

/// The result of reserving for a call.
pub enum Reserved {
    /// Every hold is taken; the decision is the `ai_requests` one, else the `ai_tokens` one (for the
    /// rate-limit headers).
    Granted(Holds, Box<Decision>),
    /// One of the meters refused; nothing is held any more.
    Denied(Box<Decision>),
}

/// How a call's holds are settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Charge one request and this many tokens.
    Commit {
        /// Actual tokens (reported usage, else the estimate).
        tokens: i64,
    },
    /// Charge nothing: the call failed or produced no output.
    Release,
}

/// The open holds of one charged call.
pub struct Holds {
    db: Db,
    metrics: Arc<Metrics>,
    user: String,
    requests: Option<Uuid>,
    tokens: Option<Uuid>,
    settled: bool,
}

/// Holds one `ai_requests` and `estimate` `ai_tokens` (those of `meters`) for `ttl`. If the tokens are
/// refused, the request hold is released (awaited, so the next call sees it free) and the tokens decision is
/// the answer.
pub async fn reserve(
    db: &Db,
    metrics: &Arc<Metrics>,
    user: &str,
    meters: Meters,
    estimate: i64,
    ttl: Duration,
) -> Result<Reserved, DbError> {
    // From the first hold on, the guard owns it: an error or a dropped future releases it.
    let mut holds = Holds {
        db: db.clone(),
        metrics: metrics.clone(),
        user: user.to_string(),
        requests: None,
        tokens: None,
        settled: false,
    };
    let mut first = None;
    if meters.requests {
        let (id, decision) = reserve_one(db, user, REQUESTS, 1, ttl).await?;
        let Some(id) = id.filter(|_| decision.allowed) else {
            holds.settled = true;
            metrics.decision(false);
            return Ok(Reserved::Denied(Box::new(decision)));
        };
        holds.requests = Some(id);
        first = Some(decision);
    }
    if meters.tokens {
        match reserve_one(db, user, TOKENS, estimate.max(1), ttl).await {
            Ok((Some(t), d)) if d.allowed => {
                holds.tokens = Some(t);
                first = first.or(Some(d));
            }
            refused => {
                holds.release_now().await;
                let d = refused?.1;
                metrics.decision(false);
                return Ok(Reserved::Denied(Box::new(d)));
            }
        }
    }
    let Some(decision) = first else {
        holds.settled = true;
        return Err(DbError::Internal("a charged route holds no meter".into()));
    };
    metrics.decision(true);
    Ok(Reserved::Granted(holds, Box::new(decision)))
}

/// One hold of the call (no idempotency key: the proxy never repeats a reserve whose outcome is unknown).
async fn reserve_one(
    db: &Db,
    user: &str,
    meter: &str,
    amount: i64,
    ttl: Duration,
) -> Result<(Option<Uuid>, Decision), DbError> {
    let hold = Reserve {
        user,
        meter,
        amount,
        ttl_s: ttl.as_secs_f64(),
        key: None,
    };
    let r = reservations::reserve(db, Retry::IfNotApplied, hold).await?;
    Ok((r.reservation_id, r.decision))
}

impl Holds {
    /// Releases the holds and waits for it (so the caller's next call sees the budget free again).
    async fn release_now(mut self) {
        self.settled = true;
        settle(
            &self.db,
            &self.user,
            self.requests,
            self.tokens,
            Settle::Release,
        )
        .await;
    }

    /// Settles the holds in the background (the response has been handed over by now) and counts the
    /// outcome under `outcome`.
    pub fn finish(mut self, how: Settle, outcome: &'static str) {
        self.settled = true;
        self.metrics.proxy.count("charged", outcome);
        spawn_settle(
            self.db.clone(),
            self.user.clone(),
            self.requests,
            self.tokens,
            how,
        );
    }
}

impl Drop for Holds {
    fn drop(&mut self) {
        if !self.settled {
            self.metrics.proxy.count("charged", "released");
            spawn_settle(
                self.db.clone(),
                self.user.clone(),
                self.requests,
                self.tokens,
                Settle::Release,
            );
        }
    }
}

fn spawn_settle(db: Db, user: String, requests: Option<Uuid>, tokens: Option<Uuid>, how: Settle) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(async move { settle(&db, &user, requests, tokens, how).await });
        }
        Err(_) => {
            tracing::warn!(
                ?requests,
                "no runtime to settle the proxy holds; they expire with their TTL"
            )
        }
    }
}

/// Commits (with overage) or releases the holds, one statement each. A failure is logged; the hold then
/// expires.
async fn settle(db: &Db, user: &str, requests: Option<Uuid>, tokens: Option<Uuid>, how: Settle) {
    let steps = match how {
        Settle::Commit { tokens: n } => [(requests, Some(1)), (tokens, Some(n.max(0)))],
        Settle::Release => [(requests, None), (tokens, None)],
    };
    for (id, actual) in steps {
        let Some(id) = id else { continue };
        let result = match actual {
            Some(n) => reservations::commit(db, id, n, user, true).await,
            None => reservations::release(db, id, user).await,
        };
        if let Err(e) = result {
            tracing::warn!(reservation = %id, error = %e, "could not settle a proxy hold; it expires with its TTL");
        }
    }
}
