//! Razorpay's protocol: the callback and webhook signature rules and the two Payment Link API calls
//! (create, fetch). The routes that use them are in [`super::razorpay_routes`].

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{signature, Order, PaymentError};
use crate::config::{PaymentsConfig, Secret};

/// Where the payment link sends the browser back to, under `AIQUOTA_PUBLIC_URL` (see docs/payments.md).
pub const CALLBACK_PATH: &str = "/billing/razorpay/callback";

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
pub fn keys(p: &PaymentsConfig) -> Result<(&str, &Secret), PaymentError> {
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

/// `POST /v1/payment_links` for `order`, with the callback to the frontend.
pub async fn create_payment_link(
    config: &PaymentsConfig,
    http: &reqwest::Client,
    order: &Order,
) -> Result<Link, PaymentError> {
    let (key_id, secret) = keys(config)?;
    let public_url = config
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
    let url = format!("{}/v1/payment_links", config.razorpay_api_base);
    let res = http
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
pub async fn fetch_payment_link(
    config: &PaymentsConfig,
    http: &reqwest::Client,
    id: &str,
) -> Result<Link, PaymentError> {
    let (key_id, secret) = keys(config)?;
    // The id was signed by Razorpay, but it still goes into a URL: only plain id characters.
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(PaymentError::InvalidSignature("malformed payment link id"));
    }
    let url = format!("{}/v1/payment_links/{id}", config.razorpay_api_base);
    let res = http
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
}
