//! The engine's SQL, one statement per file beside this one, prepared once per backend and kept
//! (`SPI_keepplan`).
//!
//! Each `.sql` file is a complete statement with its parameters described at the top: paste it into
//! `PREPARE name(types) AS ...` in psql to run it by hand. No statement is built from input: every value is a
//! bound parameter. The shared rules (which plan and limits apply, how a row is recounted) are SQL functions in
//! `sql/limits.sql` that PostgreSQL inlines. Kept plans are revalidated by PostgreSQL when the objects they use
//! change, so they survive `ALTER EXTENSION ... UPDATE` and even a drop and re-create.

use std::cell::OnceCell;

use pgrx::pg_sys::{PgBuiltInOids, PgOid};
use pgrx::spi::{OwnedPreparedStatement, SpiClient};

use crate::error::{QuotaError, Result};

/// Every statement, prepared.
pub struct Prepared {
    pub user_config: OwnedPreparedStatement,
    pub window: OwnedPreparedStatement,
    pub plan_limits: OwnedPreparedStatement,
    pub user_counters: OwnedPreparedStatement,
    pub fast_charge: OwnedPreparedStatement,
    pub fast_hold: OwnedPreparedStatement,
    pub fast_check: OwnedPreparedStatement,
    pub lock: OwnedPreparedStatement,
    pub charge: OwnedPreparedStatement,
    pub hold: OwnedPreparedStatement,
    pub deny: OwnedPreparedStatement,
    pub serialize_counters: OwnedPreparedStatement,
    pub unseen_counters: OwnedPreparedStatement,
    pub add_counters: OwnedPreparedStatement,
    pub move_windows: OwnedPreparedStatement,
    pub fold_rollup: OwnedPreparedStatement,
    pub expire_holds: OwnedPreparedStatement,
    pub read: OwnedPreparedStatement,
    pub ensure_account: OwnedPreparedStatement,
    pub meter_and_plan_exist: OwnedPreparedStatement,
    pub claim_key: OwnedPreparedStatement,
    pub load_key: OwnedPreparedStatement,
    pub store_decision: OwnedPreparedStatement,
    pub drop_key: OwnedPreparedStatement,
    pub record_key: OwnedPreparedStatement,
    pub close_reservation: OwnedPreparedStatement,
    pub lock_reservation: OwnedPreparedStatement,
    pub release_hold: OwnedPreparedStatement,
    pub settle_reservation: OwnedPreparedStatement,
    pub record_denial: OwnedPreparedStatement,
    pub credit_balance: OwnedPreparedStatement,
    pub spend_credits: OwnedPreparedStatement,
    pub lock_burst: OwnedPreparedStatement,
    pub add_burst: OwnedPreparedStatement,
    pub advance_burst: OwnedPreparedStatement,
}

thread_local! {
    static PREPARED: OnceCell<Prepared> = const { OnceCell::new() };
}

fn oid(o: PgBuiltInOids) -> PgOid {
    PgOid::BuiltIn(o)
}

fn prepare(client: &SpiClient<'_>) -> Result<Prepared> {
    let text = oid(PgBuiltInOids::TEXTOID);
    let int8 = oid(PgBuiltInOids::INT8OID);
    let jsonb = oid(PgBuiltInOids::JSONBOID);
    let tstz = oid(PgBuiltInOids::TIMESTAMPTZOID);
    let texts = oid(PgBuiltInOids::TEXTARRAYOID);
    let boolean = oid(PgBuiltInOids::BOOLOID);
    let uuid = oid(PgBuiltInOids::UUIDOID);
    // Mutating statements run with a fresh snapshot per statement (READ COMMITTED), which load_key relies on to
    // see the row a concurrent call with the same key committed while this one waited for the key's turn
    // (key_turn.rs), and lock on the latest counter rows;
    // read-only ones reuse the caller's snapshot.
    let keep = |sql: &str, args: &[PgOid]| -> Result<OwnedPreparedStatement> {
        Ok(client.prepare_mut(sql, args)?.keep())
    };
    let keep_read_only = |sql: &str, args: &[PgOid]| -> Result<OwnedPreparedStatement> {
        Ok(client.prepare(sql, args)?.keep())
    };
    Ok(Prepared {
        // Not read-only: a fresh snapshot, taken after the cache accepted pending invalidations.
        user_config: keep(include_str!("user_config.sql"), &[text])?,
        window: keep(include_str!("window.sql"), &[text, text, tstz])?,
        plan_limits: keep(include_str!("plan_limits.sql"), &[text])?,
        user_counters: keep_read_only(include_str!("user_counters.sql"), &[text])?,
        fast_charge: keep(
            include_str!("fast_charge.sql"),
            &[text, text, int8, text, jsonb, tstz, text, tstz, int8, int8],
        )?,
        fast_check: keep_read_only(
            include_str!("fast_check.sql"),
            &[text, text, text, tstz, tstz],
        )?,
        fast_hold: keep(
            include_str!("fast_hold.sql"),
            &[text, text, int8, tstz, tstz, text, tstz, int8],
        )?,
        lock: keep(include_str!("lock.sql"), &[text, text, tstz, text, text])?,
        charge: keep(
            include_str!("charge.sql"),
            &[text, text, int8, text, jsonb, tstz, int8, text],
        )?,
        hold: keep(include_str!("hold.sql"), &[text, text, int8, tstz, tstz])?,
        deny: keep(
            include_str!("deny.sql"),
            &[text, text, texts, tstz, boolean],
        )?,
        serialize_counters: keep(include_str!("serialize_counters.sql"), &[text, text])?,
        unseen_counters: keep(include_str!("unseen_counters.sql"), &[text, text, texts])?,
        add_counters: keep(include_str!("add_counters.sql"), &[text, text, texts, tstz])?,
        move_windows: keep(
            include_str!("move_windows.sql"),
            &[text, text, tstz, text, text, texts],
        )?,
        fold_rollup: keep(include_str!("fold_rollup.sql"), &[text, text, tstz])?,
        expire_holds: keep(include_str!("expire_holds.sql"), &[text, text, tstz])?,
        read: keep_read_only(include_str!("read.sql"), &[text, text, tstz, text, text])?,
        ensure_account: keep(include_str!("ensure_account.sql"), &[text, text])?,
        meter_and_plan_exist: keep_read_only(
            include_str!("meter_and_plan_exist.sql"),
            &[text, text],
        )?,
        claim_key: keep(
            include_str!("claim_key.sql"),
            &[text, text, text, int8, jsonb, tstz],
        )?,
        load_key: keep(include_str!("load_key.sql"), &[text, text])?,
        store_decision: keep(include_str!("store_decision.sql"), &[text, text, jsonb])?,
        drop_key: keep(include_str!("drop_key.sql"), &[text, text])?,
        record_key: keep(
            include_str!("record_key.sql"),
            &[text, text, text, int8, jsonb, tstz, jsonb],
        )?,
        close_reservation: keep(
            include_str!("close_reservation.sql"),
            &[uuid, text, text, int8, int8, tstz, text],
        )?,
        lock_reservation: keep(include_str!("lock_reservation.sql"), &[uuid, text])?,
        release_hold: keep(include_str!("release_hold.sql"), &[text, text, int8])?,
        settle_reservation: keep(
            include_str!("settle_reservation.sql"),
            &[text, uuid, text, int8, int8, tstz],
        )?,
        record_denial: keep(include_str!("record_denial.sql"), &[text, text, tstz])?,
        credit_balance: keep(include_str!("credit_balance.sql"), &[text, text, tstz])?,
        spend_credits: keep(include_str!("spend_credits.sql"), &[text, text, tstz, int8])?,
        lock_burst: keep(include_str!("lock_burst.sql"), &[text, text])?,
        add_burst: keep(include_str!("add_burst.sql"), &[text, text])?,
        advance_burst: keep(include_str!("advance_burst.sql"), &[text, text, tstz])?,
    })
}

/// Runs `f` with the prepared statements, preparing them on the backend's first call.
pub fn with<'c, R>(
    client: &mut SpiClient<'c>,
    f: impl FnOnce(&mut SpiClient<'c>, &Prepared) -> Result<R>,
) -> Result<R> {
    PREPARED.with(|cell| {
        if cell.get().is_none() {
            crate::version::check(client)?;
            let prepared = prepare(client)?;
            // Cannot be set already: a backend runs one call at a time and `prepare` does not re-enter.
            let _ = cell.set(prepared);
        }
        match cell.get() {
            Some(p) => f(client, p),
            None => Err(QuotaError::Internal("statements not prepared".into())),
        }
    })
}
