//! Payments: Razorpay Payment Links (create, verify the browser callback, webhooks) and Stripe Checkout
//! webhooks. This module only proves that a payment happened (signatures, and for Razorpay a fetch of the
//! link from its API); applying it is one call of `quota.record_payment`, which records each provider's
//! payment id once and assigns the plan in the same transaction. So the callback and any number of webhook
//! deliveries, in any order and at the same time, upgrade the user once. See docs/payments.md.
//!
//! The user and product always come from something we created and stored (the order, for Razorpay) or from a
//! payload the provider signed (Stripe's Checkout Session metadata, set by the server that created it), never
//! from the caller's request.

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
    http::StatusCode,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    db::{role_tx, role_tx_one, Db, DbError, Retry, TxRole},
    problem::ApiError,
    AppState,
};

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    razorpay_routes::router().merge(stripe::router())
}

/// Why a payment request failed; [`crate::problem`] picks the status (named on each variant).
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// 503: the secrets this route needs are not configured; the value names the variables.
    #[error("payments not configured: {0}")]
    NotConfigured(&'static str),
    /// 502: the provider's API failed or answered something unusable. The cause is logged, never sent.
    #[error("payment provider failed: {0}")]
    Upstream(String),
    /// 400: a signature is missing, malformed, stale or does not verify. The reason is safe to show.
    #[error("invalid signature: {0}")]
    InvalidSignature(&'static str),
    /// 409: the signature is fine but the payment is not complete (partially paid, not captured, ...).
    #[error("payment not complete: {0}")]
    NotPaid(String),
    /// 409: verified and recorded, but amount or currency differ from the product: no upgrade.
    #[error("payment does not match the product")]
    Mismatch(Box<Recorded>),
    /// 404: no such order for the caller (another user's order looks the same, so ids cannot be probed).
    #[error("no such order")]
    UnknownOrder,
}

/// What `quota.record_payment` answered.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Recorded {
    /// `applied` (plan assigned now), `duplicate` (this payment was recorded before; nothing changed) or
    /// `mismatch` (recorded now, amount or currency differ from the product, plan unchanged).
    pub outcome: String,
    /// The payment's recorded status: `applied` or `mismatch` (also on a duplicate).
    pub status: String,
    /// The payment's provider (`razorpay`, `stripe`).
    pub provider: String,
    /// The provider's payment id.
    pub payment_id: String,
    /// The plan the payment assigned; null for a mismatch.
    pub plan: Option<String>,
    /// When that plan ends; null for a permanent plan or a mismatch.
    pub plan_expires_at: Option<DateTime<Utc>>,
}

/// One payment to record; `user` and `product` come from the order or the provider's signed payload.
pub struct Payment<'a> {
    /// `razorpay` or `stripe`.
    pub provider: &'static str,
    /// The provider's payment id: the dedupe key.
    pub payment_id: &'a str,
    /// Who paid.
    pub user: &'a str,
    /// What was bought (`quota.products.key`).
    pub product: &'a str,
    /// Amount paid, smallest currency unit.
    pub amount: i64,
    /// ISO 4217, upper case.
    pub currency: &'a str,
    /// The verified provider data, stored on the payment row.
    pub raw: serde_json::Value,
    /// Our order reference, when there is one.
    pub order: Option<&'a str>,
}

/// Calls `quota.record_payment` (as `quota_payments`) and counts the outcome. Retrying is safe: a repeat is
/// a `duplicate`. A second payment of an order already paid is refused by the extension (55000,
/// [`DbError::Conflict`]): the callback answers it 409, the webhooks acknowledge it without applying.
pub async fn record(state: &AppState, p: Payment<'_>) -> Result<Recorded, ApiError> {
    let p = &p;
    let row = state
        .db
        .run(Retry::Safe, |c| async move {
            role_tx_one(
                c,
                TxRole::Payments,
                "SELECT * FROM quota.record_payment($1::text, $2::text, $3::text, $4::text, $5::bigint, \
                 $6::text, $7::jsonb, $8::text)",
                &[
                    &p.provider,
                    &p.payment_id,
                    &p.user,
                    &p.product,
                    &p.amount,
                    &p.currency,
                    &p.raw,
                    &p.order,
                ],
            )
            .await
        })
        .await?;
    let rec = Recorded {
        outcome: row.try_get("outcome").map_err(DbError::from)?,
        status: row.try_get("status").map_err(DbError::from)?,
        provider: p.provider.to_string(),
        payment_id: p.payment_id.to_string(),
        plan: row.try_get("plan").map_err(DbError::from)?,
        plan_expires_at: row.try_get("plan_expires_at").map_err(DbError::from)?,
    };
    state.metrics.payment(p.provider, &rec.outcome);
    tracing::info!(provider = p.provider, payment_id = p.payment_id, user = p.user, product = p.product,
        outcome = %rec.outcome, status = %rec.status, "payment recorded");
    Ok(rec)
}

/// A row of `quota.orders`.
#[derive(Clone, Debug)]
pub struct Order {
    /// Our reference (`aq_` + 32 hex), sent to the provider.
    pub reference_id: String,
    /// Who ordered.
    pub user_id: String,
    /// What.
    pub product: String,
    /// Price, smallest currency unit.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
    /// The provider's id for it (a payment link id).
    pub provider_ref: Option<String>,
}

impl Order {
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            reference_id: r.try_get("reference_id")?,
            user_id: r.try_get("user_id")?,
            product: r.try_get("product")?,
            amount: r.try_get("amount")?,
            currency: r.try_get("currency")?,
            provider_ref: r.try_get("provider_ref")?,
        })
    }
}

/// `quota.find_order`; `None` when no order matches (P0002).
pub async fn find_order(
    db: &Db,
    provider: &str,
    reference_id: Option<&str>,
    provider_ref: Option<&str>,
) -> Result<Option<Order>, DbError> {
    let res = db
        .run(Retry::Safe, |c| async move {
            let row = role_tx_one(
                c,
                TxRole::Payments,
                "SELECT * FROM quota.find_order($1::text, $2::text, $3::text)",
                &[&provider, &reference_id, &provider_ref],
            )
            .await?;
            Order::from_row(&row)
        })
        .await;
    match res {
        Ok(o) => Ok(Some(o)),
        Err(DbError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Why a pass is being taken back.
#[derive(Clone, Copy, Debug)]
pub enum Revocation {
    /// The payment was refunded in full.
    Refund,
    /// The customer's dispute (chargeback) was lost.
    DisputeLost,
}

impl Revocation {
    fn reason(self) -> &'static str {
        match self {
            Revocation::Refund => "refund",
            Revocation::DisputeLost => "dispute_lost",
        }
    }
}

/// Calls `quota.revoke_payment` (as `quota_payments`): ends or shortens the pass the payment bought. It is
/// idempotent, so retrying and redeliveries are safe. A payment this API never recorded (P0002) is not
/// ours to revoke: acknowledged as `ignored`, nothing changes.
pub async fn revoke(
    state: &AppState,
    provider: &'static str,
    payment_id: &str,
    why: Revocation,
    actor: &str,
) -> Result<WebhookAck, ApiError> {
    let reason = why.reason();
    let res = state
        .db
        .run(Retry::Safe, |c| async move {
            role_tx(
                c,
                TxRole::Payments,
                "SELECT FROM quota.revoke_payment($1::text, $2::text, $3::text, $4::text)",
                &[&provider, &payment_id, &reason, &actor],
            )
            .await
        })
        .await;
    match res {
        Ok(_) => {
            state.metrics.payment(provider, "revoked");
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

/// Status of a [`PaymentError`], for [`crate::problem`].
pub(crate) fn status_of(e: &PaymentError) -> StatusCode {
    match e {
        PaymentError::NotConfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
        PaymentError::Upstream(_) => StatusCode::BAD_GATEWAY,
        PaymentError::InvalidSignature(_) => StatusCode::BAD_REQUEST,
        PaymentError::NotPaid(_) | PaymentError::Mismatch(_) => StatusCode::CONFLICT,
        PaymentError::UnknownOrder => StatusCode::NOT_FOUND,
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
