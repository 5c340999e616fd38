//! [`PaymentError`] and its problem responses: the log line carries the cause, the body never carries
//! provider text or secrets.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::problem::Problem;
use crate::store::payments::Recorded;

/// Why a payment request failed; its [`IntoResponse`] picks the status (named on each variant).
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

/// Status of a [`PaymentError`], the status of its problem.
fn status_of(e: &PaymentError) -> StatusCode {
    match e {
        PaymentError::NotConfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
        PaymentError::Upstream(_) => StatusCode::BAD_GATEWAY,
        PaymentError::InvalidSignature(_) => StatusCode::BAD_REQUEST,
        PaymentError::NotPaid(_) | PaymentError::Mismatch(_) => StatusCode::CONFLICT,
        PaymentError::UnknownOrder => StatusCode::NOT_FOUND,
    }
}

impl IntoResponse for PaymentError {
    fn into_response(self) -> Response {
        let status = status_of(&self);
        match self {
        PaymentError::NotConfigured(vars) => {
            tracing::warn!(needs = vars, "payment route called but payments not configured");
            Problem::new(status, "payments-not-configured", "Payments not configured")
                .detail(format!("payments not configured: set {vars}"))
                .into_response()
        }
        PaymentError::Upstream(why) => {
            tracing::error!(%why, "payment provider failed");
            Problem::new(status, "payment-provider-failed", "Payment provider failed")
                .detail("The payment provider did not answer as expected; try again.")
                .into_response()
        }
        PaymentError::InvalidSignature(why) => {
            tracing::warn!(reason = why, "payment signature rejected");
            Problem::new(status, "invalid-signature", "Invalid signature")
                .detail(why)
                .into_response()
        }
        PaymentError::NotPaid(why) => {
            tracing::info!(reason = %why, "payment not complete");
            Problem::new(status, "payment-incomplete", "Payment not complete")
                .detail(why)
                .into_response()
        }
        PaymentError::Mismatch(rec) => Problem::new(status, "payment-mismatch", "Payment does not match the product")
            .detail("The payment was recorded, but its amount or currency differs from the product's price; the plan was not changed.")
            .with("outcome", rec.outcome.clone())
            .with("payment_status", rec.status.clone())
            .with("provider", rec.provider.clone())
            .with("payment_id", rec.payment_id.clone())
            .into_response(),
        PaymentError::UnknownOrder => Problem::new(status, "not-found", "Not found")
            .detail("No such order.")
            .into_response(),
    }
    }
}
