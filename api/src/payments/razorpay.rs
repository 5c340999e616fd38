//! Razorpay: the signature rules, the two Payment Link API calls, and the three routes
//! (`POST /v1/payments/razorpay/links`, `POST /v1/payments/razorpay/verify`, `POST /v1/webhooks/razorpay`).

use axum::{extract::State, http::HeaderMap, http::StatusCode, response::IntoResponse, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    find_order, record, signature, Order, Payment, PaymentError, RawBody, Recorded, WebhookAck,
};
use crate::{
    auth::User,
    config::Secret,
    db::{DbError, Retry},
    extract::JsonBody,
    problem::{ApiError, ProblemDoc},
    AppState,
};

const PROVIDER: &str = "razorpay";

/// Where the payment link sends the browser back to, under `AIQUOTA_PUBLIC_URL` (see docs/payments.md).
pub const CALLBACK_PATH: &str = "/billing/razorpay/callback";

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_link))
        .routes(routes!(verify))
        .routes(routes!(webhook))
}

// ---------------------------------------------------------------------------------------------------------
// Signatures

/// Whether `signature` is Razorpay's Payment Link callback signature: hex HMAC-SHA256 with the key secret over
/// `payment_link_id|reference_id|status|payment_id`.
pub fn callback_signature_ok(key_secret: &str, cb: &Callback) -> bool {
    signature::verify_hex(
        key_secret.as_bytes(),
        &[
            cb.razorpay_payment_link_id.as_bytes(),
            b"|",
            cb.razorpay_payment_link_reference_id.as_bytes(),
            b"|",
            cb.razorpay_payment_link_status.as_bytes(),
            b"|",
            cb.razorpay_payment_id.as_bytes(),
        ],
        &cb.razorpay_signature,
    )
}

/// Whether `signature` (header `X-Razorpay-Signature`) is hex HMAC-SHA256 of the raw body with the webhook
/// secret.
pub fn webhook_signature_ok(webhook_secret: &str, body: &[u8], signature: &str) -> bool {
    signature::verify_hex(webhook_secret.as_bytes(), &[body], signature)
}

// ---------------------------------------------------------------------------------------------------------
// The API

/// The key id and secret, or 503.
fn keys(s: &AppState) -> Result<(&str, &Secret), PaymentError> {
    let p = &s.config.payments;
    match (&p.razorpay_key_id, &p.razorpay_key_secret) {
        (Some(id), Some(secret)) => Ok((id, secret)),
        _ => Err(PaymentError::NotConfigured(
            "AIQUOTA_RAZORPAY_KEY_ID and AIQUOTA_RAZORPAY_KEY_SECRET",
        )),
    }
}

/// A payment link as the API returns it (the fields this API reads).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Link {
    /// `plink_...`.
    pub id: String,
    /// `created`, `partially_paid`, `paid`, `expired` or `cancelled`.
    pub status: String,
    /// Amount asked, smallest unit.
    pub amount: i64,
    /// Amount paid so far.
    #[serde(default)]
    pub amount_paid: i64,
    /// ISO 4217.
    pub currency: String,
    /// Our order reference.
    #[serde(default)]
    pub reference_id: Option<String>,
    /// The page to send the payer to.
    #[serde(default)]
    pub short_url: Option<String>,
    /// Payments made on the link (null before the first).
    #[serde(default)]
    pub payments: Option<Vec<LinkPayment>>,
}

/// One payment of a link.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct LinkPayment {
    /// `pay_...`.
    pub payment_id: String,
    /// `captured`, ...
    #[serde(default)]
    pub status: Option<String>,
    /// Amount of this payment.
    #[serde(default)]
    pub amount: Option<i64>,
}

/// Turns a non-2xx answer into an error whose text is safe to log: the status and Razorpay's error code and
/// description (they never echo credentials).
async fn upstream_error(what: &str, res: reqwest::Response) -> PaymentError {
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().unwrap_or("-");
    let desc: String = body["error"]["description"]
        .as_str()
        .unwrap_or("-")
        .chars()
        .take(200)
        .collect();
    PaymentError::Upstream(format!("{what}: HTTP {status}, {code}: {desc}"))
}

/// reqwest errors carry the URL (no credentials: those travel in a header) and the cause.
fn transport_error(what: &str, e: reqwest::Error) -> PaymentError {
    PaymentError::Upstream(format!("{what}: {}", e.without_url()))
}

async fn create_payment_link(s: &AppState, order: &Order) -> Result<Link, PaymentError> {
    let (key_id, secret) = keys(s)?;
    let public_url = s
        .config
        .payments
        .public_url
        .as_deref()
        .ok_or(PaymentError::NotConfigured("AIQUOTA_PUBLIC_URL"))?;
    let body = json!({
        "amount": order.amount,
        "currency": order.currency,
        "accept_partial": false,
        "reference_id": order.reference_id,
        "description": format!("aiquota {}", order.product),
        "callback_url": format!("{public_url}{CALLBACK_PATH}"),
        "callback_method": "get",
        "notes": {
            "user_id": order.user_id,
            "product": order.product,
            "reference_id": order.reference_id,
        },
    });
    let url = format!("{}/v1/payment_links", s.config.payments.razorpay_api_base);
    let res = s
        .payments
        .http
        .post(url)
        .basic_auth(key_id, Some(secret.expose()))
        .json(&body)
        .send()
        .await
        .map_err(|e| transport_error("create payment link", e))?;
    if !res.status().is_success() {
        return Err(upstream_error("create payment link", res).await);
    }
    let link: Link = res
        .json()
        .await
        .map_err(|e| transport_error("create payment link: unreadable answer", e))?;
    if link.short_url.as_deref().is_none_or(str::is_empty) || !link.id.starts_with("plink_") {
        return Err(PaymentError::Upstream(
            "create payment link: answer without id or short_url".into(),
        ));
    }
    Ok(link)
}

/// `GET /v1/payment_links/{id}`.
pub async fn fetch_payment_link(s: &AppState, id: &str) -> Result<Link, PaymentError> {
    let (key_id, secret) = keys(s)?;
    // The id was signed by Razorpay, but it still goes into a URL: only plain id characters.
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(PaymentError::InvalidSignature("malformed payment link id"));
    }
    let url = format!(
        "{}/v1/payment_links/{id}",
        s.config.payments.razorpay_api_base
    );
    let res = s
        .payments
        .http
        .get(url)
        .basic_auth(key_id, Some(secret.expose()))
        .send()
        .await
        .map_err(|e| transport_error("fetch payment link", e))?;
    if !res.status().is_success() {
        return Err(upstream_error("fetch payment link", res).await);
    }
    res.json()
        .await
        .map_err(|e| transport_error("fetch payment link: unreadable answer", e))
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
        (status = 502, body = ProblemDoc, content_type = "application/problem+json", description = "Razorpay failed"),
        (status = 503, body = ProblemDoc, content_type = "application/problem+json", description = "Razorpay keys or AIQUOTA_PUBLIC_URL not configured"),
    ))]
async fn create_link(
    State(s): State<AppState>,
    user: User,
    JsonBody(body): JsonBody<LinkRequest>,
) -> Result<impl IntoResponse, ApiError> {
    keys(&s)?;
    if s.config.payments.public_url.is_none() {
        return Err(PaymentError::NotConfigured("AIQUOTA_PUBLIC_URL").into());
    }
    if body.product.is_empty() {
        return Err(ApiError::BadRequest(
            "product is required".into(),
            StatusCode::BAD_REQUEST,
        ));
    }
    let (uid, product) = (&user.id, &body.product);
    // Not retried after a lost connection: a second order would be harmless but pointless.
    let order =
        s.db.run(Retry::IfNotApplied, |c| async move {
            let stmt = c
                .prepare_cached("SELECT * FROM quota.create_order('razorpay', $1::text, $2::text)")
                .await?;
            Order::from_row(&c.query_one(&stmt, &[uid, product]).await?)
        })
        .await?;
    let link = create_payment_link(&s, &order).await?;
    let (reference, plink) = (&order.reference_id, &link.id);
    s.db.run(Retry::Safe, |c| async move {
        let stmt = c
            .prepare_cached("SELECT reference_id FROM quota.attach_order($1::text, $2::text)")
            .await?;
        c.query_one(&stmt, &[reference, plink]).await
    })
    .await?;
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

/// The five query parameters Razorpay appends to the callback URL, forwarded by the frontend.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    /// `pay_...`.
    pub razorpay_payment_id: String,
    /// `plink_...`.
    pub razorpay_payment_link_id: String,
    /// Our order reference (`aq_...`).
    pub razorpay_payment_link_reference_id: String,
    /// `paid`, `partially_paid`, ...
    pub razorpay_payment_link_status: String,
    /// Hex HMAC-SHA256 of the four values above with the key secret.
    pub razorpay_signature: String,
}

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
        (status = 409, body = ProblemDoc, content_type = "application/problem+json", description = "Not paid in full (nothing recorded), or paid an amount that does not match (recorded, no upgrade)"),
        (status = 502, body = ProblemDoc, content_type = "application/problem+json", description = "Razorpay failed"),
        (status = 503, body = ProblemDoc, content_type = "application/problem+json", description = "Razorpay keys not configured"),
    ))]
async fn verify(
    State(s): State<AppState>,
    user: User,
    JsonBody(cb): JsonBody<Callback>,
) -> Result<Json<Verified>, ApiError> {
    let (_, secret) = keys(&s)?;
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
    let order = find_order(
        &s.db,
        PROVIDER,
        Some(&cb.razorpay_payment_link_reference_id),
        Some(&cb.razorpay_payment_link_id),
    )
    .await?
    .ok_or(PaymentError::UnknownOrder)?;
    if order.user_id != user.id {
        tracing::warn!(caller = %user.id, reference_id = %order.reference_id, "callback for another user's order");
        return Err(PaymentError::UnknownOrder.into());
    }
    let link = fetch_payment_link(&s, &cb.razorpay_payment_link_id).await?;
    confirm_paid(&link, &cb)?;
    let rec = record(
        &s,
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

/// Razorpay webhook (`payment_link.paid`, `payment.captured`); authenticated by `X-Razorpay-Signature`,
/// no JWT.
///
/// Duplicates (same `x-razorpay-event-id`, or a payment already recorded by the callback) answer 200.
#[utoipa::path(post, path = "/v1/webhooks/razorpay", tag = "payments",
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
            let Some(order) = find_order(&s.db, PROVIDER, Some(reference), Some(plink)).await?
            else {
                return Ok(WebhookAck::ignored("no order for this payment link"));
            };
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
    let rec: Recorded = record(
        s,
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
    })?;
    Ok(WebhookAck::recorded(&rec))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    const SECRET: &str = "EnLs21M47BllR3X8PSFtjtbd";

    #[test]
    fn official_sdk_vector_verifies() {
        assert!(callback_signature_ok(SECRET, &official()));
        assert_eq!(
            signature::hmac_sha256_hex(
                SECRET.as_bytes(),
                b"plink_IH3cNucfVEgV68|TSsd1989|paid|pay_IH3d0ara9bSsjQ"
            ),
            official().razorpay_signature
        );
    }

    #[test]
    fn tampering_with_any_field_fails() {
        let tampered: [fn(&mut Callback); 6] = [
            |c| c.razorpay_payment_id.push('x'),
            |c| c.razorpay_payment_link_id = "plink_IH3cNucfVEgV69".into(),
            |c| c.razorpay_payment_link_reference_id = "TSsd1990".into(),
            |c| c.razorpay_payment_link_status = "partially_paid".into(),
            |c| c.razorpay_payment_link_status = "PAID".into(),
            |c| c.razorpay_signature.replace_range(0..1, "1"),
        ];
        for (i, t) in tampered.iter().enumerate() {
            let mut c = official();
            t(&mut c);
            assert!(!callback_signature_ok(SECRET, &c), "tampering {i} verified");
        }
        assert!(!callback_signature_ok(
            "EnLs21M47BllR3X8PSFtjtbe",
            &official()
        ));
    }

    #[test]
    fn webhook_signature_covers_the_raw_body() {
        let body = br#"{"event":"payment_link.paid","payload":{}}"#;
        let sig = signature::hmac_sha256_hex(b"whk", body);
        assert!(webhook_signature_ok("whk", body, &sig));
        assert!(!webhook_signature_ok(
            "whk",
            br#"{"event":"payment_link.paid","payload":{} }"#,
            &sig
        ));
        assert!(!webhook_signature_ok("key-secret", body, &sig));
        assert!(!webhook_signature_ok("whk", body, ""));
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
