//! Helpers for the payment tests: a local server that speaks the documented Razorpay Payment Links API
//! (create, fetch), and signing as Razorpay and Stripe do, written here independently of the API's own code.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use aiquota_api::config::Secret;
use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::http::TestApp;

/// Razorpay key id the tests configure.
pub const KEY_ID: &str = "rzp_test_aiquota1";
/// Razorpay key secret the tests configure.
pub const KEY_SECRET: &str = "test-key-secret-Xy12ab34";
/// Razorpay webhook secret the tests configure.
pub const WEBHOOK_SECRET: &str = "test-webhook-secret-Qw98";
/// Public URL the tests configure.
pub const PUBLIC_URL: &str = "https://app.example.test";

/// Lowercase hex HMAC-SHA256.
pub fn hmac_hex(key: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The five callback parameters, signed with `key_secret` as Razorpay signs them.
pub fn callback(
    key_secret: &str,
    plink: &str,
    reference: &str,
    status: &str,
    payment: &str,
) -> Value {
    let sig = hmac_hex(
        key_secret,
        format!("{plink}|{reference}|{status}|{payment}").as_bytes(),
    );
    json!({
        "razorpay_payment_id": payment,
        "razorpay_payment_link_id": plink,
        "razorpay_payment_link_reference_id": reference,
        "razorpay_payment_link_status": status,
        "razorpay_signature": sig,
    })
}

/// A `payment_link.paid` webhook body for `link` (as the mock stores it) and its payment.
pub fn link_paid_event(link: &Value, payment_id: &str) -> String {
    json!({
        "entity": "event",
        "account_id": "acc_test",
        "event": "payment_link.paid",
        "contains": ["payment_link", "order", "payment"],
        "payload": {
            "payment_link": {"entity": link},
            "payment": {"entity": {
                "id": payment_id, "entity": "payment", "amount": link["amount_paid"],
                "currency": link["currency"], "status": "captured", "notes": link["notes"],
            }},
        },
        "created_at": crate::http::now(),
    })
    .to_string()
}

/// A `payment.captured` webhook body for a payment of `link` (notes copied from the link).
pub fn payment_captured_event(link: &Value, payment_id: &str, amount: i64) -> String {
    json!({
        "entity": "event",
        "event": "payment.captured",
        "contains": ["payment"],
        "payload": {"payment": {"entity": {
            "id": payment_id, "entity": "payment", "amount": amount, "currency": link["currency"],
            "status": "captured", "notes": link["notes"],
        }}},
        "created_at": crate::http::now(),
    })
    .to_string()
}

/// `Stripe-Signature` for `body` at time `t` with `secret`.
pub fn stripe_header(secret: &str, t: i64, body: &str) -> String {
    format!(
        "t={t},v1={}",
        hmac_hex(secret, format!("{t}.{body}").as_bytes())
    )
}

#[derive(Default)]
struct MockState {
    links: HashMap<String, Value>,
    created: Vec<Value>,
    fetches: usize,
    fail: bool,
}

/// A Razorpay API on 127.0.0.1: `POST /v1/payment_links`, `GET /v1/payment_links/{id}`, HTTP Basic with
/// [`KEY_ID`]:[`KEY_SECRET`].
#[derive(Clone)]
pub struct MockRazorpay {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    state: Arc<Mutex<MockState>>,
}

fn rzp_error(status: StatusCode, description: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": "BAD_REQUEST_ERROR", "description": description}})),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{KEY_ID}:{KEY_SECRET}"))
    );
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

async fn create(
    State(s): State<Arc<Mutex<MockState>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&headers) {
        return rzp_error(StatusCode::UNAUTHORIZED, "Authentication failed");
    }
    let mut st = s.lock().unwrap();
    if st.fail {
        return rzp_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "We are facing some trouble",
        );
    }
    let reference = body["reference_id"].as_str().unwrap_or("");
    if body["amount"].as_i64().is_none()
        || body["currency"].as_str().is_none()
        || reference.is_empty()
        || reference.len() > 40
    {
        return rzp_error(StatusCode::BAD_REQUEST, "invalid request");
    }
    if st.links.values().any(|l| l["reference_id"] == reference) {
        return rzp_error(StatusCode::BAD_REQUEST, "reference_id already exists");
    }
    let n = st.links.len() + 1;
    let id = format!("plink_Mock{n:010}");
    let link = json!({
        "id": id, "amount": body["amount"], "amount_paid": 0, "currency": body["currency"],
        "accept_partial": body["accept_partial"], "reference_id": reference, "status": "created",
        "short_url": format!("https://rzp.io/i/mock{n}"), "callback_url": body["callback_url"],
        "callback_method": body["callback_method"], "notes": body["notes"], "payments": null,
        "description": body["description"],
    });
    st.created.push(body);
    st.links.insert(id, link.clone());
    Json(link).into_response()
}

async fn fetch(
    State(s): State<Arc<Mutex<MockState>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&headers) {
        return rzp_error(StatusCode::UNAUTHORIZED, "Authentication failed");
    }
    let mut st = s.lock().unwrap();
    st.fetches += 1;
    if st.fail {
        return rzp_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "We are facing some trouble",
        );
    }
    match st.links.get(&id) {
        Some(l) => Json(l.clone()).into_response(),
        None => rzp_error(StatusCode::BAD_REQUEST, "The id provided does not exist"),
    }
}

impl MockRazorpay {
    /// Starts the server (it lives as long as the test's runtime).
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(MockState::default()));
        let app = Router::new()
            .route("/v1/payment_links", post(create))
            .route("/v1/payment_links/{id}", get(fetch))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, state }
    }

    /// A payment of `amount` on the link: `paid` once the total reaches the link's amount, else
    /// `partially_paid`.
    pub fn pay(&self, plink: &str, payment_id: &str, amount: i64) -> Value {
        let mut st = self.state.lock().unwrap();
        let link = st.links.get_mut(plink).expect("a link the mock created");
        let paid = link["amount_paid"].as_i64().unwrap() + amount;
        link["amount_paid"] = json!(paid);
        link["status"] = json!(if paid >= link["amount"].as_i64().unwrap() {
            "paid"
        } else {
            "partially_paid"
        });
        let mut payments = link["payments"].as_array().cloned().unwrap_or_default();
        payments.push(
            json!({"payment_id": payment_id, "amount": amount, "status": "captured",
                             "method": "upi", "created_at": crate::http::now()}),
        );
        link["payments"] = json!(payments);
        link.clone()
    }

    /// Changes a stored link.
    pub fn edit(&self, plink: &str, f: impl FnOnce(&mut Value)) -> Value {
        let mut st = self.state.lock().unwrap();
        let link = st.links.get_mut(plink).expect("a link the mock created");
        f(link);
        link.clone()
    }

    /// The bodies of every create request, in order.
    pub fn created(&self) -> Vec<Value> {
        self.state.lock().unwrap().created.clone()
    }

    /// How many fetches were served.
    pub fn fetches(&self) -> usize {
        self.state.lock().unwrap().fetches
    }

    /// Makes every call answer 500 (or work again).
    pub fn set_failing(&self, fail: bool) {
        self.state.lock().unwrap().fail = fail;
    }
}

/// Configures Razorpay (keys, webhook secret, this mock as the API, [`PUBLIC_URL`]) on `c`.
pub fn with_razorpay(c: &mut aiquota_api::Config, mock: &MockRazorpay) {
    c.payments.razorpay_key_id = Some(KEY_ID.into());
    c.payments.razorpay_key_secret = Some(Secret::new(KEY_SECRET));
    c.payments.razorpay_webhook_secret = Some(Secret::new(WEBHOOK_SECRET));
    c.payments.razorpay_api_base = mock.base.clone();
    c.payments.public_url = Some(PUBLIC_URL.into());
}

/// The API with Razorpay pointed at a fresh [`MockRazorpay`] (on a fresh database `t_<name>`): the setup
/// every Razorpay test starts from.
pub async fn razorpay_app(name: &str) -> (TestApp, MockRazorpay) {
    let mock = MockRazorpay::start().await;
    let m = mock.clone();
    let app = TestApp::start_with(name, move |c| with_razorpay(c, &m)).await;
    (app, mock)
}

/// A Razorpay checkout under way: [`razorpay_app`] on `t_<name>`, the token of `user`, and the `pro_week`
/// link `user` asked for (created, not paid yet).
pub async fn razorpay_checkout(name: &str, user: &str) -> (TestApp, MockRazorpay, String, Link) {
    let (app, mock) = razorpay_app(name).await;
    let token = crate::http::user_token(user);
    let link = app.create_link(&token, "pro_week").await;
    (app, mock, token, link)
}

/// The API accepting Stripe webhooks signed with any of `secrets`, for events of `livemode`.
pub async fn stripe_app(name: &str, secrets: &[&str], livemode: bool) -> TestApp {
    let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
    TestApp::start_with(name, move |c| {
        c.payments.stripe_webhook_secrets = secrets;
        c.payments.stripe_livemode = livemode;
    })
    .await
}

/// A Stripe event of type `kind` with id `id` around `object`, created now.
pub fn stripe_event(id: &str, kind: &str, livemode: bool, object: Value) -> String {
    json!({
        "id": id, "object": "event", "type": kind, "api_version": "2024-06-20", "created": crate::http::now(),
        "livemode": livemode, "data": {"object": object},
    })
    .to_string()
}

/// A Checkout Session of `user` for `pro_month`: `amount` US cents, payment intent `intent`, payment status
/// `payment_status` (`paid`, `unpaid`).
pub fn checkout_session(user: &str, amount: i64, intent: &str, payment_status: &str) -> Value {
    json!({
        "id": format!("cs_test_{intent}"), "object": "checkout.session", "mode": "payment",
        "client_reference_id": user, "metadata": {"product": "pro_month", "user_id": user},
        "amount_total": amount, "currency": "usd", "payment_status": payment_status, "payment_intent": intent,
    })
}

/// A payment link the API created (`POST /v1/payments/razorpay/links`, 201).
pub struct Link {
    /// The API's answer.
    pub body: Value,
    /// Razorpay's id of the link (`plink_…`).
    pub id: String,
    /// The order's reference (`aq_…`).
    pub reference: String,
}

impl Link {
    /// The browser callback of `payment` with link status `status`, signed with [`KEY_SECRET`].
    pub fn callback(&self, status: &str, payment: &str) -> Value {
        callback(KEY_SECRET, &self.id, &self.reference, status, payment)
    }
}

/// The payment routes, as a browser, the frontend and the providers call them.
impl TestApp {
    /// `POST /v1/payments/razorpay/links` for `product` as `token`; the response as it is.
    pub async fn request_link(&self, token: &str, product: &str) -> reqwest::Response {
        let order = json!({ "product": product });
        self.post_json("/v1/payments/razorpay/links", token, &order)
            .await
    }

    /// A link for `product` as `token`, asserting the 201.
    pub async fn create_link(&self, token: &str, product: &str) -> Link {
        let res = self.request_link(token, product).await;
        assert_eq!(res.status(), 201, "create link");
        let body = crate::http::body(res).await;
        let field = |name: &str| {
            body[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: {body}"))
        };
        let (id, reference) = (
            field("payment_link_id").to_string(),
            field("reference_id").to_string(),
        );
        Link {
            body,
            id,
            reference,
        }
    }

    /// `POST /v1/payments/razorpay/verify` with the callback parameters `cb` as `token`.
    pub async fn verify(&self, token: &str, cb: &Value) -> reqwest::Response {
        self.post("/v1/payments/razorpay/verify", token)
            .json(cb)
            .send()
            .await
            .unwrap()
    }

    /// A Razorpay webhook delivery of `body` with `signature` (none: no header) and event id `event_id`.
    pub async fn razorpay_webhook(
        &self,
        body: &str,
        signature: Option<&str>,
        event_id: &str,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url("/v1/webhooks/razorpay"))
            .header("content-type", "application/json")
            .header("x-razorpay-event-id", event_id)
            .body(body.to_string());
        if let Some(s) = signature {
            req = req.header("x-razorpay-signature", s);
        }
        req.send().await.unwrap()
    }

    /// A Razorpay webhook delivery of `body`, signed with [`WEBHOOK_SECRET`].
    pub async fn signed_razorpay_webhook(&self, body: &str, event_id: &str) -> reqwest::Response {
        let sig = hmac_hex(WEBHOOK_SECRET, body.as_bytes());
        self.razorpay_webhook(body, Some(&sig), event_id).await
    }

    /// A Stripe webhook delivery of `payload` with `Stripe-Signature: signature` (none: no header).
    pub async fn stripe_webhook(
        &self,
        payload: &str,
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url("/v1/webhooks/stripe"))
            .header("content-type", "application/json")
            .body(payload.to_string());
        if let Some(s) = signature {
            req = req.header("stripe-signature", s);
        }
        req.send().await.unwrap()
    }

    /// A Stripe webhook delivery of `payload`, signed now with `secret`.
    pub async fn signed_stripe_webhook(&self, payload: &str, secret: &str) -> reqwest::Response {
        let sig = stripe_header(secret, crate::http::now(), payload);
        self.stripe_webhook(payload, Some(&sig)).await
    }

    /// The plan `user`'s quota reports (`GET /v1/quota`), `""` when it names none.
    pub async fn plan(&self, user: &str) -> String {
        let res = self
            .get("/v1/quota", &crate::http::user_token(user))
            .send()
            .await
            .unwrap();
        crate::http::body(res).await["plan"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// The API's answer, for assertion messages.
impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.body.fmt(f)
    }
}

/// A member of the API's answer, as `link["short_url"]`.
impl std::ops::Index<&str> for Link {
    type Output = Value;

    fn index(&self, member: &str) -> &Value {
        &self.body[member]
    }
}
