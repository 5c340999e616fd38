//! The payment providers' part of the configuration (`AIQUOTA_RAZORPAY_*`, `AIQUOTA_STRIPE_*`,
//! `AIQUOTA_PUBLIC_URL`); each part is optional and its routes answer 503 without it.

use crate::config::error::{http_url, invalid, ConfigError};
use crate::config::secret::Secret;

/// Secrets and URLs of the payment providers (see docs/payments.md).
#[derive(Clone, Debug)]
pub struct PaymentsConfig {
    /// Razorpay API key id (`rzp_live_...` / `rzp_test_...`): the user name of HTTP Basic.
    pub razorpay_key_id: Option<String>,
    /// Razorpay API key secret: HTTP Basic password and the key of the callback signature.
    pub razorpay_key_secret: Option<Secret>,
    /// Razorpay API base URL, without a trailing slash (tests point it at a local server).
    pub razorpay_api_base: String,
    /// Razorpay webhook secret (set per webhook in the dashboard; not the key secret).
    pub razorpay_webhook_secret: Option<Secret>,
    /// Public URL of the frontend, without a trailing slash; the payment link's callback goes there.
    pub public_url: Option<String>,
    /// Stripe webhook signing secrets (`whsec_...`); several while one is being rotated.
    pub stripe_webhook_secrets: Vec<Secret>,
    /// `AIQUOTA_STRIPE_LIVEMODE`: whether this deployment takes live Stripe events (default false: test
    /// mode). An event whose `livemode` differs is refused.
    pub stripe_livemode: bool,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            razorpay_key_id: None,
            razorpay_key_secret: None,
            razorpay_api_base: "https://api.razorpay.com".into(),
            razorpay_webhook_secret: None,
            public_url: None,
            stripe_webhook_secrets: Vec::new(),
            stripe_livemode: false,
        }
    }
}

/// The payment variables: all optional, but a key id without its secret (or the reverse) is a mistake.
pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<PaymentsConfig, ConfigError> {
    let mut p = PaymentsConfig {
        razorpay_key_id: get("AIQUOTA_RAZORPAY_KEY_ID").map(|v| v.trim().to_string()),
        razorpay_key_secret: get("AIQUOTA_RAZORPAY_KEY_SECRET").map(Secret::new),
        razorpay_webhook_secret: get("AIQUOTA_RAZORPAY_WEBHOOK_SECRET").map(Secret::new),
        ..PaymentsConfig::default()
    };
    match (&p.razorpay_key_id, &p.razorpay_key_secret) {
        (Some(_), None) => {
            return Err(invalid(
                "AIQUOTA_RAZORPAY_KEY_SECRET",
                "must be set when AIQUOTA_RAZORPAY_KEY_ID is".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "AIQUOTA_RAZORPAY_KEY_ID",
                "must be set when AIQUOTA_RAZORPAY_KEY_SECRET is".into(),
            ))
        }
        _ => {}
    }
    if let Some(id) = &p.razorpay_key_id {
        if id.contains(':') || id.chars().any(char::is_whitespace) {
            return Err(invalid(
                "AIQUOTA_RAZORPAY_KEY_ID",
                "must not contain ':' or spaces (it is an id like rzp_test_...)".into(),
            ));
        }
    }
    if let Some(base) = get("AIQUOTA_RAZORPAY_API_BASE") {
        p.razorpay_api_base = http_url("AIQUOTA_RAZORPAY_API_BASE", &base)?;
    }
    if let Some(url) = get("AIQUOTA_PUBLIC_URL") {
        p.public_url = Some(http_url("AIQUOTA_PUBLIC_URL", &url)?);
    }
    if let Some(list) = get("AIQUOTA_STRIPE_WEBHOOK_SECRETS") {
        p.stripe_webhook_secrets = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .collect();
        if p.stripe_webhook_secrets.is_empty() {
            return Err(invalid(
                "AIQUOTA_STRIPE_WEBHOOK_SECRETS",
                "names no secret".into(),
            ));
        }
    }
    if let Some(v) = get("AIQUOTA_STRIPE_LIVEMODE") {
        p.stripe_livemode = match v.trim() {
            "true" => true,
            "false" => false,
            other => {
                return Err(invalid(
                    "AIQUOTA_STRIPE_LIVEMODE",
                    format!("{other:?} must be true or false"),
                ))
            }
        };
    }
    Ok(p)
}
