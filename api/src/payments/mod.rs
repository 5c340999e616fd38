//! Payments: Razorpay Payment Links (create, verify the browser callback, webhooks) and Stripe Checkout
//! webhooks. This module only proves that a payment happened (signatures, and for Razorpay a fetch of the
//! link from its API); applying it is one call of `quota.record_payment`, which records each provider's
//! payment id once and assigns the plan in the same transaction. So the callback and any number of webhook
//! deliveries, in any order and at the same time, upgrade the user once. See docs/payments.md.
//!
//! The user and product always come from something we created and stored (the order, for Razorpay) or from a
//! payload the provider signed (Stripe's Checkout Session metadata, set by the server that created it), never
//! from the caller's request.

pub mod error;
pub mod razorpay;
pub mod razorpay_routes;
pub mod signature;
pub mod stripe;

use std::{
    collections::{HashSet, VecDeque},
    sync::Mutex,
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
};
use serde::Serialize;
use utoipa::ToSchema;

pub use crate::payments::error::PaymentError;
pub use crate::store::payments::{Order, Payment, Recorded, Revocation};
use crate::{
    db::{Db, DbError},
    error::ApiError,
    metrics::Metrics,
    store,
};

/// Records a payment ([`store::payments::record`]) and counts the outcome. Retrying is safe: a repeat is
/// a `duplicate`. A second payment of an order already paid is refused by the extension (55000,
/// [`DbError::Conflict`]): the callback answers it 409, the webhooks acknowledge it without applying.
pub async fn record(db: &Db, metrics: &Metrics, p: Payment<'_>) -> Result<Recorded, ApiError> {
    let rec = store::payments::record(db, &p).await?;
    metrics.payment(p.provider, &rec.outcome);
    tracing::info!(provider = p.provider, payment_id = p.payment_id, user = p.user, product = p.product,
        outcome = %rec.outcome, status = %rec.status, "payment recorded");
    Ok(rec)
}

/// `quota.find_order`; `None` when no order matches (P0002).
pub async fn find_order(
    db: &Db,
    provider: &str,
    reference_id: Option<&str>,
    provider_ref: Option<&str>,
) -> Result<Option<Order>, DbError> {
    match store::payments::find_order(db, provider, reference_id, provider_ref).await {
        Ok(o) => Ok(Some(o)),
        Err(DbError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Takes a pass back ([`store::payments::revoke`]): ends or shortens the pass the payment bought. It is
/// idempotent, so retrying and redeliveries are safe. A payment this API never recorded (P0002) is not
/// ours to revoke: acknowledged as `ignored`, nothing changes.
pub async fn revoke(
    db: &Db,
    metrics: &Metrics,
    provider: &'static str,
    payment_id: &str,
    why: Revocation,
    actor: &str,
) -> Result<WebhookAck, ApiError> {
    let reason = why.reason();
    match store::payments::revoke(db, provider, payment_id, why, actor).await {
        Ok(()) => {
            metrics.payment(provider, "revoked");
            tracing::info!(provider, payment_id, reason, "payment revoked");
            Ok(WebhookAck {
                result: "revoked".into(),
                reason: Some(reason.into()),
            })
        }
        Err(DbError::NotFound(_)) => Ok(WebhookAck::ignored("no recorded payment with this id")),
        Err(e) => Err(e.into()),
    }
}

/// The answer to a recorded payment, or an acknowledgement without effect when the extension refused it
/// because its order is already paid (55000): a webhook must not be retried for that.
pub fn ack_recorded(res: Result<Recorded, ApiError>) -> Result<WebhookAck, ApiError> {
    match res {
        Ok(rec) => Ok(WebhookAck::recorded(&rec)),
        Err(ApiError::Db(DbError::Conflict(m))) => {
            tracing::warn!(reason = %m, "payment of an order already paid: not applied");
            Ok(WebhookAck::ignored("order already paid"))
        }
        Err(e) => Err(e),
    }
}

/// What the payment routes share: the HTTP client for provider APIs and the recent webhook event ids.
pub struct Payments {
    /// Client for the Razorpay API (rustls), with a timeout below the request timeout.
    pub http: reqwest::Client,
    /// Event ids already handled, per provider.
    pub seen: SeenEvents,
}

impl Payments {
    /// A client whose requests end well within `request_timeout`; fails when no TLS backend can be set up.
    pub fn new(request_timeout: Duration) -> Result<Self, String> {
        let limit = (request_timeout * 7 / 10).max(Duration::from_secs(1));
        let http = reqwest::Client::builder()
            .timeout(limit)
            .connect_timeout(limit.min(Duration::from_secs(3)))
            .user_agent(concat!("aiquota-api/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the payments HTTP client: {e}"))?;
        Ok(Self {
            http,
            seen: SeenEvents::new(10_000),
        })
    }
}

/// A bounded set of recently handled webhook event ids: the cheap first line against redeliveries. It is
/// per process and forgets the oldest ids; the real guarantee is the payment id in `quota.payments`. An id
/// is remembered only after its event was handled, so a delivery that failed is processed again on retry.
pub struct SeenEvents {
    inner: Mutex<(HashSet<String>, VecDeque<String>)>,
    capacity: usize,
}

impl SeenEvents {
    /// Remembers at most `capacity` ids.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new((HashSet::new(), VecDeque::new())),
            capacity,
        }
    }

    /// Whether `id` of `provider` was handled.
    pub fn contains(&self, provider: &str, id: &str) -> bool {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0.contains(&format!("{provider}:{id}"))
    }

    /// Notes that `id` of `provider` was handled.
    pub fn insert(&self, provider: &str, id: &str) {
        let key = format!("{provider}:{id}");
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.0.insert(key.clone()) {
            g.1.push_back(key);
            while g.1.len() > self.capacity {
                if let Some(old) = g.1.pop_front() {
                    g.0.remove(&old);
                }
            }
        }
    }
}

/// The raw request body as bytes (signatures cover the exact bytes, so JSON is parsed only afterwards);
/// a body over the limit is a problem+json 413 like everywhere else.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|r| {
                let status = r.status();
                ApiError::BadRequest(r.body_text(), status)
            })
    }
}

/// The answer to a webhook delivery: always 2xx once the signature verified and the event was handled or
/// deliberately ignored, so the provider stops retrying.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    /// `applied`, `duplicate`, `mismatch` (a payment was recorded or found), `revoked` (a refund or lost
    /// dispute ended or shortened the pass), `duplicate_event` (this event id was handled before) or
    /// `ignored` (an event or payment this API does not act on, or a payment of an order already paid).
    pub result: String,
    /// Why it was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl WebhookAck {
    fn recorded(r: &Recorded) -> Self {
        Self {
            result: r.outcome.clone(),
            reason: None,
        }
    }
    fn ignored(reason: impl Into<String>) -> Self {
        Self {
            result: "ignored".into(),
            reason: Some(reason.into()),
        }
    }
    fn duplicate_event() -> Self {
        Self {
            result: "duplicate_event".into(),
            reason: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_events_are_bounded() {
        let s = SeenEvents::new(2);
        s.insert("razorpay", "a");
        s.insert("razorpay", "b");
        assert!(s.contains("razorpay", "a") && !s.contains("stripe", "a"));
        s.insert("razorpay", "c");
        assert!(!s.contains("razorpay", "a"));
        assert!(s.contains("razorpay", "b") && s.contains("razorpay", "c"));
    }
}
