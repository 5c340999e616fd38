//! Payments a security reviewer would refuse or take back: Stripe events of the other `livemode`, full
//! refunds and lost disputes (Stripe `charge.refunded`, `charge.dispute.closed`; Razorpay
//! `refund.processed`) end the pass, partial refunds and won disputes do not, and every payment call runs as
//! `quota_payments`, not `quota_api`.

use aiquota_tests::{http::*, payments::*};
use serde_json::{json, Value};

const WHSEC: &str = "whsec_revoke_tests_0123456789";

fn checkout(id: &str, user: &str, intent: &str, livemode: bool) -> String {
    let session = checkout_session(user, 1900, intent, "paid");
    stripe_event(id, "checkout.session.completed", livemode, session)
}

/// A test-mode `charge.refunded` around `charge`.
fn refund_event(id: &str, charge: Value) -> String {
    stripe_event(id, "charge.refunded", false, charge)
}

/// A test-mode `charge.dispute.closed` around `dispute`.
fn dispute_event(id: &str, dispute: Value) -> String {
    stripe_event(id, "charge.dispute.closed", false, dispute)
}

/// A Stripe delivery of `payload`, signed now with [`WHSEC`].
async fn deliver(app: &TestApp, payload: &str) -> reqwest::Response {
    app.signed_stripe_webhook(payload, WHSEC).await
}

async fn payments(app: &TestApp) -> i64 {
    sql(&app.db)
        .await
        .query_one("SELECT count(*) FROM quota.payments", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stripe_events_of_the_other_livemode_are_refused() {
    let app = stripe_app("revoke_livemode_test", &[WHSEC], false).await;
    let res = deliver(&app, &checkout("evt_l1", "lena", "pi_Lena1", true)).await;
    let p = problem(res, 400).await;
    assert!(p["detail"].as_str().unwrap().contains("livemode"), "{p}");
    assert_eq!(
        payments(&app).await,
        0,
        "a live event applied on a test deployment"
    );
    assert_eq!(app.plan("lena").await, "free");
    let res = deliver(&app, &checkout("evt_l2", "lena", "pi_Lena2", false)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["result"], "applied");

    let live = stripe_app("revoke_livemode_live", &[WHSEC], true).await;
    let res = deliver(&live, &checkout("evt_l3", "lars", "pi_Lars1", false)).await;
    problem(res, 400).await;
    assert_eq!(
        payments(&live).await,
        0,
        "a test event applied on a live deployment"
    );
    let res = deliver(&live, &checkout("evt_l4", "lars", "pi_Lars2", true)).await;
    assert_eq!(body(res).await["result"], "applied");
    assert_eq!(live.plan("lars").await, "pro");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stripe_full_refunds_and_lost_disputes_end_the_pass() {
    let app = stripe_app("revoke_stripe", &[WHSEC], false).await;
    for (i, (user, intent)) in [("rita", "pi_Rita1"), ("dana", "pi_Dana1")]
        .iter()
        .enumerate()
    {
        let res = deliver(&app, &checkout(&format!("evt_pay{i}"), user, intent, false)).await;
        assert_eq!(body(res).await["result"], "applied");
        assert_eq!(app.plan(user).await, "pro");
    }
    let charge = |refunded: bool| {
        json!({"id": "ch_Rita1", "object": "charge", "payment_intent": "pi_Rita1", "amount": 1900,
               "amount_refunded": if refunded { 1900 } else { 500 }, "refunded": refunded})
    };
    // A partial refund keeps the pass.
    let res = deliver(&app, &refund_event("evt_r1", charge(false))).await;
    assert_eq!(body(res).await["result"], "ignored");
    assert_eq!(app.plan("rita").await, "pro");
    // The full refund ends it; a redelivery (new event id) changes nothing more.
    let res = deliver(&app, &refund_event("evt_r2", charge(true))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["result"], "revoked");
    assert_eq!(app.plan("rita").await, "free");
    let res = deliver(&app, &refund_event("evt_r3", charge(true))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.plan("rita").await, "free");

    let dispute = |status: &str| {
        json!({"id": "dp_Dana1", "object": "dispute", "charge": "ch_Dana1", "payment_intent": "pi_Dana1",
               "amount": 1900, "status": status})
    };
    let res = deliver(&app, &dispute_event("evt_d1", dispute("won"))).await;
    assert_eq!(body(res).await["result"], "ignored");
    assert_eq!(app.plan("dana").await, "pro");
    let res = deliver(&app, &dispute_event("evt_d2", dispute("lost"))).await;
    assert_eq!(body(res).await["result"], "revoked");
    assert_eq!(app.plan("dana").await, "free");

    // A refund of a payment this API never recorded: acknowledged, nothing changes.
    let other =
        json!({"id": "ch_X", "object": "charge", "payment_intent": "pi_Unknown", "refunded": true});
    let res = deliver(&app, &refund_event("evt_r4", other)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["result"], "ignored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_razorpay_refund_ends_the_pass() {
    let (app, mock, _, link) = razorpay_checkout("revoke_razorpay", "ravi").await;
    let link = mock.pay(&link.id, "pay_Ravi0001", 49900);
    let res = app
        .signed_razorpay_webhook(&link_paid_event(&link, "pay_Ravi0001"), "ev_paid")
        .await;
    assert_eq!(body(res).await["result"], "applied");
    assert_eq!(app.plan("ravi").await, "pro");
    let refund = |amount_refunded: i64| {
        json!({
            "entity": "event", "event": "refund.processed", "contains": ["refund", "payment"],
            "payload": {
                "refund": {"entity": {"id": "rfnd_1", "entity": "refund", "amount": amount_refunded,
                                      "payment_id": "pay_Ravi0001", "status": "processed"}},
                "payment": {"entity": {"id": "pay_Ravi0001", "entity": "payment", "amount": 49900,
                                       "amount_refunded": amount_refunded, "status": "refunded"}},
            },
            "created_at": now(),
        })
        .to_string()
    };
    let res = app
        .signed_razorpay_webhook(&refund(1000), "ev_rf_partial")
        .await;
    assert_eq!(body(res).await["result"], "ignored");
    assert_eq!(app.plan("ravi").await, "pro");
    let res = app
        .signed_razorpay_webhook(&refund(49900), "ev_rf_full")
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await["result"], "revoked");
    assert_eq!(app.plan("ravi").await, "free");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payment_calls_run_as_quota_payments() {
    let app = stripe_app("revoke_role", &[WHSEC], false).await;
    // Take the payment functions away from quota_api in this database: only quota_payments has them.
    sql(&app.db)
        .await
        .batch_execute(
            "REVOKE EXECUTE ON FUNCTION quota.record_payment(text, text, text, text, bigint, text, jsonb, text)
               FROM quota_api, PUBLIC;
             GRANT EXECUTE ON FUNCTION quota.record_payment(text, text, text, text, bigint, text, jsonb, text)
               TO quota_payments;
             GRANT USAGE ON SCHEMA quota TO quota_payments;",
        )
        .await
        .unwrap();
    let res = deliver(&app, &checkout("evt_role1", "rory", "pi_Rory1", false)).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    assert_eq!(app.plan("rory").await, "pro");
}

/// Installs, in this test's database only, what the extension's `record_payment` and `create_order` do for
/// an order already paid and for a pass that would demote a permanent plan (raise 55000). With an extension
/// that does it itself these triggers never fire first and change nothing.
async fn refuse_like_the_extension(db: &str) {
    sql(db)
        .await
        .batch_execute(
            "CREATE FUNCTION public.t_paid_once() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF EXISTS (SELECT 1 FROM quota.orders o WHERE o.reference_id = NEW.order_ref
                          AND o.status = 'paid' AND o.payment_id <> NEW.payment_id) THEN
                 RAISE EXCEPTION 'order % is already paid', NEW.order_ref USING ERRCODE = '55000';
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER t_paid_once BEFORE INSERT ON quota.payments
               FOR EACH ROW EXECUTE FUNCTION public.t_paid_once();
             CREATE FUNCTION public.t_no_demotion() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF EXISTS (SELECT 1 FROM quota.accounts a WHERE a.user_id = NEW.user_id
                          AND a.plan IN ('enterprise', 'admin') AND a.plan_expires_at IS NULL) THEN
                 RAISE EXCEPTION 'a pass would replace your permanent plan' USING ERRCODE = '55000';
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER t_no_demotion BEFORE INSERT ON quota.orders
               FOR EACH ROW EXECUTE FUNCTION public.t_no_demotion();",
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_payment_of_a_paid_order_or_a_demoting_pass_is_refused() {
    let (app, mock) = razorpay_app("revoke_paid_twice").await;
    refuse_like_the_extension(&app.db).await;
    let t = user_token("twice");
    let link = app.create_link(&t, "pro_week").await;
    let paid = mock.pay(&link.id, "pay_Twice1", 49900);
    let res = app
        .signed_razorpay_webhook(&link_paid_event(&paid, "pay_Twice1"), "ev_t1")
        .await;
    assert_eq!(body(res).await["result"], "applied");
    // A second payment of the same order: the webhook is acknowledged, nothing applied.
    let again = mock.pay(&link.id, "pay_Twice2", 49900);
    let res = app
        .signed_razorpay_webhook(
            &payment_captured_event(&again, "pay_Twice2", 49900),
            "ev_t2",
        )
        .await;
    assert_eq!(res.status(), 200);
    let ack = body(res).await;
    assert_eq!(ack["result"], "ignored", "{ack}");
    assert_eq!(payments(&app).await, 1);
    // ...and the browser callback for it is a 409 problem.
    let cb = link.callback("paid", "pay_Twice2");
    let res = app.verify(&t, &cb).await;
    problem(res, 409).await;
    assert_eq!(payments(&app).await, 1);

    // A pass on top of a permanent enterprise plan is refused before any order or link exists.
    sql(&app.db)
        .await
        .execute("SELECT quota.assign_plan('boss', 'enterprise')", &[])
        .await
        .unwrap();
    let created = mock.created().len();
    let res = app.request_link(&user_token("boss"), "pro_week").await;
    let p = problem(res, 409).await;
    assert!(p["detail"].as_str().unwrap().contains("permanent"), "{p}");
    assert_eq!(mock.created().len(), created, "no link at the provider");
    assert_eq!(app.plan("boss").await, "enterprise");
}
