//! The Razorpay routes: `POST /v1/payments/razorpay/links`, `POST /v1/payments/razorpay/verify` (the browser
//! callback, forwarded by the frontend) and `POST /v1/webhooks/razorpay`.
//!
//! An order is found by our reference id (which we generated and Razorpay signed), and must belong to the
//! payment link the provider reports; an order whose link id was never stored (the link was created but the
//! attach failed) is attached here, so such a payment is not lost.

use axum::{extract::State, http::HeaderMap, http::StatusCode, response::IntoResponse, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ack_recorded, find_order,
    razorpay::{
        callback_signature_ok, create_payment_link, fetch_payment_link, keys, webhook_signature_ok,
        Callback, Link,
    },
    record, revoke, Order, Payment, PaymentError, RawBody, Revocation, WebhookAck,
};
use crate::{
    auth::User, db::DbError, error::ApiError, extract::JsonBody, problem::ProblemDoc, store,
    AppState,
};

const PROVIDER: &str = "razorpay";

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_link))
        .routes(routes!(verify))
        .routes(routes!(webhook))
}

/// The order with our `reference` that belongs to payment link `plink`: attached to it, or to no link yet
/// (the attach after creating the link failed; the caller attaches it once the payment is proven).
async fn order_for_link(
    s: &AppState,
    reference: &str,
    plink: &str,
) -> Result<Option<Order>, DbError> {
    Ok(find_order(&s.db, PROVIDER, Some(reference), None)
        .await?
        .filter(|o| o.provider_ref.as_deref().is_none_or(|p| p == plink)))
}

// ---------------------------------------------------------------------------------------------------------
// POST /v1/payments/razorpay/links

/// Body of `POST /v1/payments/razorpay/links`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Product key (`pro_week`, `pro_month`, ...).
    pub product: String,
}

/// A payment link for the caller; send the browser to `short_url`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkCreated {
    /// Razorpay's hosted payment page.
    pub short_url: String,
    /// `plink_...`.
    pub payment_link_id: String,
    /// Our order reference (`aq_...`), also the link's `reference_id`.
    pub reference_id: String,
    /// Price, smallest currency unit.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
}

/// Starts an order of `product` for the caller and creates a Razorpay Payment Link for it.
#[utoipa::path(post, path = "/v1/payments/razorpay/links", tag = "payments", security(("bearer" = [])),
    request_body = LinkRequest,
    responses(
        (status = 201, body = LinkCreated),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json", description = "Unknown product or not for sale"),
        (status = 409, body = ProblemDoc, content_type = "application/problem+json", description = "The pass would demote the caller's permanent plan"),
        (status = 429, body = ProblemDoc, content_type = "application/problem+json", description = "More payment links than AIQUOTA_PAYMENT_LINK_RATE allows (Retry-After)"),
        (status = 502, body = ProblemDoc, content_type = "application/problem+json", description = "Razorpay failed"),
        (status = 503, body = ProblemDoc, content_type = "application/problem+json", description = "Razorpay keys or AIQUOTA_PUBLIC_URL not configured"),
    ))]
async fn create_link(
    State(s): State<AppState>,
    user: User,
    JsonBody(body): JsonBody<LinkRequest>,
) -> Result<impl IntoResponse, ApiError> {
    keys(&s.config.payments)?;
    if s.config.payments.public_url.is_none() {
        return Err(PaymentError::NotConfigured("AIQUOTA_PUBLIC_URL").into());
    }
    if body.product.is_empty() {
        return Err(ApiError::BadRequest(
            "product is required".into(),
            StatusCode::BAD_REQUEST,
        ));
    }
    s.limits
        .payment_links
        .take(&user.id)
        .map_err(|l| ApiError::RateLimited("payment links", l.0))?;
    // Not retried after a lost connection: a second order would be harmless but pointless.
    let order = store::payments::create_order(&s.db, PROVIDER, &user.id, &body.product).await?;
    let link = create_payment_link(&s.config.payments, &s.payments.http, &order).await?;
    store::payments::attach_order(&s.db, &order.reference_id, &link.id).await?;
    tracing::info!(user = %user.id, product = %order.product, reference_id = %order.reference_id,
        payment_link_id = %link.id, "payment link created");
    Ok((
        StatusCode::CREATED,
        Json(LinkCreated {
            short_url: link.short_url.unwrap_or_default(),
            payment_link_id: link.id,
            reference_id: order.reference_id,
            amount: order.amount,
            currency: order.currency,
        }),
    ))
}

// ---------------------------------------------------------------------------------------------------------
// POST /v1/payments/razorpay/verify

/// The result of a verified payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verified {
    /// `applied` (upgraded now) or `duplicate` (this payment was applied before, e.g. by the webhook).
    pub outcome: String,
    /// The plan the payment assigned.
    pub plan: Option<String>,
    /// When it ends; null: never.
    pub plan_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `pay_...`.
    pub payment_id: String,
    /// Our order reference.
    pub reference_id: String,
}

/// Verifies the Payment Link callback and applies the payment to the caller's order.
///
/// Checks the signature (key secret, constant time), requires status `paid`, fetches the link from Razorpay
/// to confirm it is paid and belongs to the order, then records the payment (once per payment id).
#[utoipa::path(post, path = "/v1/payments/razorpay/verify", tag = "payments", security(("bearer" = [])),
    request_body = Callback,
    responses(
        (status = 200, body = Verified, description = "Applied now, or already applied (outcome duplicate)"),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "Missing field or invalid signature"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json", description = "No such order for the caller"),
        (status = 409, body = ProblemDoc, content_type = "application/problem+json", description = "Not paid in full (nothing recorded), paid an amount that does not match (recorded, no upgrade), or the order was already paid by another payment (nothing recorded)"),
        (status = 502, body = ProblemDoc, content_type = "application/problem+json", description = "Razorpay failed"),
        (status = 503, body = ProblemDoc, content_type = "application/problem+json", description = "Razorpay keys not configured"),
    ))]
async fn verify(
    State(s): State<AppState>,
    user: User,
    JsonBody(cb): JsonBody<Callback>,
) -> Result<Json<Verified>, ApiError> {
    let (_, secret) = keys(&s.config.payments)?;
    for (name, v) in [
        ("razorpay_payment_id", &cb.razorpay_payment_id),
        ("razorpay_payment_link_id", &cb.razorpay_payment_link_id),
        (
            "razorpay_payment_link_reference_id",
            &cb.razorpay_payment_link_reference_id,
        ),
        (
            "razorpay_payment_link_status",
            &cb.razorpay_payment_link_status,
        ),
        ("razorpay_signature", &cb.razorpay_signature),
    ] {
        if v.is_empty() || v.len() > 255 {
            return Err(ApiError::BadRequest(
                format!("{name} must be 1 to 255 characters"),
                StatusCode::BAD_REQUEST,
            ));
        }
    }
    if !callback_signature_ok(secret.expose(), &cb) {
        return Err(
            PaymentError::InvalidSignature("the callback signature does not verify").into(),
        );
    }
    // A valid signature also covers partially paid links: only `paid` may upgrade.
    if cb.razorpay_payment_link_status != "paid" {
        return Err(PaymentError::NotPaid(format!(
            "the payment link is {}, not paid",
            cb.razorpay_payment_link_status
        ))
        .into());
    }
    let order = order_for_link(
        &s,
        &cb.razorpay_payment_link_reference_id,
        &cb.razorpay_payment_link_id,
    )
    .await?
    .ok_or(PaymentError::UnknownOrder)?;
    if order.user_id != user.id {
        tracing::warn!(caller = %user.id, reference_id = %order.reference_id, "callback for another user's order");
        return Err(PaymentError::UnknownOrder.into());
    }
    let link = fetch_payment_link(
        &s.config.payments,
        &s.payments.http,
        &cb.razorpay_payment_link_id,
    )
    .await?;
    confirm_paid(&link, &cb)?;
    if order.provider_ref.is_none() {
        store::payments::attach_order(&s.db, &order.reference_id, &link.id).await?;
    }
    let rec = record(
        &s.db,
        &s.metrics,
        Payment {
            provider: PROVIDER,
            payment_id: &cb.razorpay_payment_id,
            user: &order.user_id,
            product: &order.product,
            amount: link.amount_paid,
            currency: &link.currency,
            raw: json!({"source": "callback", "payment_link": link}),
            order: Some(&order.reference_id),
        },
    )
    .await?;
    if rec.status == "mismatch" {
        return Err(PaymentError::Mismatch(Box::new(rec)).into());
    }
    Ok(Json(Verified {
        outcome: rec.outcome,
        plan: rec.plan,
        plan_expires_at: rec.plan_expires_at,
        payment_id: rec.payment_id,
        reference_id: order.reference_id,
    }))
}

/// The link as Razorpay reports it must be the callback's, paid, and list the payment as captured.
fn confirm_paid(link: &Link, cb: &Callback) -> Result<(), PaymentError> {
    if link.id != cb.razorpay_payment_link_id
        || link.reference_id.as_deref() != Some(cb.razorpay_payment_link_reference_id.as_str())
    {
        return Err(PaymentError::NotPaid(
            "the payment link does not match the callback".into(),
        ));
    }
    if link.status != "paid" {
        return Err(PaymentError::NotPaid(format!(
            "the payment link is {}, not paid",
            link.status
        )));
    }
    if let Some(payments) = link.payments.as_deref().filter(|p| !p.is_empty()) {
        let captured = payments.iter().any(|p| {
            p.payment_id == cb.razorpay_payment_id && p.status.as_deref() == Some("captured")
        });
        if !captured {
            return Err(PaymentError::NotPaid(
                "the payment is not a captured payment of this link".into(),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// POST /v1/webhooks/razorpay

/// Razorpay webhook (`payment_link.paid`, `payment.captured`; `refund.processed` for a full refund ends or
/// shortens the pass); authenticated by `X-Razorpay-Signature`, no JWT.
///
/// Duplicates (same `x-razorpay-event-id`, or a payment already recorded by the callback) answer 200.
#[utoipa::path(post, path = "/v1/webhooks/razorpay", tag = "payments", operation_id = "razorpay_webhook",
    request_body(content = Object, description = "Razorpay event envelope (raw bytes are verified)"),
    params(("X-Razorpay-Signature" = String, Header, description = "Hex HMAC-SHA256 of the raw body with the webhook secret"),
           ("x-razorpay-event-id" = Option<String>, Header, description = "Shared by redeliveries of one event")),
    responses(
        (status = 200, body = WebhookAck),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "Missing or invalid signature, or not JSON: nothing recorded"),
        (status = 503, body = ProblemDoc, content_type = "application/problem+json", description = "Webhook secret not configured, or database unavailable (Razorpay retries)"),
    ))]
async fn webhook(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<WebhookAck>, ApiError> {
    let secret =
        s.config
            .payments
            .razorpay_webhook_secret
            .as_ref()
            .ok_or(PaymentError::NotConfigured(
                "AIQUOTA_RAZORPAY_WEBHOOK_SECRET",
            ))?;
    let Some(sig) = headers
        .get("x-razorpay-signature")
        .and_then(|v| v.to_str().ok())
    else {
        s.metrics.webhook(PROVIDER, "invalid_signature");
        return Err(PaymentError::InvalidSignature("missing X-Razorpay-Signature").into());
    };
    if !webhook_signature_ok(secret.expose(), &body, sig) {
        s.metrics.webhook(PROVIDER, "invalid_signature");
        return Err(PaymentError::InvalidSignature("X-Razorpay-Signature does not verify").into());
    }
    let event_id = headers
        .get("x-razorpay-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(id) = &event_id {
        if s.payments.seen.contains(PROVIDER, id) {
            s.metrics.webhook(PROVIDER, "duplicate_event");
            return Ok(Json(WebhookAck::duplicate_event()));
        }
    }
    let event: Value = serde_json::from_slice(&body).map_err(|_| {
        ApiError::BadRequest("the body is not JSON".into(), StatusCode::BAD_REQUEST)
    })?;
    let ack = match handle_event(&s, &event).await {
        Ok(a) => a,
        Err(e) => {
            s.metrics.webhook(PROVIDER, "error");
            return Err(e);
        }
    };
    if let Some(id) = &event_id {
        s.payments.seen.insert(PROVIDER, id);
    }
    s.metrics.webhook(PROVIDER, &ack.result);
    let kind = event["event"].as_str().unwrap_or("-");
    tracing::info!(event = kind, event_id = event_id.as_deref().unwrap_or("-"), result = %ack.result,
        reason = ack.reason.as_deref().unwrap_or("-"), "razorpay webhook");
    Ok(Json(ack))
}

/// The payment in a verified event, mapped to its order; `Ok(ignored)` for events this API does not act on.
async fn handle_event(s: &AppState, event: &Value) -> Result<WebhookAck, ApiError> {
    let payment = &event["payload"]["payment"]["entity"];
    let (order, payment_id, amount, currency) = match event["event"].as_str() {
        Some("refund.processed") => return refunded(s, event).await,
        Some("payment_link.paid") => {
            let link = &event["payload"]["payment_link"]["entity"];
            let (Some(plink), Some(reference), Some(payment_id)) = (
                link["id"].as_str(),
                link["reference_id"].as_str(),
                payment["id"].as_str(),
            ) else {
                return Ok(WebhookAck::ignored(
                    "payment_link.paid without link id, reference or payment id",
                ));
            };
            if link["status"].as_str() != Some("paid") {
                return Ok(WebhookAck::ignored("payment link not paid"));
            }
            let Some(order) = order_for_link(s, reference, plink).await? else {
                return Ok(WebhookAck::ignored("no order for this payment link"));
            };
            if order.provider_ref.is_none() {
                store::payments::attach_order(&s.db, reference, plink).await?;
            }
            let amount = link["amount_paid"].as_i64().or(payment["amount"].as_i64());
            let currency = link["currency"].as_str().or(payment["currency"].as_str());
            (order, payment_id, amount, currency)
        }
        Some("payment.captured") => {
            let Some(payment_id) = payment["id"].as_str() else {
                return Ok(WebhookAck::ignored("payment.captured without payment id"));
            };
            if payment["status"].as_str() != Some("captured") {
                return Ok(WebhookAck::ignored("payment not captured"));
            }
            // Our links carry the order reference in their notes; other payments are not ours to apply.
            let Some(reference) = payment["notes"]["reference_id"].as_str() else {
                return Ok(WebhookAck::ignored(
                    "payment without an aiquota order reference",
                ));
            };
            let Some(order) = find_order(&s.db, PROVIDER, Some(reference), None).await? else {
                return Ok(WebhookAck::ignored("no order for this reference"));
            };
            (
                order,
                payment_id,
                payment["amount"].as_i64(),
                payment["currency"].as_str(),
            )
        }
        _ => return Ok(WebhookAck::ignored("event not handled")),
    };
    let (Some(amount), Some(currency)) = (amount, currency) else {
        return Ok(WebhookAck::ignored("payment without amount or currency"));
    };
    let res = record(
        &s.db,
        &s.metrics,
        Payment {
            provider: PROVIDER,
            payment_id,
            user: &order.user_id,
            product: &order.product,
            amount,
            currency: &currency.to_ascii_uppercase(),
            raw: json!({"source": "webhook", "event": event}),
            order: Some(&order.reference_id),
        },
    )
    .await
    .map_err(|e| match e {
        // The order names this user and product, so this means the payment id was reused: log, do not retry.
        ApiError::Db(DbError::InvalidInput(m)) => {
            tracing::error!(payment_id, reason = %m, "razorpay payment refused by the extension");
            ApiError::Db(DbError::InvalidInput(m))
        }
        e => e,
    });
    ack_recorded(res)
}

/// `refund.processed`: a full refund ends or shortens the pass the payment bought; a partial one (the
/// payment's `refund_status` is `partial`) keeps it.
async fn refunded(s: &AppState, event: &Value) -> Result<WebhookAck, ApiError> {
    let refund = &event["payload"]["refund"]["entity"];
    let payment = &event["payload"]["payment"]["entity"];
    let Some(payment_id) = refund["payment_id"].as_str().or(payment["id"].as_str()) else {
        return Ok(WebhookAck::ignored("refund without a payment id"));
    };
    let full = match (
        payment["amount"].as_i64(),
        payment["amount_refunded"].as_i64(),
    ) {
        (Some(amount), Some(refunded)) => refunded >= amount,
        _ => payment["refund_status"].as_str() != Some("partial"),
    };
    if !full {
        return Ok(WebhookAck::ignored("partial refund"));
    }
    let actor = format!("razorpay:{}", refund["id"].as_str().unwrap_or("-"));
    revoke(
        &s.db,
        &s.metrics,
        PROVIDER,
        payment_id,
        Revocation::Refund,
        &actor,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::razorpay::LinkPayment;

    fn official() -> Callback {
        Callback {
            razorpay_payment_id: "pay_IH3d0ara9bSsjQ".into(),
            razorpay_payment_link_id: "plink_IH3cNucfVEgV68".into(),
            razorpay_payment_link_reference_id: "TSsd1989".into(),
            razorpay_payment_link_status: "paid".into(),
            razorpay_signature: "07ae18789e35093e51d0a491eb9922646f3f82773547e5b0f67ee3f2d3bf7d5b"
                .into(),
        }
    }

    #[test]
    fn confirm_paid_needs_the_same_paid_link_with_the_payment() {
        let cb = official();
        let mut link = Link {
            id: cb.razorpay_payment_link_id.clone(),
            status: "paid".into(),
            amount: 1000,
            amount_paid: 1000,
            currency: "INR".into(),
            reference_id: Some(cb.razorpay_payment_link_reference_id.clone()),
            short_url: None,
            payments: Some(vec![LinkPayment {
                payment_id: cb.razorpay_payment_id.clone(),
                status: Some("captured".into()),
                amount: Some(1000),
            }]),
        };
        assert!(confirm_paid(&link, &cb).is_ok());
        link.status = "partially_paid".into();
        assert!(confirm_paid(&link, &cb).is_err());
        link.status = "paid".into();
        link.reference_id = Some("other".into());
        assert!(confirm_paid(&link, &cb).is_err());
        link.reference_id = Some(cb.razorpay_payment_link_reference_id.clone());
        link.payments.as_mut().unwrap()[0].payment_id = "pay_other".into();
        assert!(confirm_paid(&link, &cb).is_err());
    }
}
