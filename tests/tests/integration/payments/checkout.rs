//! Payments end to end: Razorpay payment links against a local server that speaks the Razorpay API,
//! the browser callback and webhooks delivered twice and concurrently, partial and wrong payments,
//! forged webhooks, and Stripe webhooks with rotated secrets and stale timestamps.

use aiquota_tests::{http::*, payments::*};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

async fn scalar(db: &str, sql_text: &str) -> i64 {
    sql(db).await.query_one(sql_text, &[]).await.unwrap().get(0)
}

async fn plan_of(db: &str, user: &str) -> (Option<String>, Option<DateTime<Utc>>) {
    let c = sql(db).await;
    match c
        .query_opt(
            "SELECT plan, plan_expires_at FROM quota.accounts WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap()
    {
        Some(r) => (Some(r.get(0)), r.get(1)),
        None => (None, None),
    }
}

/// The provider's id stored for the order `reference` and its status.
async fn order_of(db: &str, reference: &str) -> (Option<String>, String) {
    let row = sql(db)
        .await
        .query_one(
            "SELECT provider_ref, status FROM quota.orders WHERE reference_id = $1",
            &[&reference],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

fn parse_time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

fn about(t: DateTime<Utc>, expected: DateTime<Utc>) -> bool {
    (t - expected).num_seconds().abs() < 120
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn link_then_callback_upgrades_and_the_next_consume_sees_pro() {
    let (app, mock, alice, link) = razorpay_checkout("pay_link_verify", "alice").await;
    assert!(
        link.id.starts_with("plink_") && link.reference.starts_with("aq_"),
        "{link}"
    );
    assert!(link["short_url"]
        .as_str()
        .unwrap()
        .starts_with("https://rzp.io/"));
    assert_eq!(
        (link["amount"].clone(), link["currency"].clone()),
        (json!(49900), json!("INR"))
    );

    // What Razorpay was asked for: the order's price and reference, a GET callback to the frontend.
    let sent = &mock.created()[0];
    assert_eq!(sent["amount"], 49900);
    assert_eq!(sent["currency"], "INR");
    assert_eq!(sent["reference_id"], link.reference.as_str());
    assert_eq!(
        sent["callback_url"],
        format!("{PUBLIC_URL}/billing/razorpay/callback")
    );
    assert_eq!(sent["callback_method"], "get");
    assert_eq!(sent["notes"]["user_id"], "alice");
    assert_eq!(sent["notes"]["product"], "pro_week");
    let (attached, _) = order_of(&app.db, &link.reference).await;
    assert_eq!(attached.as_deref(), Some(link.id.as_str()));

    // Before paying: the link is `created`, so even a correctly signed "paid" callback is refused.
    let cb = link.callback("paid", "pay_Alice0001");
    let res = app.verify(&alice, &cb).await;
    problem(res, 409).await;
    assert_eq!(
        scalar(&app.db, "SELECT count(*) FROM quota.payments").await,
        0
    );

    mock.pay(&link.id, "pay_Alice0001", 49900);
    let before = Utc::now();
    let res = app.verify(&alice, &cb).await;
    assert_eq!(res.status(), 200);
    let v = body(res).await;
    assert_eq!(v["outcome"], "applied", "{v}");
    assert_eq!(v["plan"], "pro");
    assert_eq!(v["payment_id"], "pay_Alice0001");
    assert!(
        about(
            parse_time(&v["plan_expires_at"]),
            before + Duration::days(7)
        ),
        "{v}"
    );

    // The very next consume runs on pro: 50 a day.
    let res = app.consume(&alice).await;
    assert_eq!(res.status(), 200);
    let d = body(res).await;
    assert_eq!(
        (d["plan"].clone(), d["limit"].clone()),
        (json!("pro"), json!(50)),
        "{d}"
    );

    // The same callback again (a reload of the callback page): 200, duplicate, nothing changes.
    let res = app.verify(&alice, &cb).await;
    assert_eq!(res.status(), 200);
    let again = body(res).await;
    assert_eq!(again["outcome"], "duplicate");
    assert_eq!(again["plan_expires_at"], v["plan_expires_at"]);

    // Another user replaying alice's callback gets nothing and learns nothing.
    let res = app.verify(&user_token("mallory"), &cb).await;
    problem(res, 404).await;
    assert_eq!(plan_of(&app.db, "mallory").await.0, None);

    let (_, status) = order_of(&app.db, &link.reference).await;
    assert_eq!(status, "paid");
    assert_eq!(
        scalar(&app.db, "SELECT count(*) FROM quota.payments").await,
        1
    );

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"aiquota_payments_total{provider="razorpay",outcome="applied"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"aiquota_payments_total{provider="razorpay",outcome="duplicate"} 1"#),
        "{metrics}"
    );

    // Unknown products are 404, and an empty body is a 400.
    let res = app.request_link(&alice, "gold_forever").await;
    problem(res, 404).await;
    let res = app
        .post("/v1/payments/razorpay/links", &alice)
        .send()
        .await
        .unwrap();
    problem(res, 400).await;
    // No token: 401.
    let res = app
        .client
        .post(app.url("/v1/payments/razorpay/verify"))
        .json(&cb)
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callback_and_webhooks_delivered_twice_concurrently_apply_once() {
    let (app, mock, bob, link) = razorpay_checkout("pay_concurrent", "bob").await;
    let paid = mock.pay(&link.id, "pay_Bob0001", 49900);

    let cb = link.callback("paid", "pay_Bob0001");
    let event = link_paid_event(&paid, "pay_Bob0001");
    let sig = hmac_hex(WEBHOOK_SECRET, event.as_bytes());
    let captured = payment_captured_event(&paid, "pay_Bob0001", 49900);
    let captured_sig = hmac_hex(WEBHOOK_SECRET, captured.as_bytes());

    let before = Utc::now();
    let verify = || async {
        let res = app.verify(&bob, &cb).await;
        assert_eq!(res.status(), 200);
        body(res).await["outcome"].as_str().unwrap().to_string()
    };
    let hook = |payload: String, sig: String, id: &'static str| {
        let app = &app;
        async move {
            let res = app.razorpay_webhook(&payload, Some(&sig), id).await;
            assert_eq!(res.status(), 200);
            body(res).await["result"].as_str().unwrap().to_string()
        }
    };
    let (a, b, c, d, e) = tokio::join!(
        verify(),
        verify(),
        hook(event.clone(), sig.clone(), "evt_link_paid_1"),
        hook(event.clone(), sig.clone(), "evt_link_paid_1"),
        hook(captured.clone(), captured_sig.clone(), "evt_captured_1"),
    );
    let outcomes = [a, b, c, d, e];
    assert_eq!(
        outcomes.iter().filter(|o| *o == "applied").count(),
        1,
        "exactly one delivery applies: {outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|o| ["applied", "duplicate", "duplicate_event"].contains(&o.as_str())),
        "{outcomes:?}"
    );
    // A later redelivery of an event already handled is answered from the event-id cache.
    let res = app
        .razorpay_webhook(&event, Some(&sig), "evt_link_paid_1")
        .await;
    assert_eq!(body(res).await["result"], "duplicate_event");

    assert_eq!(
        scalar(&app.db, "SELECT count(*) FROM quota.payments").await,
        1
    );
    assert_eq!(
        scalar(
            &app.db,
            "SELECT count(*) FROM quota.audit_log WHERE action = 'assign_plan' AND target = 'bob'"
        )
        .await,
        1
    );
    let (plan, expires) = plan_of(&app.db, "bob").await;
    assert_eq!(plan.as_deref(), Some("pro"));
    assert!(
        about(expires.unwrap(), before + Duration::days(7)),
        "one pass, not several: {expires:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partial_or_wrong_payments_do_not_upgrade() {
    let (app, mock, carol, link) = razorpay_checkout("pay_partial", "carol").await;
    // Partially paid: the signature is valid, the status is not `paid`.
    let partial = mock.pay(&link.id, "pay_Carol0001", 20000);
    assert_eq!(partial["status"], "partially_paid");
    let cb = link.callback("partially_paid", "pay_Carol0001");
    let res = app.verify(&carol, &cb).await;
    let p = problem(res, 409).await;
    assert_eq!(p["type"], "/problems/payment-incomplete");
    // A callback that claims `paid` (signed: only the fetch can tell) is refused when the link says otherwise.
    let cb = link.callback("paid", "pay_Carol0001");
    let res = app.verify(&carol, &cb).await;
    problem(res, 409).await;
    // The webhook of a link that is not paid is acknowledged and ignored.
    let mut fake_paid = partial.clone();
    fake_paid["status"] = json!("partially_paid");
    let event = link_paid_event(&fake_paid, "pay_Carol0001");
    let res = app.signed_razorpay_webhook(&event, "evt_partial").await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["result"], "ignored");
    assert_eq!(
        scalar(&app.db, "SELECT count(*) FROM quota.payments").await,
        0
    );

    // Paid, but not the product's price (the link's amount was changed on Razorpay's side): recorded as a
    // mismatch, no upgrade, 409.
    let link = app.create_link(&carol, "pro_week").await;
    mock.edit(&link.id, |l| l["amount"] = json!(100));
    mock.pay(&link.id, "pay_Carol0002", 100);
    let cb = link.callback("paid", "pay_Carol0002");
    let res = app.verify(&carol, &cb).await;
    let p = problem(res, 409).await;
    assert_eq!(p["type"], "/problems/payment-mismatch");
    assert_eq!(p["outcome"], "mismatch");
    let res = app.verify(&carol, &cb).await;
    let p = problem(res, 409).await;
    assert_eq!(
        p["outcome"], "duplicate",
        "a repeat is still a mismatch, reported as such"
    );
    let status: String = sql(&app.db)
        .await
        .query_one(
            "SELECT status FROM quota.payments WHERE payment_id = 'pay_Carol0002'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "mismatch");
    assert_eq!(
        scalar(&app.db, "SELECT count(*) FROM quota.payments").await,
        1
    );
    assert_ne!(plan_of(&app.db, "carol").await.0.as_deref(), Some("pro"));
    let res = app.consume(&carol).await;
    assert_eq!(body(res).await["limit"], 10, "still free");
    assert_eq!(
        scalar(
            &app.db,
            "SELECT count(*) FROM quota.audit_log WHERE action = 'assign_plan'"
        )
        .await,
        0
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_tampered_or_unsigned_deliveries_record_nothing() {
    let (app, mock, dave, link) = razorpay_checkout("pay_forged", "dave").await;
    let paid = mock.pay(&link.id, "pay_Dave0001", 49900);
    let event = link_paid_event(&paid, "pay_Dave0001");
    let good = hmac_hex(WEBHOOK_SECRET, event.as_bytes());

    // Unsigned, signed with the wrong secrets, a tampered body, junk.
    let tampered = event.replace("pay_Dave0001", "pay_Dave0002");
    let cases: Vec<(String, Option<String>)> = vec![
        (event.clone(), None),
        (
            event.clone(),
            Some(hmac_hex("not-the-webhook-secret", event.as_bytes())),
        ),
        (event.clone(), Some(hmac_hex(KEY_SECRET, event.as_bytes()))),
        (tampered.clone(), Some(good.clone())),
        (event.clone(), Some(String::new())),
        (event.clone(), Some("zz".repeat(32))),
        (event.clone(), Some(good[..63].to_string())),
    ];
    for (i, (body_text, sig)) in cases.into_iter().enumerate() {
        let res = app
            .razorpay_webhook(&body_text, sig.as_deref(), &format!("evt_forged_{i}"))
            .await;
        let p = problem(res, 400).await;
        assert_eq!(p["type"], "/problems/invalid-signature", "case {i}");
        let text = p.to_string();
        assert!(
            !text.contains(WEBHOOK_SECRET) && !text.contains(KEY_SECRET),
            "{text}"
        );
    }
    // Tampered callbacks: each field changed after signing.
    let cb = link.callback("paid", "pay_Dave0001");
    for field in [
        "razorpay_payment_id",
        "razorpay_payment_link_id",
        "razorpay_payment_link_reference_id",
        "razorpay_signature",
    ] {
        let mut t = cb.clone();
        let v = t[field].as_str().unwrap().to_string();
        // Change the last character (to one it is not), keeping the format.
        let last = if v.ends_with('0') { '1' } else { '0' };
        t[field] = json!(format!("{}{last}", &v[..v.len() - 1]));
        let res = app.verify(&dave, &t).await;
        problem(res, 400).await;
    }
    // Signed with the webhook secret instead of the key secret.
    let wrong = callback(
        WEBHOOK_SECRET,
        &link.id,
        &link.reference,
        "paid",
        "pay_Dave0001",
    );
    let res = app.verify(&dave, &wrong).await;
    problem(res, 400).await;
    assert_eq!(
        scalar(&app.db, "SELECT count(*) FROM quota.payments").await,
        0
    );
    assert_eq!(plan_of(&app.db, "dave").await.0, None);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            r#"aiquota_payment_webhooks_total{provider="razorpay",result="invalid_signature"} 7"#
        ),
        "{metrics}"
    );

    // The genuine delivery still works afterwards; a signed event for an order we do not know is ignored.
    let res = app.razorpay_webhook(&event, Some(&good), "evt_real").await;
    assert_eq!(body(res).await["result"], "applied");
    let mut foreign = paid.clone();
    foreign["id"] = json!("plink_NotOurs0001");
    foreign["reference_id"] = json!("someone-else");
    let other = link_paid_event(&foreign, "pay_Foreign1");
    let res = app.signed_razorpay_webhook(&other, "evt_foreign").await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["result"], "ignored");
    assert_eq!(
        scalar(&app.db, "SELECT count(*) FROM quota.payments").await,
        1
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unconfigured_payments_are_503_and_provider_failures_502() {
    let app = TestApp::start("pay_unconfigured").await;
    let erin = user_token("erin");
    let cb = callback(KEY_SECRET, "plink_X", "aq_x", "paid", "pay_X");
    for req in [
        app.post("/v1/payments/razorpay/links", &erin)
            .json(&json!({"product": "pro_week"})),
        app.post("/v1/payments/razorpay/verify", &erin).json(&cb),
        app.client.post(app.url("/v1/webhooks/razorpay")).body("{}"),
        app.client.post(app.url("/v1/webhooks/stripe")).body("{}"),
    ] {
        let p = problem(req.send().await.unwrap(), 503).await;
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .starts_with("payments not configured"),
            "{p}"
        );
    }
    app.stop().await;

    let (app, mock) = razorpay_app("pay_upstream").await;
    mock.set_failing(true);
    let res = app.request_link(&erin, "pro_week").await;
    let p = problem(res, 502).await;
    let text = p.to_string();
    assert!(
        !text.contains(KEY_SECRET) && !text.contains(KEY_ID) && !text.contains("trouble"),
        "{text}"
    );
    mock.set_failing(false);
    let link = app.create_link(&erin, "pro_month").await;
    assert_eq!(
        (link["amount"].clone(), link["currency"].clone()),
        (json!(1900), json!("USD"))
    );
    mock.pay(&link.id, "pay_Erin0001", 1900);
    mock.set_failing(true);
    let cb = link.callback("paid", "pay_Erin0001");
    let res = app.verify(&erin, &cb).await;
    problem(res, 502).await;
    assert_eq!(
        scalar(&app.db, "SELECT count(*) FROM quota.payments").await,
        0
    );
    // Once Razorpay answers again, the same callback applies.
    mock.set_failing(false);
    let res = app.verify(&erin, &cb).await;
    assert_eq!(body(res).await["outcome"], "applied");
    app.stop().await;

    // Razorpay unreachable altogether.
    let app = TestApp::start_with("pay_unreachable", |c| {
        with_razorpay(c, &mock);
        c.payments.razorpay_api_base = "http://127.0.0.1:9".into();
    })
    .await;
    let res = app.request_link(&erin, "pro_week").await;
    problem(res, 502).await;
    app.stop().await;
}

const STRIPE_OLD: &str = "whsec_old_0123456789abcdefghij";
const STRIPE_NEW: &str = "whsec_new_klmnopqrstuvwxyz0123";

/// A `checkout.session.completed` (test mode) of `user`'s Checkout Session for `pro_month`.
fn completed(id: &str, user: &str, amount: i64, intent: &str, paid: &str) -> String {
    checkout_event(id, "checkout.session.completed", user, amount, intent, paid)
}

/// A Stripe event `kind` (test mode) of `user`'s Checkout Session for `pro_month`.
fn checkout_event(
    id: &str,
    kind: &str,
    user: &str,
    amount: i64,
    intent: &str,
    paid: &str,
) -> String {
    stripe_event(
        id,
        kind,
        false,
        checkout_session(user, amount, intent, paid),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stripe_webhooks_upgrade_with_current_or_rotated_secret() {
    let app = stripe_app("pay_stripe", &[STRIPE_OLD, STRIPE_NEW], false).await;

    // Signed with the first secret: applied, 30 days of pro.
    let before = Utc::now();
    let e1 = completed("evt_1", "sam", 1900, "pi_Sam1", "paid");
    let res = app.signed_stripe_webhook(&e1, STRIPE_OLD).await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["result"], "applied");
    let (plan, expires) = plan_of(&app.db, "sam").await;
    assert_eq!(plan.as_deref(), Some("pro"));
    assert!(
        about(expires.unwrap(), before + Duration::days(30)),
        "{expires:?}"
    );
    let res = app.consume(&user_token("sam")).await;
    assert_eq!(body(res).await["limit"], 50);

    // Rotation: the header carries a signature with an old secret and one with the new; the second matches.
    let e2 = completed("evt_2", "tess", 1900, "pi_Tess1", "paid");
    let t = now();
    let header = format!(
        "t={t},v1={},v1={},v0={}",
        hmac_hex("whsec_retired_secret", format!("{t}.{e2}").as_bytes()),
        hmac_hex(STRIPE_NEW, format!("{t}.{e2}").as_bytes()),
        hmac_hex(STRIPE_NEW, format!("{t}.{e2}").as_bytes()),
    );
    let res = app.stripe_webhook(&e2, Some(&header)).await;
    assert_eq!(body(res).await["result"], "applied");
    assert_eq!(plan_of(&app.db, "tess").await.0.as_deref(), Some("pro"));

    // The same event again, and the same payment under another event type: no second upgrade.
    let res = app.signed_stripe_webhook(&e1, STRIPE_NEW).await;
    assert_eq!(body(res).await["result"], "duplicate_event");
    let e1b = checkout_event(
        "evt_1b",
        "checkout.session.async_payment_succeeded",
        "sam",
        1900,
        "pi_Sam1",
        "paid",
    );
    let res = app.signed_stripe_webhook(&e1b, STRIPE_NEW).await;
    assert_eq!(body(res).await["result"], "duplicate");
    assert_eq!(plan_of(&app.db, "sam").await.1, expires, "one pass only");

    // Stale, future, unsigned, v0 only, tampered.
    let e3 = completed("evt_3", "uma", 1900, "pi_Uma1", "paid");
    let stale = stripe_header(STRIPE_NEW, now() - 301, &e3);
    let p = problem(app.stripe_webhook(&e3, Some(&stale)).await, 400).await;
    assert!(p["detail"].as_str().unwrap().contains("tolerance"), "{p}");
    problem(app.stripe_webhook(&e3, None).await, 400).await;
    let v0 = format!(
        "t={t},v0={}",
        hmac_hex(STRIPE_NEW, format!("{t}.{e3}").as_bytes())
    );
    problem(app.stripe_webhook(&e3, Some(&v0)).await, 400).await;
    let tampered = e3.replace("1900", "19");
    problem(
        app.stripe_webhook(&tampered, Some(&stripe_header(STRIPE_NEW, now(), &e3)))
            .await,
        400,
    )
    .await;
    assert_eq!(plan_of(&app.db, "uma").await.0, None);
    // The refusal did not poison the event id: the genuine delivery (here from a clock slightly ahead) applies.
    let res = app
        .stripe_webhook(&e3, Some(&stripe_header(STRIPE_NEW, now() + 60, &e3)))
        .await;
    assert_eq!(body(res).await["result"], "applied");

    // Unpaid sessions are acknowledged and ignored; a wrong amount is recorded as a mismatch without upgrade.
    let e4 = completed("evt_4", "vic", 1900, "pi_Vic1", "unpaid");
    let res = app.signed_stripe_webhook(&e4, STRIPE_NEW).await;
    assert_eq!(body(res).await["result"], "ignored");
    let e5 = completed("evt_5", "vic", 100, "pi_Vic2", "paid");
    let res = app.signed_stripe_webhook(&e5, STRIPE_NEW).await;
    assert_eq!(body(res).await["result"], "mismatch");
    assert_eq!(
        plan_of(&app.db, "vic")
            .await
            .0
            .as_deref()
            .filter(|p| *p == "pro"),
        None
    );

    assert_eq!(
        scalar(
            &app.db,
            "SELECT count(*) FROM quota.payments WHERE provider = 'stripe'"
        )
        .await,
        4
    );
    assert_eq!(
        scalar(
            &app.db,
            "SELECT count(*) FROM quota.payments WHERE provider = 'stripe' AND status = 'applied'"
        )
        .await,
        3
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"aiquota_payments_total{provider="stripe",outcome="applied"} 3"#),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_whose_attach_was_lost_still_pays_and_routes_are_documented() {
    let (app, mock, fay, link) = razorpay_checkout("pay_unattached", "fay").await;
    // As if the API had died between creating the link and storing its id.
    sql(&app.db)
        .await
        .execute(
            "UPDATE quota.orders SET provider_ref = NULL WHERE reference_id = $1",
            &[&link.reference],
        )
        .await
        .unwrap();
    let paid = mock.pay(&link.id, "pay_Fay0001", 49900);
    let event = link_paid_event(&paid, "pay_Fay0001");
    let res = app.signed_razorpay_webhook(&event, "evt_fay").await;
    assert_eq!(body(res).await["result"], "applied");
    let (stored, _) = order_of(&app.db, &link.reference).await;
    assert_eq!(stored.as_deref(), Some(link.id.as_str()));
    // A callback naming another link for this order is refused.
    let cb = callback(
        KEY_SECRET,
        "plink_Other0001",
        &link.reference,
        "paid",
        "pay_Fay0002",
    );
    let res = app.verify(&fay, &cb).await;
    problem(res, 404).await;

    let doc = app.openapi().await;
    for path in [
        "/v1/payments/razorpay/links",
        "/v1/payments/razorpay/verify",
        "/v1/webhooks/razorpay",
        "/v1/webhooks/stripe",
    ] {
        assert!(
            doc["paths"][path]["post"].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    app.stop().await;
}
