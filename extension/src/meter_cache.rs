//! What the fast path needs to know about one user's meter (plan, timezone, the one window and its limit),
//! kept per backend between calls.
//!
//! Reading the account, the plan's limits, the user's overrides and the burst setting on every call cost about a
//! quarter of a consume (docs/benchmarks.md). They change rarely, so each backend keeps them, in three parts so
//! that a user the backend has not served yet costs one small read, not the whole configuration: per user (plan,
//! timezone, expiry, whether any override exists), per plan (its limits, and which meters have a burst limit),
//! and per period and timezone (the current window). It forgets everything the moment any of it may have
//! changed:
//! - every statement that writes one of the tables they come from fires a statement trigger
//!   (`quota._meter_config_changed`, sql/cache.sql) that queues a relcache invalidation of that table.
//!   PostgreSQL delivers it to every backend of the database once the writing transaction commits (and to the
//!   writing backend at its next command), and `forget` below clears the cache;
//! - every lookup first accepts the invalidations that are pending, so a change committed before a call began
//!   is always seen, also by a call late in a long transaction;
//! - a part is kept only when no invalidation arrived since the lookup began (a generation counter), and is read
//!   with a fresh snapshot taken after the invalidations were accepted, so it is never older than the last
//!   change the backend was told about;
//! - what was read in a transaction or subtransaction that aborts is forgotten (an account inserted and rolled
//!   back fires no trigger: accounts only invalidate on UPDATE, DELETE and TRUNCATE, because a new user's first
//!   call inserts one and must not flush every backend's cache; a user without an account is never cached);
//! - under REPEATABLE READ or SERIALIZABLE, whose snapshot may predate a change that was already announced, the
//!   cache is neither read nor filled;
//! - a window is kept only while it is current, and a plan only until it expires.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

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

/// What one user's meter looks like, assembled from the cached parts.
#[derive(Debug, Clone)]
pub struct MeterConfig {
    pub plan: String,
    pub shape: Shape,
}

/// Whether the fast path can charge the meter.
#[derive(Debug, Clone)]
pub enum Shape {
    /// One calendar window and no burst limit: the fast path charges it (`fast_charge.sql`).
    OneWindow {
        /// Shared with the cached plan: the fast path runs without copying it.
        period: Rc<str>,
        /// None: unlimited.
        limit: Option<i64>,
        start: TimestampWithTimeZone,
        end: TimestampWithTimeZone,
    },
    /// Several windows, a burst limit, or a meter the plan does not limit: the general path decides.
    General,
}

/// The account's part.
#[derive(Debug, Clone)]
struct UserPart {
    plan: String,
    /// None: the account has no timezone of its own (the default applies).
    tz: Option<String>,
    expires_at: Option<Micros>,
    /// Any per-user limit exists: the general path decides (overrides are rare).
    overrides: bool,
}

/// One limit row of a plan, and whether the plan also sets a burst limit on its meter.
#[derive(Debug)]
struct PlanLimit {
    meter: String,
    period: Rc<str>,
    /// None: unlimited.
    limit: Option<i64>,
    burst: bool,
}

/// Every limit row of a plan, shared by the users on the plan: the fast paths of consume, reserve and check take
/// a meter's one row from it, status takes them all.
type PlanLimits = Rc<[PlanLimit]>;

/// A window's start and end.
type Span = (TimestampWithTimeZone, TimestampWithTimeZone);

#[derive(Default)]
struct Cache {
    /// Shared with each lookup, which would otherwise copy the plan and timezone names on every call.
    users: HashMap<String, Rc<UserPart>>,
    plans: HashMap<String, PlanLimits>,
    /// period -> timezone -> the current window: looked up by two `&str`s, with no key built per call.
    windows: HashMap<String, HashMap<String, Span>>,
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
            c.plans.clear();
            c.windows.clear();
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

fn cacheable() -> bool {
    // SAFETY: reads a backend-local integer.
    unsafe { pg_sys::XactIsoLevel < pg_sys::XACT_REPEATABLE_READ as i32 }
}

fn generation() -> u64 {
    GENERATION.with(Cell::get)
}

/// Stores into the cache when allowed: cacheable, and no invalidation since `mark` (then the read may predate a
/// change).
fn keep(mark: u64, store: impl FnOnce(&mut Cache)) {
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
        store(&mut c);
    });
}

/// One lookup: pending invalidations taken, the generation mark, and whether the cache may be used.
struct Lookup {
    mark: u64,
    use_cache: bool,
    now_us: Micros,
}

impl Lookup {
    fn begin(now: TimestampWithTimeZone) -> Lookup {
        // SAFETY: processes pending invalidations, as PostgreSQL does at every lock acquisition.
        unsafe { pg_sys::AcceptInvalidationMessages() };
        Lookup {
            mark: generation(),
            use_cache: cacheable(),
            now_us: micros(now),
        }
    }

    fn cached<T>(&self, f: impl FnOnce(&Cache) -> Option<T>) -> Option<T> {
        if self.use_cache {
            CACHE.with(|c| f(&c.borrow()))
        } else {
            None
        }
    }

    /// The account's part, unless the user has no account or the plan expired.
    fn account(
        &self,
        client: &mut SpiClient<'_>,
        st: &Prepared,
        user: &str,
    ) -> Result<Option<Rc<UserPart>>> {
        let account = match self.cached(|c| c.users.get(user).cloned()) {
            Some(a) => a,
            None => {
                let Some(a) = load_user(client, st, user)? else {
                    return Ok(None);
                };
                let a = Rc::new(a);
                keep(self.mark, |c| {
                    c.users.insert(user.to_string(), a.clone());
                });
                a
            }
        };
        Ok(account
            .expires_at
            .is_none_or(|e| self.now_us < e)
            .then_some(account))
    }

    /// The current window of `period` in `tz`.
    fn window(
        &self,
        client: &mut SpiClient<'_>,
        st: &Prepared,
        period: &str,
        tz: &str,
        now: TimestampWithTimeZone,
    ) -> Result<Span> {
        let current = |w: &Span| micros(w.0) <= self.now_us && self.now_us < micros(w.1);
        if let Some(w) = self
            .cached(|c| c.windows.get(period)?.get(tz).copied())
            .filter(current)
        {
            return Ok(w);
        }
        let w = load_window(client, st, period, tz, now)?;
        keep(self.mark, |c| {
            c.windows
                .entry(period.to_string())
                .or_default()
                .insert(tz.to_string(), w);
        });
        Ok(w)
    }

    /// Every limit row of `plan`.
    fn plan(&self, client: &mut SpiClient<'_>, st: &Prepared, plan: &str) -> Result<PlanLimits> {
        if let Some(l) = self.cached(|c| c.plans.get(plan).cloned()) {
            return Ok(l);
        }
        let l = load_plan(client, st, plan)?;
        keep(self.mark, |c| {
            c.plans.insert(plan.to_string(), l.clone());
        });
        Ok(l)
    }
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
    let look = Lookup::begin(now);
    let Some(account) = look.account(client, st, user)? else {
        return Ok(None);
    };
    let general = || {
        Some(MeterConfig {
            plan: account.plan.clone(),
            shape: Shape::General,
        })
    };
    if account.overrides {
        return Ok(general());
    }
    // The fast path's case: the plan sets exactly one limit on the meter and no burst limit.
    let plan = look.plan(client, st, &account.plan)?;
    let mut rows = plan.iter().filter(|l| l.meter == meter);
    let (Some(only), None) = (rows.next(), rows.next()) else {
        return Ok(general());
    };
    if only.burst {
        return Ok(general());
    }
    let tz = account.tz.as_deref().unwrap_or(default_tz);
    let (start, end) = look.window(client, st, &only.period, tz, now)?;
    Ok(Some(MeterConfig {
        plan: account.plan.clone(),
        shape: Shape::OneWindow {
            period: only.period.clone(),
            limit: only.limit,
            start,
            end,
        },
    }))
}

/// One limit of a plan as status lists it, with its current window.
pub struct StatusLimit {
    pub meter: String,
    pub period: String,
    /// None: unlimited.
    pub limit: Option<i64>,
    pub start: TimestampWithTimeZone,
    pub end: TimestampWithTimeZone,
}

/// The plan and every limit it sets (on every meter) with its current window, for `status`; None when the user
/// has no account, the plan expired or the user has overrides (the general read handles those).
pub fn status_limits(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    user: &str,
    now: TimestampWithTimeZone,
    default_tz: &str,
) -> Result<Option<(String, Vec<StatusLimit>)>> {
    let look = Lookup::begin(now);
    let Some(account) = look.account(client, st, user)? else {
        return Ok(None);
    };
    if account.overrides {
        return Ok(None);
    }
    let tz = account.tz.as_deref().unwrap_or(default_tz);
    let limits = look.plan(client, st, &account.plan)?;
    let mut out = Vec::with_capacity(limits.len());
    for l in limits.iter() {
        let (start, end) = look.window(client, st, &l.period, tz, now)?;
        out.push(StatusLimit {
            meter: l.meter.clone(),
            period: l.period.to_string(),
            limit: l.limit,
            start,
            end,
        });
    }
    Ok(Some((account.plan.clone(), out)))
}

/// Every limit row of a plan (`plan_limits.sql`).
fn load_plan(client: &mut SpiClient<'_>, st: &Prepared, plan: &str) -> Result<PlanLimits> {
    let table = client.update(&st.plan_limits, None, &[plan.into()])?;
    let mut out = Vec::with_capacity(table.len());
    for row in table {
        if let (Some(meter), Some(period)) = (row.get::<String>(1)?, row.get::<String>(2)?) {
            out.push(PlanLimit {
                meter,
                period: period.into(),
                limit: row.get::<i64>(3)?,
                burst: row.get::<bool>(4)?.unwrap_or(true),
            });
        }
    }
    Ok(out.into())
}

/// The account's part (`user_config.sql`); None when the user has no account.
fn load_user(client: &mut SpiClient<'_>, st: &Prepared, user: &str) -> Result<Option<UserPart>> {
    let table = client.update(&st.user_config, None, &[user.into()])?;
    if table.is_empty() {
        return Ok(None);
    }
    let row = table.first();
    Ok(Some(UserPart {
        plan: row
            .get::<String>(1)?
            .ok_or_else(|| QuotaError::Internal("user config: plan".into()))?,
        tz: row.get::<String>(2)?,
        expires_at: row.get::<TimestampWithTimeZone>(3)?.map(micros),
        overrides: row.get::<bool>(4)?.unwrap_or(true),
    }))
}

/// The window of `period` in `tz` that contains `now` (`window.sql`).
fn load_window(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    period: &str,
    tz: &str,
    now: TimestampWithTimeZone,
) -> Result<(TimestampWithTimeZone, TimestampWithTimeZone)> {
    let table = client.update(&st.window, None, &[period.into(), tz.into(), now.into()])?;
    let row = table.first();
    let missing = || QuotaError::Internal(format!("no {period} window in {tz}"));
    Ok((
        row.get::<TimestampWithTimeZone>(1)?.ok_or_else(missing)?,
        row.get::<TimestampWithTimeZone>(2)?.ok_or_else(missing)?,
    ))
}
