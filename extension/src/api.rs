//! The C entry points behind the SQL functions declared in `sql/engine.sql`.
//!
//! `sql = false`: the SQL declarations (defaults, SECURITY DEFINER, comments, grants) are written by hand as
//! reviewable SQL; these wrappers only validate and call the engine, with the search path pinned
//! (`search_path::pinned`). Each returns `Result<_, ErrorReport>`: a `QuotaError` becomes a report with its own
//! SQLSTATE and hint at this boundary (`From<QuotaError> for ErrorReport`), and pgrx raises it.

// The error is raised the moment the wrapper returns (pgrx turns it into ereport), so its size never travels.
#![allow(clippy::result_large_err)]

use pgrx::prelude::*;
use pgrx::JsonB;

use crate::engine::{self, Request};
use pgrx::pg_sys::panic::ErrorReport;

use crate::error::QuotaError;
use crate::types::Row;
use crate::{clock, decision, gucs, reservations, search_path, validate};

/// `quota.consume(p_user, p_meter, p_amount, p_idempotency_key, p_metadata)`.
#[pg_extern(sql = false)]
fn consume(
    p_user: Option<&str>,
    p_meter: Option<&str>,
    p_amount: Option<i64>,
    p_idempotency_key: Option<&str>,
    p_metadata: Option<JsonB>,
) -> Result<Row, ErrorReport> {
    validate::metadata(&p_metadata)?;
    let req = Request {
        user: validate::user(p_user)?,
        meter: validate::meter(p_meter)?,
        amount: validate::amount(p_amount)?,
        key: validate::idempotency_key(p_idempotency_key)?,
        metadata: p_metadata.map(|JsonB(v)| v),
        hold_until: None,
        burst: true,
        force: false,
        rollup: true,
    };
    Ok(search_path::pinned(|| engine::consume(req))?.into_tuple()?)
}

/// `quota.reserve(p_user, p_meter, p_amount, p_ttl, p_idempotency_key)`.
#[pg_extern(sql = false)]
fn reserve(
    p_user: Option<&str>,
    p_meter: Option<&str>,
    p_amount: Option<i64>,
    p_ttl: Option<Interval>,
    p_idempotency_key: Option<&str>,
) -> Result<Row, ErrorReport> {
    // Reserve keys live beside consume keys under a prefix, so one key never means both.
    let key = validate::idempotency_key(p_idempotency_key)?.map(|k| format!("reserve:{k}"));
    let req = Request {
        user: validate::user(p_user)?,
        meter: validate::meter(p_meter)?,
        amount: validate::amount(p_amount)?,
        key: key.as_deref(),
        metadata: None,
        hold_until: Some(reservations::expiry(p_ttl)?),
        burst: true,
        force: false,
        rollup: true,
    };
    Ok(search_path::pinned(|| engine::consume(req))?.into_reservation_tuple()?)
}

/// `quota.commit(p_reservation, p_actual, p_user, p_overage)`.
#[pg_extern(sql = false)]
fn commit(
    p_reservation: Option<pgrx::Uuid>,
    p_actual: Option<i64>,
    p_user: Option<&str>,
    p_overage: Option<bool>,
) -> Result<Row, ErrorReport> {
    let id = p_reservation.ok_or(QuotaError::Null("reservation"))?;
    let actual = reservations::actual(p_actual)?;
    let owner = p_user.map(|u| validate::user(Some(u))).transpose()?;
    let overage = p_overage.ok_or(QuotaError::Null("overage"))?;
    Ok(
        search_path::pinned(|| reservations::settle(id, owner, Some(actual), overage))?
            .into_tuple()?,
    )
}

/// `quota.release(p_reservation, p_user)`.
#[pg_extern(sql = false)]
fn release(p_reservation: Option<pgrx::Uuid>, p_user: Option<&str>) -> Result<Row, ErrorReport> {
    let id = p_reservation.ok_or(QuotaError::Null("reservation"))?;
    let owner = p_user.map(|u| validate::user(Some(u))).transpose()?;
    Ok(search_path::pinned(|| reservations::settle(id, owner, None, false))?.into_tuple()?)
}

/// `quota.check(p_user, p_meter, p_amount)`.
#[pg_extern(sql = false)]
fn check(
    p_user: Option<&str>,
    p_meter: Option<&str>,
    p_amount: Option<i64>,
) -> Result<Row, ErrorReport> {
    let user = validate::user(p_user)?;
    let meter = validate::meter(p_meter)?;
    let amount = validate::amount(p_amount)?;
    Ok(search_path::pinned(|| engine::check(user, meter, amount))?.into_tuple()?)
}

/// `quota.status(p_user)`: one row per meter and window.
#[pg_extern(sql = false)]
#[allow(clippy::type_complexity)]
fn status(
    p_user: Option<&str>,
) -> Result<
    TableIterator<
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
            name!(held, i64),
        ),
    >,
    ErrorReport,
> {
    let user = validate::user(p_user)?;
    let rows = search_path::pinned(|| engine::status(user))?;
    Ok(TableIterator::new(rows.into_iter().map(|r| {
        let w = r.window;
        let remaining = w.remaining();
        let status = decision::status_label(w.committed(), w.limit).to_string();
        let percent = w.limit.map(|l| {
            if l == 0 {
                100.0
            } else {
                (w.committed() as f64 * 1000.0 / l as f64).round() / 10.0
            }
        });
        (
            r.meter,
            w.period,
            w.used,
            w.limit,
            remaining,
            percent,
            status,
            w.resets_at,
            r.plan,
            w.held,
        )
    })))
}

/// `quota._ensure_account(p_user)`: the default plan for a user without an account; true when it created one.
#[pg_extern(sql = false)]
fn ensure_account(p_user: Option<&str>) -> Result<bool, ErrorReport> {
    let user = validate::user(p_user)?;
    Ok(search_path::pinned(|| engine::ensure(user))?)
}

/// `quota._validate_user(p_user)`: the user id if valid, else the same error consume would raise.
#[pg_extern(sql = false)]
fn validate_user(p_user: Option<&str>) -> Result<String, ErrorReport> {
    Ok(validate::user(p_user)?.to_string())
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

/// `quota.now()`: the clock for SQL functions, so they agree with consume about which window is current.
#[pg_extern(sql = false, stable, parallel_safe)]
fn quota_now() -> Result<TimestampWithTimeZone, ErrorReport> {
    Ok(clock::now()?)
}

/// `quota._forget_meter_config(p_table)`: queues an invalidation that makes every backend forget its cached meter
/// configuration at commit (see `meter_cache`).
#[pg_extern(sql = false)]
fn forget_meter_config(p_table: pg_sys::Oid) {
    // SAFETY: queues an invalidation message for an existing relation (the trigger's own table).
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(p_table) }
}
