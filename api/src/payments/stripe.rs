//! Stripe: the `Stripe-Signature` rules and `POST /v1/webhooks/stripe` for Checkout Sessions, full refunds
//! and lost disputes.
//!
//! Signed payload `"{t}.{raw body}"`, HMAC-SHA256 keyed with the whole `whsec_...` string, hex; accepted when
//! any `v1` matches any configured secret (several during a rotation); other schemes and undecodable values
//! are ignored; timestamps older than 300 s are refused (future ones are not, as in Stripe's SDKs).

use axum::{extract::State, http::HeaderMap, http::StatusCode, Json};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ack_recorded, record, revoke, signature, Payment, PaymentError, RawBody, Revocation, WebhookAck,
};
use crate::{error::ApiError, problem::ProblemDoc, AppState};

const PROVIDER: &str = "stripe";

/// Stripe's default tolerance for the age of a signature, in seconds.
pub const TOLERANCE_S: i64 = 300;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(webhook))
}

/// Why a `Stripe-Signature` was refused; the text is safe to show and log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No `t=` with a whole number.
    NoTimestamp,
    /// No decodable `v1=` value.
    NoSignatures,
    /// `t` is older than the tolerance.
    TooOld,
    /// No `v1` matches any secret.
    NoMatch,
}

impl SignatureError {
    /// A sentence for the log and the problem body.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureError::NoTimestamp => "Stripe-Signature has no timestamp",
            SignatureError::NoSignatures => "Stripe-Signature has no v1 signature",
            SignatureError::TooOld => "Stripe-Signature timestamp is outside the tolerance",
            SignatureError::NoMatch => "Stripe-Signature does not verify",
        }
    }
}

/// Checks `header` against `body` with every secret at time `now` (unix seconds).
pub fn verify_signature(
    header: &str,
    body: &[u8],
    secrets: &[&str],
    now: i64,
    tolerance_s: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            continue;
        };
        match k.trim() {
            // The first t counts, as in the SDKs; a t that is not a number is no t.
            "t" if timestamp.is_none() => timestamp = v.trim().parse::<i64>().ok(),
            "v1" => {
                if let Some(bytes) = crate::hex::from_hex(v.trim()).filter(|b| b.len() == 32) {
                    v1.push(bytes);
                }
            }
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::NoTimestamp)?;
    if v1.is_empty() {
        return Err(SignatureError::NoSignatures);
    }
    let mut matched = false;
    for secret in secrets {
        let expected =
            signature::hmac_sha256(secret.as_bytes(), &[t.to_string().as_bytes(), b".", body]);
        for candidate in &v1 {
            // Constant time per comparison; every candidate is compared (no early exit on a match).
            matched |= bool::from(expected[..].ct_eq(candidate));
        }
    }
    if !matched {
        return Err(SignatureError::NoMatch);
    }
    // Checked after the signature, so a forged header learns nothing about the clock.
    if now - t > tolerance_s {
        return Err(SignatureError::TooOld);
    }
    Ok(())
}

/// Stripe webhook (`checkout.session.completed` when paid, `checkout.session.async_payment_succeeded`;
/// `charge.refunded` when refunded in full and `charge.dispute.closed` when lost end or shorten the pass);
/// authenticated by `Stripe-Signature`, no JWT. The event's `livemode` must equal
/// `AIQUOTA_STRIPE_LIVEMODE`.
///
/// The user is the session's `client_reference_id` (or `metadata.user_id`), the product `metadata.product`:
/// set them when creating the Checkout Session on your server. Duplicates answer 200.
#[utoipa::path(post, path = "/v1/webhooks/stripe", tag = "payments", operation_id = "stripe_webhook",
    request_body(content = Object, description = "Stripe event (raw bytes are verified)"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex>[,v1=...]")),
    responses(
        (status = 200, body = WebhookAck),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "Missing, invalid or stale signature, not JSON, or livemode other than AIQUOTA_STRIPE_LIVEMODE: nothing recorded"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json", description = "Unknown product in the session metadata (Stripe retries; define the product)"),
        (status = 503, body = ProblemDoc, content_type = "application/problem+json", description = "No webhook secret configured, or database unavailable (Stripe retries)"),
    ))]
async fn webhook(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<WebhookAck>, ApiError> {
    let secrets = &s.config.payments.stripe_webhook_secrets;
    if secrets.is_empty() {
        return Err(PaymentError::NotConfigured("AIQUOTA_STRIPE_WEBHOOK_SECRETS").into());
    }
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let keys: Vec<&str> = secrets.iter().map(|k| k.expose()).collect();
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = verify_signature(header, &body, &keys, now, TOLERANCE_S) {
        s.metrics.webhook(PROVIDER, "invalid_signature");
        return Err(PaymentError::InvalidSignature(e.reason()).into());
    }
    let event: Value = serde_json::from_slice(&body).map_err(|_| {
        ApiError::BadRequest("the body is not JSON".into(), StatusCode::BAD_REQUEST)
    })?;
    // A test-mode event on a live deployment (or the reverse) is signed, but not for this money.
    let live = s.config.payments.stripe_livemode;
    if event["livemode"].as_bool() != Some(live) {
        s.metrics.webhook(PROVIDER, "livemode_mismatch");
        tracing::warn!(
            event_id = event["id"].as_str().unwrap_or("-"),
            expected = live,
            "stripe event with the other livemode refused"
        );
        return Err(ApiError::BadRequest(
            format!(
                "the event's livemode is not {live} (AIQUOTA_STRIPE_LIVEMODE); nothing was applied"
            ),
            StatusCode::BAD_REQUEST,
        ));
    }
    let event_id = event["id"].as_str().map(str::to_string);
    if let Some(id) = &event_id {
        if s.payments.seen.contains(PROVIDER, id) {
            s.metrics.webhook(PROVIDER, "duplicate_event");
            return Ok(Json(WebhookAck::duplicate_event()));
        }
    }
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
    tracing::info!(event = event["type"].as_str().unwrap_or("-"), event_id = event_id.as_deref().unwrap_or("-"),
        result = %ack.result, reason = ack.reason.as_deref().unwrap_or("-"), "stripe webhook");
    Ok(Json(ack))
}

async fn handle_event(s: &AppState, event: &Value) -> Result<WebhookAck, ApiError> {
    let session = &event["data"]["object"];
    let actor = format!("stripe:{}", event["id"].as_str().unwrap_or("-"));
    match event["type"].as_str() {
        Some("charge.refunded") => {
            // `refunded` turns true only once the whole amount is refunded; a partial refund keeps the pass.
            if session["refunded"].as_bool() != Some(true) {
                return Ok(WebhookAck::ignored("partial refund"));
            }
            let Some(intent) = payment_intent(session) else {
                return Ok(WebhookAck::ignored("charge without a payment intent"));
            };
            return revoke(
                &s.db,
                &s.metrics,
                PROVIDER,
                intent,
                Revocation::Refund,
                &actor,
            )
            .await;
        }
        Some("charge.dispute.closed") => {
            if session["status"].as_str() != Some("lost") {
                return Ok(WebhookAck::ignored("dispute not lost"));
            }
            let Some(intent) = payment_intent(session) else {
                return Ok(WebhookAck::ignored("dispute without a payment intent"));
            };
            return revoke(
                &s.db,
                &s.metrics,
                PROVIDER,
                intent,
                Revocation::DisputeLost,
                &actor,
            )
            .await;
        }
        Some("checkout.session.completed") => {
            // Delayed methods (bank debits) complete unpaid and succeed later with the event below.
            if session["payment_status"].as_str() != Some("paid") {
                return Ok(WebhookAck::ignored("checkout session not paid yet"));
            }
        }
        Some("checkout.session.async_payment_succeeded") => {}
        _ => return Ok(WebhookAck::ignored("event not handled")),
    }
    let user = session["client_reference_id"]
        .as_str()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            session["metadata"]["user_id"]
                .as_str()
                .filter(|u| !u.is_empty())
        });
    let product = session["metadata"]["product"]
        .as_str()
        .filter(|p| !p.is_empty());
    let (Some(user), Some(product)) = (user, product) else {
        tracing::warn!(session = session["id"].as_str().unwrap_or("-"),
            "paid checkout session without client_reference_id/metadata.user_id or metadata.product");
        return Ok(WebhookAck::ignored("session without user or product"));
    };
    let payment_id = payment_intent(session).or_else(|| session["id"].as_str());
    let (Some(payment_id), Some(amount), Some(currency)) = (
        payment_id,
        session["amount_total"].as_i64(),
        session["currency"].as_str(),
    ) else {
        return Ok(WebhookAck::ignored(
            "session without payment, amount or currency",
        ));
    };
    ack_recorded(
        record(
            &s.db,
            &s.metrics,
            Payment {
                provider: PROVIDER,
                payment_id,
                user,
                product,
                amount,
                currency: &currency.to_ascii_uppercase(),
                raw: json!({"source": "webhook", "event": event}),
                order: None,
            },
        )
        .await,
    )
}

/// The payment intent of a session, charge or dispute (an id, or an expanded object): the id a payment is
/// recorded under, so refunds and disputes find it.
fn payment_intent(object: &Value) -> Option<&str> {
    object["payment_intent"]
        .as_str()
        .or_else(|| object["payment_intent"]["id"].as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret_0123456789";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;
    const NOW: i64 = 1_760_000_000;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let mut payload = format!("{t}.").into_bytes();
        payload.extend_from_slice(body);
        signature::hmac_sha256_hex(secret.as_bytes(), &payload)
    }

    #[test]
    fn a_correct_signature_verifies() {
        let h = format!("t={NOW},v1={}", sign(SECRET, NOW, BODY));
        assert_eq!(verify_signature(&h, BODY, &[SECRET], NOW, 300), Ok(()));
        // The key is the whole whsec_ string, not a base64 decoding of its tail.
        let h = format!("t={NOW},v1={}", sign("test_secret_0123456789", NOW, BODY));
        assert_eq!(
            verify_signature(&h, BODY, &[SECRET], NOW, 300),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn any_v1_may_match_and_other_schemes_are_ignored() {
        let good = sign(SECRET, NOW, BODY);
        let other = sign("whsec_other", NOW, BODY);
        let h = format!("t={NOW},v1={other},v1={good},v0={good}");
        assert_eq!(verify_signature(&h, BODY, &[SECRET], NOW, 300), Ok(()));
        // Undecodable v1 values are skipped, not fatal.
        let h = format!("t={NOW},v1=not-hex,v1={},v1={good}", &good[..10]);
        assert_eq!(verify_signature(&h, BODY, &[SECRET], NOW, 300), Ok(()));
        // v0 alone is not enough.
        let h = format!("t={NOW},v0={good}");
        assert_eq!(
            verify_signature(&h, BODY, &[SECRET], NOW, 300),
            Err(SignatureError::NoSignatures)
        );
    }

    #[test]
    fn rotation_accepts_either_secret() {
        let h = format!("t={NOW},v1={}", sign("whsec_new", NOW, BODY));
        assert_eq!(
            verify_signature(&h, BODY, &["whsec_old", "whsec_new"], NOW, 300),
            Ok(())
        );
        assert_eq!(
            verify_signature(&h, BODY, &["whsec_old"], NOW, 300),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn old_timestamps_are_refused_future_ones_are_not() {
        let t = NOW - 301;
        let h = format!("t={t},v1={}", sign(SECRET, t, BODY));
        assert_eq!(
            verify_signature(&h, BODY, &[SECRET], NOW, 300),
            Err(SignatureError::TooOld)
        );
        let t = NOW - 300;
        let h = format!("t={t},v1={}", sign(SECRET, t, BODY));
        assert_eq!(verify_signature(&h, BODY, &[SECRET], NOW, 300), Ok(()));
        let t = NOW + 3600;
        let h = format!("t={t},v1={}", sign(SECRET, t, BODY));
        assert_eq!(verify_signature(&h, BODY, &[SECRET], NOW, 300), Ok(()));
    }

    #[test]
    fn tampering_fails() {
        let good = sign(SECRET, NOW, BODY);
        // Another timestamp in the header than the one signed.
        let h = format!("t={},v1={good}", NOW + 1);
        assert_eq!(
            verify_signature(&h, BODY, &[SECRET], NOW, 300),
            Err(SignatureError::NoMatch)
        );
        let h = format!("t={NOW},v1={good}");
        assert_eq!(
            verify_signature(
                &h,
                br#"{"id":"evt_2","type":"checkout.session.completed"}"#,
                &[SECRET],
                NOW,
                300
            ),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify_signature("", BODY, &[SECRET], NOW, 300),
            Err(SignatureError::NoTimestamp)
        );
        assert_eq!(
            verify_signature(&format!("v1={good}"), BODY, &[SECRET], NOW, 300),
            Err(SignatureError::NoTimestamp)
        );
        assert_eq!(
            verify_signature(&format!("t=abc,v1={good}"), BODY, &[SECRET], NOW, 300),
            Err(SignatureError::NoTimestamp)
        );
    }
}
