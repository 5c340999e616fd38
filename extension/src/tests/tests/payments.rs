//! Payments: recorded once per provider and payment id, the plan assigned in the same transaction, passes
//! extended rather than shortened, mismatches recorded without an upgrade.

#[pgrx::pg_schema]
mod tests {
    use crate::tests::support::*;
    use pgrx::prelude::*;

    fn pay(args: &str) -> (String, String, Option<String>) {
        let sql = format!(
            "SELECT outcome, status, plan_expires_at::text FROM quota.record_payment({args})"
        );
        Spi::connect(|c| {
            let row = c
                .select(&sql, None, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .first();
            (
                row.get::<String>(1).unwrap().unwrap(),
                row.get::<String>(2).unwrap().unwrap(),
                row.get::<String>(3).unwrap(),
            )
        })
    }

    #[pg_test]
    fn a_payment_upgrades_once_and_a_second_pass_extends_the_first() {
        run("SET LOCAL TimeZone = 'UTC'");
        at("2026-03-10 12:00:00+00");
        for _ in 0..10 {
            consume("'pay1'");
        }
        assert!(!consume("'pay1'").0);
        let order = one::<String>(
            "SELECT reference_id FROM quota.create_order('razorpay', 'pay1', 'pro_week')",
        )
        .unwrap();
        assert!(order.len() <= 40);
        run(&format!("SELECT quota.attach_order('{order}', 'plink_1')"));
        let applied = pay(&format!(
        "'razorpay', 'pay_1', 'pay1', 'pro_week', 49900, 'INR', '{{\"event\": \"callback\"}}', '{order}'"
    ));
        assert_eq!(
            applied,
            (
                "applied".into(),
                "applied".into(),
                Some("2026-03-17 12:00:00+00".into())
            )
        );
        // The very next call sees the new limit.
        assert!(consume("'pay1'").0);
        // The webhook for the same payment: nothing changes.
        let again = pay("'razorpay', 'pay_1', 'pay1', 'pro_week', 49900, 'INR'");
        assert_eq!(again.0, "duplicate");
        assert_eq!(again.2.as_deref(), Some("2026-03-17 12:00:00+00"));
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.audit_log WHERE action = 'assign_plan' AND target = 'pay1'"), Some(1));
        assert_eq!(
            one::<String>(&format!(
                "SELECT status FROM quota.orders WHERE reference_id = '{order}'"
            ))
            .as_deref(),
            Some("paid")
        );
        // A second pass bought before the first ends adds to it.
        at("2026-03-12 12:00:00+00");
        let second = pay("'stripe', 'cs_2', 'pay1', 'pro_week', 49900, 'INR'");
        assert_eq!(second.2.as_deref(), Some("2026-03-24 12:00:00+00"));
        assert_eq!(
        one::<String>("SELECT actor FROM quota.audit_log WHERE action = 'assign_plan' ORDER BY id DESC LIMIT 1").as_deref(),
        Some("stripe:cs_2")
    );
    }

    #[pg_test]
    fn a_wrong_amount_or_currency_is_recorded_without_an_upgrade() {
        at("2026-03-10 12:00:00+00");
        assert_eq!(
            pay("'razorpay', 'pay_m', 'pay2', 'pro_week', 100, 'INR'").0,
            "mismatch"
        );
        assert_eq!(
            pay("'razorpay', 'pay_c', 'pay2', 'pro_week', 49900, 'USD'").0,
            "mismatch"
        );
        assert_eq!(
            one::<String>("SELECT plan FROM quota.check('pay2')").as_deref(),
            Some("free")
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.payments WHERE status = 'mismatch'"),
            Some(2)
        );
        // Retrying the same mismatched payment does not turn it into an upgrade.
        let again = pay("'razorpay', 'pay_m', 'pay2', 'pro_week', 49900, 'INR'");
        assert_eq!(
            (again.0.as_str(), again.1.as_str()),
            ("duplicate", "mismatch")
        );
        assert_eq!(
            one::<String>("SELECT plan FROM quota.check('pay2')").as_deref(),
            Some("free")
        );
    }

    #[pg_test]
    fn orders_and_payments_reject_bad_input() {
        at("2026-03-10 12:00:00+00");
        expect_sqlstate(
            "PERFORM quota.create_order('razorpay', 'pay3', 'nope')",
            "P0002",
        );
        expect_sqlstate(
            "PERFORM quota.create_order('Bad Provider', 'pay3', 'pro_week')",
            "22023",
        );
        expect_sqlstate(
            "PERFORM quota.record_payment('razorpay', NULL, 'pay3', 'pro_week', 1, 'INR')",
            "22004",
        );
        expect_sqlstate(
            "PERFORM quota.record_payment('razorpay', 'p', 'pay3', 'nope', 1, 'INR')",
            "P0002",
        );
        let order = one::<String>(
            "SELECT reference_id FROM quota.create_order('razorpay', 'pay3', 'pro_week')",
        )
        .unwrap();
        // An order of another user or product cannot be paid by this payment.
        expect_sqlstate(
        &format!("PERFORM quota.record_payment('razorpay', 'p', 'pay4', 'pro_week', 49900, 'INR', '{{}}', '{order}')"),
        "22023",
    );
        run(&format!("SELECT quota.attach_order('{order}', 'plink_3')"));
        expect_sqlstate(
            &format!("PERFORM quota.attach_order('{order}', 'plink_other')"),
            "55000",
        );
        assert_eq!(
            one::<String>(
                "SELECT user_id FROM quota.find_order('razorpay', p_provider_ref => 'plink_3')"
            )
            .as_deref(),
            Some("pay3")
        );
        expect_sqlstate(
            "PERFORM quota.find_order('razorpay', 'aq_missing')",
            "P0002",
        );
        expect_sqlstate(
            "PERFORM quota.define_product('x', 'pro', '1 day', 100, 'inr')",
            "22023",
        );
        expect_sqlstate(
            "PERFORM quota.define_product('x', 'pro', '-1 day', 100, 'INR')",
            "22023",
        );
        run("SELECT quota.define_product('pro_day', 'pro', '1 day', 999, 'USD', false)");
        expect_sqlstate(
            "PERFORM quota.create_order('stripe', 'pay3', 'pro_day')",
            "P0002",
        );
        assert_eq!(one::<i64>("SELECT count(*) FROM quota.payments"), Some(0));
    }

    #[pg_test]
    fn an_order_keeps_the_price_it_was_made_at() {
        at("2026-03-10 12:00:00+00");
        let order = one::<String>(
            "SELECT reference_id FROM quota.create_order('razorpay', 'pay6', 'pro_week')",
        )
        .unwrap();
        run("SELECT quota.define_product('pro_week', 'pro', '7 days', 59900, 'INR')");
        let paid = pay(&format!(
            "'razorpay', 'pay_6', 'pay6', 'pro_week', 49900, 'INR', '{{}}', '{order}'"
        ));
        assert_eq!(paid.0, "applied");
        // Without an order, the current price applies.
        assert_eq!(
            pay("'razorpay', 'pay_7', 'pay7', 'pro_week', 49900, 'INR'").0,
            "mismatch"
        );
    }

    #[pg_test]
    fn a_permanent_product_assigns_without_expiry() {
        at("2026-03-10 12:00:00+00");
        run("SELECT quota.define_product('enterprise_forever', 'enterprise', NULL, 100000, 'USD')");
        let applied = pay("'stripe', 'cs_e', 'pay5', 'enterprise_forever', 100000, 'USD'");
        assert_eq!((applied.0.as_str(), applied.2), ("applied", None));
        assert_eq!(
            one::<String>("SELECT plan FROM quota.check('pay5')").as_deref(),
            Some("enterprise")
        );
    }

    #[pg_test]
    fn a_pass_never_replaces_a_better_permanent_plan() {
        run("SET LOCAL TimeZone = 'UTC'");
        at("2026-03-10 12:00:00+00");
        run("SELECT quota.create_plan('enterprise', 'Enterprise')");
        run("SELECT quota.assign_plan('ent1', 'enterprise')");
        // Refused before anyone pays.
        expect_sqlstate(
            "PERFORM quota.create_order('razorpay', 'ent1', 'pro_week')",
            "55000",
        );
        // A payment that arrives anyway (no order, or an order from before) is recorded and changes nothing.
        let kept = pay("'stripe', 'cs_ent', 'ent1', 'pro_week', 49900, 'INR'");
        assert_eq!(
            (kept.0.as_str(), kept.1.as_str(), kept.2),
            ("kept", "kept", None)
        );
        assert_eq!(
            one::<String>("SELECT plan FROM quota.check('ent1')").as_deref(),
            Some("enterprise")
        );
        assert_eq!(
            one::<String>("SELECT status FROM quota.payments WHERE payment_id = 'cs_ent'")
                .as_deref(),
            Some("kept")
        );
        // A user on the default plan, or on a pass of the same plan, can still buy one.
        one::<String>(
            "SELECT reference_id FROM quota.create_order('razorpay', 'free1', 'pro_week')",
        )
        .unwrap();
    }

    #[pg_test]
    fn an_order_is_paid_once() {
        at("2026-03-10 12:00:00+00");
        let order = one::<String>(
            "SELECT reference_id FROM quota.create_order('razorpay', 'once1', 'pro_week')",
        )
        .unwrap();
        let first = pay(&format!(
            "'razorpay', 'pay_a', 'once1', 'pro_week', 49900, 'INR', '{{}}', '{order}'"
        ));
        assert_eq!(first.0, "applied");
        // The same payment again is a duplicate; another payment of the same order is refused and extends nothing.
        assert_eq!(
            pay(&format!(
                "'razorpay', 'pay_a', 'once1', 'pro_week', 49900, 'INR', '{{}}', '{order}'"
            ))
            .0,
            "duplicate"
        );
        expect_sqlstate(
        &format!("PERFORM quota.record_payment('razorpay', 'pay_b', 'once1', 'pro_week', 49900, 'INR', '{{}}', '{order}')"),
        "55000",
    );
        assert_eq!(
            one::<String>(
                "SELECT plan_expires_at::text FROM quota.accounts WHERE user_id = 'once1'"
            ),
            first.2
        );
        assert_eq!(
            one::<i64>("SELECT count(*) FROM quota.payments WHERE user_id = 'once1'"),
            Some(1)
        );
    }

    #[pg_test]
    fn a_refund_or_a_lost_dispute_takes_the_pass_back() {
        run("SET LOCAL TimeZone = 'UTC'");
        at("2026-03-10 12:00:00+00");
        pay("'stripe', 'cs_r1', 'ref1', 'pro_week', 49900, 'INR'");
        pay("'stripe', 'cs_r2', 'ref1', 'pro_week', 49900, 'INR'");
        assert_eq!(
            one::<String>(
                "SELECT plan_expires_at::text FROM quota.accounts WHERE user_id = 'ref1'"
            )
            .as_deref(),
            Some("2026-03-24 12:00:00+00")
        );
        // One of two passes refunded: a week comes off.
        let revoke = |id: &str, reason: &str| {
            one::<String>(&format!(
                "SELECT outcome || ' ' || plan || ' ' || coalesce(plan_expires_at::text, '-') \
             FROM quota.revoke_payment('stripe', '{id}', '{reason}')"
            ))
            .unwrap()
        };
        assert_eq!(
            revoke("cs_r1", "refund"),
            "revoked pro 2026-03-17 12:00:00+00"
        );
        // Delivered twice: nothing more changes.
        assert_eq!(
            revoke("cs_r1", "refund"),
            "duplicate pro 2026-03-17 12:00:00+00"
        );
        // The other lost in a dispute: nothing remains, so the user is back on the default plan now.
        assert_eq!(revoke("cs_r2", "dispute_lost"), "revoked free -");
        assert_eq!(
            one::<String>("SELECT plan FROM quota.check('ref1')").as_deref(),
            Some("free")
        );
        assert_eq!(
            one::<i64>(
                "SELECT count(*) FROM quota.payments WHERE user_id = 'ref1' AND status = 'revoked'"
            ),
            Some(2)
        );
        expect_sqlstate(
            "PERFORM quota.revoke_payment('stripe', 'cs_nope', 'refund')",
            "P0002",
        );
        expect_sqlstate(
            "PERFORM quota.revoke_payment('stripe', 'cs_r1', NULL)",
            "22004",
        );
    }
}
