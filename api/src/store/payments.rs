//! Orders and payments: `quota.create_order`, `attach_order`, `find_order`, `record_payment` and
//! `revoke_payment`, each in a transaction as `quota_payments` (see [`crate::db::TxRole`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::db::{role_tx, role_tx_one, Db, DbError, Retry, TxRole};

/// What `quota.record_payment` answered.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Recorded {
    /// `applied` (plan assigned now), `duplicate` (this payment was recorded before; nothing changed) or
    /// `mismatch` (recorded now, amount or currency differ from the product, plan unchanged).
    pub outcome: String,
    /// The payment's recorded status: `applied` or `mismatch` (also on a duplicate).
    pub status: String,
    /// The payment's provider (`razorpay`, `stripe`).
    pub provider: String,
    /// The provider's payment id.
    pub payment_id: String,
    /// The plan the payment assigned; null for a mismatch.
    pub plan: Option<String>,
    /// When that plan ends; null for a permanent plan or a mismatch.
    pub plan_expires_at: Option<DateTime<Utc>>,
}

impl Recorded {
    /// A row of `quota.record_payment` for payment `p`.
    fn from_row(row: &Row, p: &Payment<'_>) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            outcome: row.try_get("outcome")?,
            status: row.try_get("status")?,
            provider: p.provider.to_string(),
            payment_id: p.payment_id.to_string(),
            plan: row.try_get("plan")?,
            plan_expires_at: row.try_get("plan_expires_at")?,
        })
    }
}

/// One payment to record; `user` and `product` come from the order or the provider's signed payload.
pub struct Payment<'a> {
    /// `razorpay` or `stripe`.
    pub provider: &'static str,
    /// The provider's payment id: the dedupe key.
    pub payment_id: &'a str,
    /// Who paid.
    pub user: &'a str,
    /// What was bought (`quota.products.key`).
    pub product: &'a str,
    /// Amount paid, smallest currency unit.
    pub amount: i64,
    /// ISO 4217, upper case.
    pub currency: &'a str,
    /// The verified provider data, stored on the payment row.
    pub raw: serde_json::Value,
    /// Our order reference, when there is one.
    pub order: Option<&'a str>,
}

/// A row of `quota.orders`.
#[derive(Clone, Debug)]
pub struct Order {
    /// Our reference (`aq_` + 32 hex), sent to the provider.
    pub reference_id: String,
    /// Who ordered.
    pub user_id: String,
    /// What.
    pub product: String,
    /// Price, smallest currency unit.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
    /// The provider's id for it (a payment link id).
    pub provider_ref: Option<String>,
}

impl Order {
    fn from_row(r: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            reference_id: r.try_get("reference_id")?,
            user_id: r.try_get("user_id")?,
            product: r.try_get("product")?,
            amount: r.try_get("amount")?,
            currency: r.try_get("currency")?,
            provider_ref: r.try_get("provider_ref")?,
        })
    }
}

/// Why a pass is being taken back.
#[derive(Clone, Copy, Debug)]
pub enum Revocation {
    /// The payment was refunded in full.
    Refund,
    /// The customer's dispute (chargeback) was lost.
    DisputeLost,
}

impl Revocation {
    pub fn reason(self) -> &'static str {
        match self {
            Revocation::Refund => "refund",
            Revocation::DisputeLost => "dispute_lost",
        }
    }
}

/// `quota.record_payment` (as `quota_payments`): records the payment id once and assigns the plan in the
/// same transaction. Retrying is safe: a repeat is a `duplicate`.
pub async fn record(db: &Db, p: &Payment<'_>) -> Result<Recorded, DbError> {
    let row = db
        .run(Retry::Safe, |c| async move {
            role_tx_one(
                c,
                TxRole::Payments,
                "SELECT * FROM quota.record_payment($1::text, $2::text, $3::text, $4::text, $5::bigint, \
                 $6::text, $7::jsonb, $8::text)",
                &[
                    &p.provider,
                    &p.payment_id,
                    &p.user,
                    &p.product,
                    &p.amount,
                    &p.currency,
                    &p.raw,
                    &p.order,
                ],
            )
            .await
        })
        .await?;
    Ok(Recorded::from_row(&row, p)?)
}

/// `quota.find_order` (as `quota_payments`): P0002 ([`DbError::NotFound`]) when no order matches.
pub async fn find_order(
    db: &Db,
    provider: &str,
    reference_id: Option<&str>,
    provider_ref: Option<&str>,
) -> Result<Order, DbError> {
    db.run(Retry::Safe, |c| async move {
        let row = role_tx_one(
            c,
            TxRole::Payments,
            "SELECT * FROM quota.find_order($1::text, $2::text, $3::text)",
            &[&provider, &reference_id, &provider_ref],
        )
        .await?;
        Order::from_row(&row)
    })
    .await
}

/// `quota.revoke_payment` (as `quota_payments`): ends or shortens the pass the payment bought; idempotent.
/// P0002 ([`DbError::NotFound`]) for a payment never recorded.
pub async fn revoke(
    db: &Db,
    provider: &'static str,
    payment_id: &str,
    why: Revocation,
    actor: &str,
) -> Result<(), DbError> {
    let reason = why.reason();
    db.run(Retry::Safe, |c| async move {
        role_tx(
            c,
            TxRole::Payments,
            "SELECT FROM quota.revoke_payment($1::text, $2::text, $3::text, $4::text)",
            &[&provider, &payment_id, &reason, &actor],
        )
        .await
    })
    .await
    .map(drop)
}

/// `quota.create_order` (as `quota_payments`): a new order of `product` for `user`. Not retried after a lost
/// connection: a second order would be harmless but pointless.
pub async fn create_order(
    db: &Db,
    provider: &str,
    user: &str,
    product: &str,
) -> Result<Order, DbError> {
    db.run(Retry::IfNotApplied, |c| async move {
        let row = role_tx_one(
            c,
            TxRole::Payments,
            "SELECT * FROM quota.create_order($1::text, $2::text, $3::text)",
            &[&provider, &user, &product],
        )
        .await?;
        Order::from_row(&row)
    })
    .await
}

/// `quota.attach_order` (as `quota_payments`): stores the provider's id (a payment link id) on the order;
/// idempotent for the same id.
pub async fn attach_order(db: &Db, reference: &str, provider_ref: &str) -> Result<(), DbError> {
    db.run(Retry::Safe, |c| async move {
        role_tx_one(
            c,
            TxRole::Payments,
            "SELECT reference_id FROM quota.attach_order($1::text, $2::text)",
            &[&reference, &provider_ref],
        )
        .await
    })
    .await?;
    Ok(())
}
