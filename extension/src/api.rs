//! The C entry points behind the SQL functions declared in `sql/engine.sql`.
//!
//! `sql = false`: the SQL declarations (defaults, SECURITY DEFINER, pinned search_path, comments, grants) are
//! written by hand as reviewable SQL; these wrappers only validate, call the engine and raise typed errors.

use pgrx::prelude::*;
use pgrx::JsonB;

use crate::engine::{self, Request};
use crate::error::or_raise;
use crate::{decision, gucs, validate};

/// `quota.consume(p_user, p_meter, p_amount, p_idempotency_key, p_metadata)`.
#[pg_extern(sql = false)]
fn consume(
    p_user: Option<&str>,
    p_meter: Option<&str>,
    p_amount: Option<i64>,
    p_idempotency_key: Option<&str>,
    p_metadata: Option<JsonB>,
) -> pgrx::composite_type!('static, "quota.decision") {
    or_raise((|| {
        validate::metadata(&p_metadata)?;
        let req = Request {
            user: validate::user(p_user)?,
            meter: validate::meter(p_meter)?,
            amount: validate::amount(p_amount)?,
            key: validate::idempotency_key(p_idempotency_key)?,
            metadata: p_metadata.map(|JsonB(v)| v),
        };
        engine::consume(req)?.into_tuple()
    })())
}

/// `quota.check(p_user, p_meter, p_amount)`.
#[pg_extern(sql = false)]
fn check(
    p_user: Option<&str>,
    p_meter: Option<&str>,
    p_amount: Option<i64>,
) -> pgrx::composite_type!('static, "quota.decision") {
    or_raise((|| {
        let user = validate::user(p_user)?;
        let meter = validate::meter(p_meter)?;
        let amount = validate::amount(p_amount)?;
        engine::check(user, meter, amount)?.into_tuple()
    })())
}

/// `quota.status(p_user)`: one row per meter and window.
#[pg_extern(sql = false)]
#[allow(clippy::type_complexity)]
fn status(
    p_user: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(meter, String),
        name!(period, String),
        name!(used, i64),
        name!(limit, Option<i64>),
        name!(remaining, Option<i64>),
        name!(percent, Option<f64>),
        name!(status, String),
        name!(resets_at, TimestampWithTimeZone),
        name!(plan, String),
    ),
> {
    let rows = or_raise((|| {
        let user = validate::user(p_user)?;
        engine::status(user)
    })());
    TableIterator::new(rows.into_iter().map(|r| {
        let w = r.window;
        let percent = w.limit.map(|l| {
            if l == 0 {
                100.0
            } else {
                (w.used as f64 * 1000.0 / l as f64).round() / 10.0
            }
        });
        (
            r.meter,
            w.period,
            w.used,
            w.limit,
            w.limit.map(|l| (l - w.used).max(0)),
            percent,
            decision::status_label(w.used, w.limit).to_string(),
            w.resets_at,
            r.plan,
        )
    }))
}

/// `quota._ensure_account(p_user)`: the default plan for a user without an account; true when it created one.
#[pg_extern(sql = false)]
fn ensure_account(p_user: Option<&str>) -> bool {
    or_raise((|| {
        let user = validate::user(p_user)?;
        engine::ensure(user)
    })())
}

/// `quota._validate_user(p_user)`: the user id if valid, else the same error consume would raise.
#[pg_extern(sql = false)]
fn validate_user(p_user: Option<&str>) -> String {
    or_raise(validate::user(p_user).map(str::to_string))
}

/// `quota.default_plan()`: the plan new users get, as aiquota reads `quota.default_plan`.
#[pg_extern(sql = false)]
fn default_plan() -> String {
    gucs::default_plan()
}

/// `quota.default_timezone()`: the timezone of accounts without one, as aiquota reads `quota.default_timezone`.
#[pg_extern(sql = false)]
fn default_timezone() -> String {
    gucs::default_timezone()
}
