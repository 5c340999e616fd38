//! What the fast path needs to know about one user's meter (plan, timezone, the one window and its limit),
//! kept per backend between calls.
//!
//! Reading the account, the plan's limits, the user's overrides and the burst setting on every call cost about a
//! quarter of a consume (docs/benchmarks.md). They change rarely, so each backend keeps them per user and meter,
//! and forgets everything the moment any of them may have changed:
//! - every statement that writes one of the tables they come from fires a statement trigger
//!   (`quota._meter_config_changed`, sql/cache.sql) that queues a relcache invalidation of that table.
//!   PostgreSQL delivers it to every backend of the database once the writing transaction commits (and to the
//!   writing backend at its next command), and `forget` below clears the cache;
//! - every lookup first accepts the invalidations that are pending, so a change committed before a call began
//!   is always seen, also by a call late in a long transaction;
//! - an entry is kept only when no invalidation arrived while it was read (a generation counter), and is read
//!   with a fresh snapshot taken after the invalidations were accepted, so it is never older than the last
//!   change the backend was told about;
//! - what was read in a transaction or subtransaction that aborts is forgotten (an account inserted and rolled
//!   back fires no trigger: accounts only invalidate on UPDATE, DELETE and TRUNCATE, because a new user's first
//!   call inserts one and must not flush every backend's cache; a user without an account is never cached);
//! - under REPEATABLE READ or SERIALIZABLE, whose snapshot may predate a change that was already announced, the
//!   cache is neither read nor filled;
//! - an entry describes one window: a call outside it, or after the plan expires, reads again.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::attempt::{micros, Micros};
use crate::error::{QuotaError, Result};
use crate::statements::Prepared;

/// More entries than this and the cache starts again from empty (a backend serving that many users at once
/// still reads each one at most once per refill).
const MAX_USERS: usize = 50_000;

/// The tables whose writes invalidate the cache (sql/cache.sql puts the trigger on each).
const TABLES: &[&std::ffi::CStr] = &[
    c"accounts",
    c"user_limits",
    c"plans",
    c"plan_limits",
    c"plan_bursts",
    c"meters",
];

/// What one user's meter looks like.
#[derive(Debug, Clone)]
pub struct MeterConfig {
    pub plan: String,
    pub tz: String,
    /// The account has no timezone: `tz` is the default one and holds only while `quota.default_timezone` does.
    tz_is_default: bool,
    expires_at: Option<Micros>,
    pub shape: Shape,
}

/// Whether the fast path can charge the meter.
#[derive(Debug, Clone)]
pub enum Shape {
    /// One calendar window and no burst limit: the fast path charges it (`fast_charge.sql`).
    OneWindow {
        period: String,
        /// None: unlimited.
        limit: Option<i64>,
        start: TimestampWithTimeZone,
        end: TimestampWithTimeZone,
    },
    /// Several windows, a burst limit, or a meter the plan does not limit: the general path decides.
    General,
}

impl MeterConfig {
    fn holds_at(&self, now: Micros, default_tz: &str) -> bool {
        let window = match &self.shape {
            Shape::OneWindow { start, end, .. } => micros(*start) <= now && now < micros(*end),
            Shape::General => true,
        };
        window
            && self.expires_at.is_none_or(|e| now < e)
            && (!self.tz_is_default || self.tz == default_tz)
    }
}

#[derive(Default)]
struct Cache {
    users: HashMap<String, HashMap<String, MeterConfig>>,
    /// The OIDs of `TABLES`, resolved when the cache is first filled (and again after any of them changed).
    tables: Vec<pg_sys::Oid>,
    /// Something was stored since the last commit: an abort must forget it.
    dirty: bool,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
    /// Bumped by every invalidation that clears the cache: a read that saw it change is not kept.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
}

/// Registers the invalidation and transaction callbacks; called once from `_PG_init`.
pub fn init() {
    // SAFETY: registering callbacks is allowed at library load; each only clears backend-local memory and never
    // raises an error.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(relation_changed), pg_sys::Datum::from(0));
        pg_sys::RegisterXactCallback(Some(transaction_ended), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(subtransaction_ended), std::ptr::null_mut());
    }
}

/// Empties the cache (and forgets the table OIDs when `tables`).
fn forget(tables: bool) {
    GENERATION.with(|g| g.set(g.get().wrapping_add(1)));
    CACHE.with(|c| {
        // try_borrow_mut: never fails in practice (no callback runs while a lookup holds the borrow); if it did,
        // the generation bump above already keeps the read in progress from being stored.
        if let Ok(mut c) = c.try_borrow_mut() {
            c.users.clear();
            c.dirty = false;
            if tables {
                c.tables.clear();
            }
        }
    });
}

unsafe extern "C-unwind" fn relation_changed(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    // InvalidOid: the backend missed invalidations (queue overflow) and must assume everything changed.
    let ours = relid == pg_sys::InvalidOid
        || CACHE.with(|c| c.try_borrow().map_or(true, |c| c.tables.contains(&relid)));
    if ours {
        forget(true);
    }
}

fn dirty() -> bool {
    CACHE.with(|c| c.try_borrow().map_or(true, |c| c.dirty))
}

unsafe extern "C-unwind" fn transaction_ended(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_ABORT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
            if dirty() =>
        {
            forget(false);
        }
        pg_sys::XactEvent::XACT_EVENT_COMMIT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT => {
            CACHE.with(|c| {
                if let Ok(mut c) = c.try_borrow_mut() {
                    c.dirty = false;
                }
            });
        }
        _ => {}
    }
}

unsafe extern "C-unwind" fn subtransaction_ended(
    event: pg_sys::SubXactEvent::Type,
    _sub: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB && dirty() {
        forget(false);
    }
}

/// The OIDs of `TABLES` in schema `quota` (syscache lookups, no SQL).
fn table_oids() -> Vec<pg_sys::Oid> {
    // SAFETY: plain catalogue lookups by name inside a transaction; missing objects give InvalidOid.
    unsafe {
        let ns = pg_sys::get_namespace_oid(c"quota".as_ptr(), true);
        TABLES
            .iter()
            .map(|t| pg_sys::get_relname_relid(t.as_ptr(), ns))
            .collect()
    }
}

/// Takes the invalidations that are waiting, then returns what the cache holds for `user`'s `meter` at `now`
/// (None on a miss, and always under REPEATABLE READ or SERIALIZABLE).
pub fn cached(
    user: &str,
    meter: &str,
    now: TimestampWithTimeZone,
    default_tz: &str,
) -> Option<MeterConfig> {
    // SAFETY: processes pending invalidations, as PostgreSQL does at every lock acquisition.
    unsafe { pg_sys::AcceptInvalidationMessages() };
    if !cacheable() {
        return None;
    }
    let now_us = micros(now);
    CACHE.with(|c| {
        c.borrow()
            .users
            .get(user)
            .and_then(|m| m.get(meter))
            .filter(|cfg| cfg.holds_at(now_us, default_tz))
            .cloned()
    })
}

fn cacheable() -> bool {
    // SAFETY: reads a backend-local integer.
    unsafe { pg_sys::XactIsoLevel < pg_sys::XACT_REPEATABLE_READ as i32 }
}

/// A mark to pass to `keep`: taken after `cached`, before the configuration is read.
pub fn generation() -> u64 {
    GENERATION.with(Cell::get)
}

/// Keeps `cfg`, read after `generation` returned `mark`, unless an invalidation arrived since (then the read may
/// predate a change) or the transaction's snapshot may be older than the invalidations taken.
pub fn keep(user: &str, meter: &str, cfg: &MeterConfig, mark: u64) {
    if !cacheable() || generation() != mark {
        return;
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.tables.is_empty() {
            c.tables = table_oids();
        }
        if c.users.len() >= MAX_USERS {
            c.users.clear();
        }
        c.dirty = true;
        c.users
            .entry(user.to_string())
            .or_default()
            .insert(meter.to_string(), cfg.clone());
    });
}

/// The configuration of `user`'s `meter` at `now`, from the cache or read (and kept); None when the user has no
/// account or the plan expired (the general path handles both).
pub fn lookup(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    user: &str,
    meter: &str,
    now: TimestampWithTimeZone,
    default_tz: &str,
) -> Result<Option<MeterConfig>> {
    if let Some(hit) = cached(user, meter, now, default_tz) {
        return Ok(Some(hit));
    }
    let mark = generation();
    let loaded = load(client, st, user, meter, now, default_tz)?;
    if let Some(cfg) = &loaded {
        keep(user, meter, cfg, mark);
    }
    Ok(loaded)
}

impl MeterConfig {
    /// A meter with one calendar window and no burst limit, as `fast_charge_cold.sql` read it.
    #[allow(clippy::too_many_arguments)]
    pub fn one_window(
        plan: String,
        tz: String,
        tz_is_default: bool,
        expires_at: Option<TimestampWithTimeZone>,
        period: String,
        limit: Option<i64>,
        start: TimestampWithTimeZone,
        end: TimestampWithTimeZone,
    ) -> MeterConfig {
        MeterConfig {
            plan,
            tz,
            tz_is_default,
            expires_at: expires_at.map(micros),
            shape: Shape::OneWindow {
                period,
                limit,
                start,
                end,
            },
        }
    }
}

/// Reads the configuration (`meter_config.sql`).
fn load(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    user: &str,
    meter: &str,
    now: TimestampWithTimeZone,
    default_tz: &str,
) -> Result<Option<MeterConfig>> {
    let table = client.update(
        &st.meter_config,
        None,
        &[user.into(), meter.into(), now.into(), default_tz.into()],
    )?;
    let rows = table.len();
    let mut cfg = None;
    for row in table {
        let plan = row
            .get::<String>(1)?
            .ok_or_else(|| QuotaError::Internal("meter config: plan".into()))?;
        let own_tz = row.get::<String>(2)?;
        let expires_at = row.get::<TimestampWithTimeZone>(3)?.map(micros);
        if expires_at.is_some_and(|e| e <= micros(now)) {
            return Ok(None);
        }
        let burst = row.get::<bool>(4)?.unwrap_or(false);
        let window = (
            row.get::<String>(5)?,
            row.get::<TimestampWithTimeZone>(7)?,
            row.get::<TimestampWithTimeZone>(8)?,
        );
        let shape = match window {
            (Some(period), Some(start), Some(end)) if rows == 1 && !burst => Shape::OneWindow {
                period,
                limit: row.get(6)?,
                start,
                end,
            },
            _ => Shape::General,
        };
        cfg = Some(MeterConfig {
            plan,
            tz_is_default: own_tz.is_none(),
            tz: own_tz.unwrap_or_else(|| default_tz.to_string()),
            expires_at,
            shape,
        });
        if rows > 1 {
            break;
        }
    }
    Ok(cfg)
}
