//! The quota engine: consume (all or nothing, under row locks), check and status.
//!
//! Every decision is made under the locks of the counter rows it writes (`lock.sql`), so concurrent calls for one
//! user are serialised by PostgreSQL's row locks and calls for different users never touch each other's rows.
//! The common case (one calendar window on the meter, the amount fits) is one statement, `fast_charge.sql`, whose
//! UPDATE decides under the row lock and writes only when the amount fits. Otherwise the general path locks
//! (`lock.sql`), decides in `attempt::next_step`, and writes once, or takes the one step the decision names
//! (create the account, move a window, recompute holds, offer credits, lock the burst state) and decides again.
//! Nothing is ever written to be taken back.

use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::JsonB;

use crate::attempt::{self, micros, Ask, Context, Locked, Mode, Step};
use crate::burst::Bucket;
use crate::decision::{Decision, Window};
use crate::error::{QuotaError, Result};
use crate::meter_cache::{self, Shape};
use crate::statements::{self, Prepared};
use crate::{clock, creation_turn, events, gucs, key_turn, period, spi_row};

/// What one call asks for, already validated.
pub struct Request<'a> {
    pub user: &'a str,
    pub meter: &'a str,
    pub amount: i64,
    pub key: Option<&'a str>,
    pub metadata: Option<serde_json::Value>,
    /// Some: reserve (hold the amount until then) instead of consuming it.
    pub hold_until: Option<TimestampWithTimeZone>,
    /// Whether the burst limit applies: not to the charge of a commit, whose call was admitted at reserve.
    pub burst: bool,
    /// Charge whatever the limits say: the charge of a commit with overage (the upstream already spent it).
    pub force: bool,
    /// Whether a final denial counts in the daily rollup: a client's call does, the charge of a commit does not.
    pub rollup: bool,
}

impl Request<'_> {
    fn ask(&self) -> Ask {
        Ask {
            amount: self.amount,
            mode: if self.force {
                Mode::Force
            } else if self.hold_until.is_some() {
                Mode::Hold
            } else {
                Mode::Consume
            },
            burst: self.burst,
        }
    }
}

/// The most steps one call can need: account, two window moves, holds, credits, burst state twice, and the
/// write; more means rows keep changing under a lock we hold, which is a bug.
const MAX_STEPS: usize = 12;

/// Seconds from `now` until `at`, rounded up so "retry after" never lands a moment too early.
fn seconds_between(now: TimestampWithTimeZone, at: TimestampWithTimeZone) -> i64 {
    let us = micros(at) - micros(now);
    (us.max(0) + 999_999) / 1_000_000
}

/// Consumes `amount` from every window of the meter, or from none. With a key: a repeat of an allowed call
/// replays its decision, and a call with the key of another request is refused (`key_turn.rs`).
pub fn consume(req: Request<'_>) -> Result<Decision> {
    let now = clock::now()?;
    Spi::connect_mut(|client| {
        statements::with(client, |client, st| {
            let Some(key) = req.key else {
                return consume_with(client, st, &req, now);
            };
            key_turn::take(req.user, key);
            // READ COMMITTED: read the key now (a snapshot newer than the turn) and record it after an allowed
            // charge. REPEATABLE READ or SERIALIZABLE: claim it first, as the snapshot may predate the turn.
            let claimed = if key_turn::snapshot_per_statement() {
                if let Some(replay) = replay(client, st, &req, key)? {
                    return Ok(replay);
                }
                false
            } else {
                if !claim_key(client, st, &req, key, now)? {
                    let stored = replay(client, st, &req, key)?;
                    return stored.ok_or_else(|| QuotaError::Invalid(in_use(key)));
                }
                true
            };
            let decision = consume_with(client, st, &req, now)?;
            if decision.allowed && !claimed {
                insert_key(
                    client,
                    &st.record_key,
                    &req,
                    key,
                    now,
                    Some(&decision.to_json()),
                )?;
            } else if decision.allowed {
                let json = decision.to_json();
                client.update(
                    &st.store_decision,
                    None,
                    &[req.user.into(), key.into(), crate::jsonb::jsonb_arg(&json)],
                )?;
            } else if claimed {
                client.update(&st.drop_key, None, &[req.user.into(), key.into()])?;
            }
            Ok(decision)
        })
    })
}

/// The error for a key whose row has no decision yet: claimed earlier in this same transaction and not finished.
fn in_use(key: &str) -> String {
    format!("idempotency key \"{key}\" is in use by a request that has not finished")
}

/// Claims the key under REPEATABLE READ or SERIALIZABLE (`claim_key.sql`): whether it was claimed.
fn claim_key(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    req: &Request<'_>,
    key: &str,
    now: TimestampWithTimeZone,
) -> Result<bool> {
    Ok(!insert_key(client, &st.claim_key, req, key, now, None)?.is_empty())
}

/// Inserts the key's row with the request: `claim_key.sql` (no decision yet) or `record_key.sql` (its decision).
fn insert_key<'conn>(
    client: &mut SpiClient<'conn>,
    statement: &pgrx::spi::OwnedPreparedStatement,
    req: &Request<'_>,
    key: &str,
    now: TimestampWithTimeZone,
    decision: Option<&serde_json::Value>,
) -> Result<pgrx::spi::SpiTupleTable<'conn>> {
    let mut args = vec![
        req.user.into(),
        key.into(),
        req.meter.into(),
        req.amount.into(),
        crate::jsonb::optional_arg(req.metadata.as_ref()),
        now.into(),
    ];
    args.extend(decision.map(crate::jsonb::jsonb_arg));
    Ok(client.update(statement, None, &args)?)
}

/// The decision stored under the key (same request), an error (another request under the key), or None (no row:
/// no allowed call with this key has committed).
fn replay(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    req: &Request<'_>,
    key: &str,
) -> Result<Option<Decision>> {
    let stored = client.update(&st.load_key, None, &[req.user.into(), key.into()])?;
    if stored.is_empty() {
        return Ok(None);
    }
    let row = stored.first();
    let meter: Option<String> = row.get(1)?;
    let amount: Option<i64> = row.get(2)?;
    let metadata: Option<JsonB> = row.get(3)?;
    let decision: Option<JsonB> = row.get(4)?;
    let same_metadata = metadata.map(|m| m.0) == req.metadata;
    if meter.as_deref() != Some(req.meter) || amount != Some(req.amount) || !same_metadata {
        return Err(QuotaError::IdempotencyMismatch(key.to_string()));
    }
    match decision {
        Some(JsonB(v)) => Decision::from_json(&v).map(Some),
        // Claimed earlier in this same transaction and not finished: only possible by re-entering consume.
        None => Err(QuotaError::Invalid(in_use(key))),
    }
}

/// Locks the meter's counter rows and reads what applies (`lock.sql`).
fn lock(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    req: &Request<'_>,
    now: TimestampWithTimeZone,
    default_plan: &str,
    default_tz: &str,
) -> Result<Locked> {
    let table = client.update(
        &st.lock,
        None,
        &[
            req.user.into(),
            req.meter.into(),
            now.into(),
            default_plan.into(),
            default_tz.into(),
        ],
    )?;
    Locked::read(table)
}

/// Consumes (or holds, or force-charges) without an idempotency key, on an open SPI client: lock, decide, and
/// either write once or take the one step the decision needs and decide again.
pub fn consume_with(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    req: &Request<'_>,
    now: TimestampWithTimeZone,
) -> Result<Decision> {
    let (ask, now_us) = (req.ask(), micros(now));
    if ask.mode != Mode::Force {
        if let Some(decision) =
            gucs::with_default_timezone(|default_tz| fast(client, st, req, now, default_tz, 0))?
        {
            return Ok(decision);
        }
    }
    // Only the general path needs them (the plan for a user without an account, or whose plan expired).
    let default_tz = gucs::default_timezone();
    let default_plan = gucs::default_plan();
    let mut ctx = Context::default();
    let mut locked = lock(client, st, req, now, &default_plan, &default_tz)?;
    for _ in 0..MAX_STEPS {
        match attempt::next_step(&locked, ask, &ctx, now_us) {
            Step::Write { credits, tat } => {
                return write(client, st, req, now, &locked, &ctx, credits, tat);
            }
            Step::Deny { refusing, burst } => {
                return deny(client, st, req, now, &locked, &ctx, &refusing, burst);
            }
            Step::NotInPlan => {
                let decision = not_in_plan(client, st, req.meter, &locked.plan)?;
                if req.rollup {
                    client.update(
                        &st.record_denial,
                        None,
                        &[req.user.into(), req.meter.into(), now.into()],
                    )?;
                }
                return Ok(decision);
            }
            Step::OfferCredits => {
                // The rows stay locked, so the decision is simply made again with the balance.
                ctx.credits = Some(credit_balance(client, st, req.user, req.meter, now)?);
                continue;
            }
            Step::LockBurst => {
                ctx.burst_tat = lock_burst(client, st, req)?;
                ctx.burst_at = Some(micros(clock::arrival(now)?));
                continue;
            }
            Step::FoldRollup => {
                client.update(
                    &st.fold_rollup,
                    None,
                    &[req.user.into(), req.meter.into(), now.into()],
                )?;
            }
            Step::CreateAccount => {
                ensure_account(client, st, req.user, &default_plan)?;
            }
            Step::ExpireHolds => {
                ctx.holds_expired = true;
                client.update(
                    &st.expire_holds,
                    None,
                    &[req.user.into(), req.meter.into(), now.into()],
                )?;
            }
            Step::MoveWindows(periods) => {
                let missing: Vec<String> = locked
                    .windows
                    .iter()
                    .filter(|(l, c)| c.is_none() && periods.contains(&l.period))
                    .map(|(l, _)| l.period.clone())
                    .collect();
                if !missing.is_empty() && !add_counters(client, st, req, now, &locked, missing)? {
                    // A row appeared that this call does not hold: the turn was given back; lock again.
                    locked = lock(client, st, req, now, &default_plan, &default_tz)?;
                    continue;
                }
                client.update(
                    &st.move_windows,
                    None,
                    &[
                        req.user.into(),
                        req.meter.into(),
                        now.into(),
                        default_plan.as_str().into(),
                        default_tz.as_str().into(),
                        periods.into(),
                    ],
                )?;
            }
        }
        // The step changed rows: lock and read them again.
        locked = lock(client, st, req, now, &default_plan, &default_tz)?;
    }
    Err(QuotaError::Internal(format!(
        "no decision for user \"{}\" after {MAX_STEPS} steps",
        req.user
    )))
}

/// Creates the missing counter rows in the turn of `creation_turn` (kept until the transaction ends). False, with
/// nothing created and the turn given back, when a row this call did not lock in `lock.sql` has appeared since:
/// the holder of the turn must not wait for a row lock, so the caller locks the rows again first.
fn add_counters(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    req: &Request<'_>,
    now: TimestampWithTimeZone,
    locked: &Locked,
    missing: Vec<String>,
) -> Result<bool> {
    let turn = creation_turn::take(client, st, req.user, req.meter)?;
    let unseen: i64 = client
        .update(
            &st.unseen_counters,
            None,
            &[
                req.user.into(),
                req.meter.into(),
                locked.locked_periods.clone().into(),
            ],
        )?
        .first()
        .get(1)?
        .unwrap_or(0);
    if unseen > 0 {
        creation_turn::give_back(turn);
        return Ok(false);
    }
    client.update(
        &st.add_counters,
        None,
        &[
            req.user.into(),
            req.meter.into(),
            missing.into(),
            now.into(),
        ],
    )?;
    Ok(true)
}

/// The windows of a decision: every current window, as it stands after `added` was charged (or held).
fn windows(locked: &Locked, now: TimestampWithTimeZone, added: i64, hold: bool) -> Vec<Window> {
    locked
        .current()
        .map(|(l, c)| {
            let (used, held) = match hold {
                true => (c.used, c.held + added),
                false => (c.used + added, c.held),
            };
            counted_window(l.period.clone(), l.limit, (used, held, c.carry), l.end, now)
        })
        .collect()
}

/// The moment the burst limit measured this call at (`Context::burst_at`), or `now` before it was locked.
fn burst_now(ctx: &Context, now: TimestampWithTimeZone) -> TimestampWithTimeZone {
    ctx.burst_at
        .and_then(|at| TimestampWithTimeZone::try_from(at).ok())
        .unwrap_or(now)
}

/// The burst limit as a window of the decision, for the state `tat`.
fn burst_window(
    locked: &Locked,
    tat: Option<i64>,
    now: TimestampWithTimeZone,
    amount: i64,
    denied: bool,
) -> Result<Option<Window>> {
    match (locked.burst, tat) {
        (Some(b), Some(tat)) => Ok(Some(
            Bucket::new(b.emission_us, b.burst, tat).window(now, amount, denied)?,
        )),
        _ => Ok(None),
    }
}

/// The fast path of a consume or reserve: Some decision when it charged or held, None when the general path
/// must decide (nothing was written then). A commit passes its hold as `release`, freed in the same write.
pub fn fast(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    req: &Request<'_>,
    now: TimestampWithTimeZone,
    default_tz: &str,
    release: i64,
) -> Result<Option<Decision>> {
    let Some(cfg) = meter_cache::lookup(client, st, req.user, req.meter, now, default_tz)? else {
        return Ok(None);
    };
    let Shape::OneWindow {
        period,
        limit,
        start,
        end,
    } = &cfg.shape
    else {
        return Ok(None);
    };
    let table = match req.hold_until {
        // fast_hold.sql
        Some(until) => client.update(
            &st.fast_hold,
            None,
            &[
                req.user.into(),
                req.meter.into(),
                req.amount.into(),
                until.into(),
                now.into(),
                (&**period).into(),
                (*start).into(),
                (*limit).into(),
            ],
        )?,
        // fast_charge.sql
        None => client.update(
            &st.fast_charge,
            None,
            &[
                req.user.into(),
                req.meter.into(),
                req.amount.into(),
                req.key.into(),
                crate::jsonb::optional_arg(req.metadata.as_ref()),
                now.into(),
                (&**period).into(),
                (*start).into(),
                (*limit).into(),
                release.into(),
            ],
        )?,
    };
    let Some([used, held, carry]) = spi_row::int8_columns(&table)? else {
        return Ok(None);
    };
    let reservation_id = match req.hold_until {
        Some(_) => table.first().get::<pgrx::Uuid>(4)?,
        None => None,
    };
    // The row as written is the window as the decision reports it (after this call's charge or hold).
    let written = (used.unwrap_or(0), held.unwrap_or(0), carry.unwrap_or(0));
    let window = counted_window(period.to_string(), *limit, written, *end, now);
    Ok(Some(allowed_from(
        req,
        &cfg.plan,
        vec![window],
        None,
        (0, 0),
        reservation_id,
    )))
}

/// Writes an allowed call once (charge.sql or hold.sql, then credits and burst state) and builds its decision.
#[allow(clippy::too_many_arguments)]
fn write(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    req: &Request<'_>,
    now: TimestampWithTimeZone,
    locked: &Locked,
    ctx: &Context,
    credits: i64,
    tat: Option<i64>,
) -> Result<Decision> {
    let mut reservation_id = None;
    match req.hold_until {
        Some(until) => {
            let table = client.update(
                &st.hold,
                None,
                &[
                    req.user.into(),
                    req.meter.into(),
                    req.amount.into(),
                    until.into(),
                    now.into(),
                ],
            )?;
            reservation_id = table.first().get::<pgrx::Uuid>(1)?;
        }
        None => {
            client.update(
                &st.charge,
                None,
                &[
                    req.user.into(),
                    req.meter.into(),
                    req.amount.into(),
                    req.key.into(),
                    crate::jsonb::optional_arg(req.metadata.as_ref()),
                    now.into(),
                    credits.into(),
                    locked.tz.as_str().into(),
                ],
            )?;
        }
    }
    if credits > 0 {
        client.update(
            &st.spend_credits,
            None,
            &[
                req.user.into(),
                req.meter.into(),
                now.into(),
                credits.into(),
            ],
        )?;
    }
    if let Some(tat) = tat {
        let at = TimestampWithTimeZone::try_from(tat)
            .map_err(|e| QuotaError::Internal(format!("burst time: {e}")))?;
        client.update(
            &st.advance_burst,
            None,
            &[req.user.into(), req.meter.into(), at.into()],
        )?;
    }
    allowed(req, now, locked, ctx, credits, tat, reservation_id)
}

/// The decision of an allowed call, from the rows as they were before it (and announces status crossings).
fn allowed(
    req: &Request<'_>,
    now: TimestampWithTimeZone,
    locked: &Locked,
    ctx: &Context,
    credits: i64,
    tat: Option<i64>,
    reservation_id: Option<pgrx::Uuid>,
) -> Result<Decision> {
    let windows = windows(locked, now, req.amount, req.hold_until.is_some());
    // The burst limit explains an allowed decision only when it is the meter's only limit.
    let burst = match windows.is_empty() {
        true => burst_window(locked, tat, burst_now(ctx, now), req.amount, false)?,
        false => None,
    };
    let balance = ctx.credits.unwrap_or(0);
    Ok(allowed_from(
        req,
        &locked.plan,
        windows,
        burst,
        (balance, credits),
        reservation_id,
    ))
}

/// The decision of an allowed call from its calendar windows as they stand after it (and `burst`, the burst
/// limit's window when it is the meter's only limit); announces the status crossings of the calendar windows.
/// `credits`: the balance offered and the part of the amount paid from it.
fn allowed_from(
    req: &Request<'_>,
    plan: &str,
    mut windows: Vec<Window>,
    burst: Option<Window>,
    (balance, credits): (i64, i64),
    reservation_id: Option<pgrx::Uuid>,
) -> Decision {
    let hold = req.hold_until.is_some();
    if !hold {
        events::crossings(req.user, req.meter, req.amount, &windows);
    }
    windows.extend(burst);
    let mut decision = Decision::from_windows(req.meter, plan, req.amount, balance, &windows);
    decision.credits_used = credits;
    if decision.allowed && hold {
        decision.reservation_id = reservation_id;
        decision.expires_at = req.hold_until;
    }
    decision
}

/// Writes a final denial once (deny.sql) and builds its decision.
#[allow(clippy::too_many_arguments)]
fn deny(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    req: &Request<'_>,
    now: TimestampWithTimeZone,
    locked: &Locked,
    ctx: &Context,
    refusing: &[String],
    burst: bool,
) -> Result<Decision> {
    client.update(
        &st.deny,
        None,
        &[
            req.user.into(),
            req.meter.into(),
            refusing.to_vec().into(),
            now.into(),
            req.rollup.into(),
        ],
    )?;
    let mut windows = windows(locked, now, 0, req.hold_until.is_some());
    for w in windows.iter_mut() {
        w.denied = refusing.contains(&w.period);
    }
    if burst || windows.is_empty() {
        let at = burst_now(ctx, now);
        windows.extend(burst_window(locked, ctx.burst_tat, at, req.amount, burst)?);
    }
    let balance = ctx.credits.unwrap_or(0);
    Ok(Decision::from_windows(
        req.meter,
        &locked.plan,
        req.amount,
        balance,
        &windows,
    ))
}

/// Locks the user's burst state, creating it (a full bucket) when missing; its theoretical arrival time.
fn lock_burst(client: &mut SpiClient<'_>, st: &Prepared, req: &Request<'_>) -> Result<Option<i64>> {
    for _ in 0..2 {
        let table = client.update(&st.lock_burst, None, &[req.user.into(), req.meter.into()])?;
        if !table.is_empty() {
            let tat = table.first().get::<TimestampWithTimeZone>(1)?;
            return Ok(Some(tat.map_or(i64::MIN, micros)));
        }
        client.update(&st.add_burst, None, &[req.user.into(), req.meter.into()])?;
    }
    Err(QuotaError::Internal(
        "burst state could not be created".into(),
    ))
}

/// Gives `user` the default plan unless it has an account; true when it created one.
pub fn ensure(user: &str) -> Result<bool> {
    let default_plan = gucs::default_plan();
    Spi::connect_mut(|client| {
        statements::with(client, |client, st| {
            ensure_account(client, st, user, &default_plan)
        })
    })
}

fn ensure_account(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    user: &str,
    default_plan: &str,
) -> Result<bool> {
    let table = client.update(
        &st.ensure_account,
        None,
        &[user.into(), default_plan.into()],
    )?;
    let row = table.first();
    let created = row.get::<bool>(1)?.unwrap_or(false);
    if !row.get::<bool>(2)?.unwrap_or(false) {
        return Err(QuotaError::UnknownPlan(default_plan.to_string()));
    }
    Ok(created)
}

/// The plan has no limit for the meter: a denial if the meter is declared, an error if it is not.
fn not_in_plan(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    meter: &str,
    plan: &str,
) -> Result<Decision> {
    let table = client.select(&st.meter_and_plan_exist, None, &[meter.into(), plan.into()])?;
    let row = table.first();
    if !row.get::<bool>(1)?.unwrap_or(false) {
        return Err(QuotaError::Invalid(format!(
            "meter \"{meter}\" is not declared in quota.meters"
        )));
    }
    if !row.get::<bool>(2)?.unwrap_or(false) {
        return Err(QuotaError::UnknownPlan(plan.to_string()));
    }
    Ok(Decision::not_in_plan(meter, plan))
}

/// One window as `check` and `status` read it.
pub struct ReadWindow {
    pub plan: String,
    pub meter: String,
    pub window: Window,
}

/// What `read.sql` returned: the plan, the windows, and (for one meter) the burst limit with its state.
struct Read {
    plan: Option<String>,
    windows: Vec<ReadWindow>,
    burst: Option<Bucket>,
}

/// How much more the meter's limits allow right now: the least of limit − used − held over its windows.
pub fn room(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    user: &str,
    meter: &str,
    now: TimestampWithTimeZone,
) -> Result<i64> {
    let read = read_with(client, st, user, Some(meter), 0, now)?;
    Ok(read
        .windows
        .iter()
        .filter_map(|w| w.window.remaining())
        .min()
        .unwrap_or(i64::MAX))
}

fn read_with(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    user: &str,
    meter: Option<&str>,
    amount: i64,
    now: TimestampWithTimeZone,
) -> Result<Read> {
    let default_plan = gucs::default_plan();
    let default_tz = gucs::default_timezone();
    let table = client.select(
        &st.read,
        None,
        &[
            user.into(),
            meter.into(),
            now.into(),
            default_plan.as_str().into(),
            default_tz.as_str().into(),
        ],
    )?;
    let mut read = Read {
        plan: None,
        windows: Vec::with_capacity(table.len()),
        burst: None,
    };
    for row in table {
        read.plan = row.get::<String>(1)?;
        if let (Some(emission_us), Some(burst)) = (row.get::<i64>(8)?, row.get::<i64>(9)?) {
            let tat = row
                .get::<TimestampWithTimeZone>(10)?
                .map_or(i64::MIN, micros);
            read.burst = Some(Bucket::new(emission_us, burst, tat));
        }
        let (Some(p), Some(m), Some(period), Some(resets_at)) = (
            read.plan.clone(),
            row.get::<String>(2)?,
            row.get::<String>(3)?,
            row.get::<TimestampWithTimeZone>(6)?,
        ) else {
            continue;
        };
        let limit: Option<i64> = row.get(4)?;
        let used = row.get::<i64>(5)?.unwrap_or(0);
        let held = row.get::<i64>(7)?.unwrap_or(0);
        read.windows.push(ReadWindow {
            plan: p,
            meter: m,
            window: Window {
                denied: limit.is_some_and(|l| used.saturating_add(held).saturating_add(amount) > l),
                period,
                limit,
                used,
                held,
                resets_at,
                seconds_left: seconds_between(now, resets_at),
            },
        });
    }
    if read.windows.is_empty() && read.burst.is_none() {
        if let (Some(m), Some(p)) = (meter, read.plan.as_deref()) {
            not_in_plan(client, st, m, p)?;
        }
    }
    Ok(read)
}

/// The user's unexpired credits for `meter`.
fn credit_balance(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    user: &str,
    meter: &str,
    now: TimestampWithTimeZone,
) -> Result<i64> {
    let table = client.select(
        &st.credit_balance,
        None,
        &[user.into(), meter.into(), now.into()],
    )?;
    Ok(table.first().get::<i64>(1)?.unwrap_or(0))
}

/// The part of `amount` beyond a window's allowance: what credits must pay for the window to take it.
fn overflow(w: &Window, amount: i64) -> i64 {
    w.limit.map_or(0, |l| {
        (w.used.saturating_add(w.held).saturating_add(amount) - l).clamp(0, amount)
    })
}

/// The decision `consume` would make now, without consuming or counting a denial.
pub fn check(user: &str, meter: &str, amount: i64) -> Result<Decision> {
    let now = clock::now()?;
    Spi::connect_mut(|client| {
        statements::with(client, |client, st| {
            if let Some(decision) = fast_check(client, st, user, meter, amount, now)? {
                return Ok(decision);
            }
            let read = read_with(client, st, user, Some(meter), amount, now)?;
            let plan = read.plan.unwrap_or_else(gucs::default_plan);
            if read.windows.is_empty() && read.burst.is_none() {
                return Ok(Decision::not_in_plan(meter, &plan));
            }
            let mut windows: Vec<Window> = read.windows.into_iter().map(|w| w.window).collect();
            if let Some(b) = read.burst {
                let denied = b.wait_us(micros(now), amount) != Some(0);
                // The burst explains the answer when it refuses (credits never lift it), or is the only limit.
                if denied || windows.is_empty() {
                    windows.push(b.window(now, amount, denied)?);
                }
            }
            let calendar = |w: &Window| w.period != period::BURST;
            let (mut credits_used, mut balance) = (0, 0);
            if windows.iter().any(|w| w.denied && calendar(w)) {
                balance = credit_balance(client, st, user, meter, now)?;
                let needed = windows
                    .iter()
                    .filter(|w| calendar(w))
                    .map(|w| overflow(w, amount))
                    .max()
                    .unwrap_or(0);
                if balance > 0 && needed <= balance {
                    windows
                        .iter_mut()
                        .filter(|w| calendar(w))
                        .for_each(|w| w.denied = false);
                    credits_used = needed;
                }
            }
            if windows.iter().any(|w| w.denied) {
                credits_used = 0;
            }
            let mut decision = Decision::from_windows(meter, &plan, amount, balance, &windows);
            decision.credits_used = credits_used;
            Ok(decision)
        })
    })
}

/// A window from its counter row in the current window (`used`, `held`, `carry`, as read by check and status,
/// or as a consume leaves it): the carried allowance counts as limit.
fn counted_window(
    period: String,
    limit: Option<i64>,
    (used, held, carry): (i64, i64, i64),
    end: TimestampWithTimeZone,
    now: TimestampWithTimeZone,
) -> Window {
    Window {
        period,
        limit: limit.map(|l| l.saturating_add(carry)),
        used,
        held,
        resets_at: end,
        seconds_left: seconds_between(now, end),
        denied: false,
    }
}

/// The fast path of check (`fast_check.sql`): Some decision when the amount fits the meter's one window, None
/// when the general read must decide (a denial may still be lifted by credits there).
fn fast_check(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    user: &str,
    meter: &str,
    amount: i64,
    now: TimestampWithTimeZone,
) -> Result<Option<Decision>> {
    let cfg =
        gucs::with_default_timezone(|tz| meter_cache::lookup(client, st, user, meter, now, tz))?;
    let Some(cfg) = cfg else {
        return Ok(None);
    };
    let Shape::OneWindow {
        period,
        limit,
        start,
        end,
    } = &cfg.shape
    else {
        return Ok(None);
    };
    let table = client.update(
        &st.fast_check,
        None,
        &[
            user.into(),
            meter.into(),
            (&**period).into(),
            (*start).into(),
            now.into(),
        ],
    )?;
    let Some([used, held, carry]) = spi_row::int8_columns(&table)? else {
        return Ok(None);
    };
    let (used, held, carry) = (used.unwrap_or(0), held.unwrap_or(0), carry.unwrap_or(0));
    let window = counted_window(period.to_string(), *limit, (used, held, carry), *end, now);
    if window.limit.is_some_and(|l| used + held + amount > l) {
        return Ok(None);
    }
    Ok(Some(Decision::from_windows(
        meter,
        &cfg.plan,
        amount,
        0,
        &[window],
    )))
}

/// The fast path of status (`user_counters.sql`, with the plan's limits and windows from the cache): Some when
/// every window the plan sets has its counter row in the current window without expired holds; None when the
/// general read must recount one (or the user has no account, an expired plan or overrides).
fn fast_status(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    user: &str,
    now: TimestampWithTimeZone,
) -> Result<Option<Vec<ReadWindow>>> {
    let Some((plan, limits)) =
        gucs::with_default_timezone(|tz| meter_cache::status_limits(client, st, user, now, tz))?
    else {
        return Ok(None);
    };
    if limits.is_empty() {
        return Ok(None);
    }
    let table = client.update(&st.user_counters, None, &[user.into()])?;
    let mut rows = Vec::with_capacity(table.len());
    for row in table {
        rows.push((
            row.get::<String>(1)?.unwrap_or_default(),
            row.get::<String>(2)?.unwrap_or_default(),
            row.get::<TimestampWithTimeZone>(3)?.map(micros),
            row.get::<i64>(4)?.unwrap_or(0),
            row.get::<i64>(5)?.unwrap_or(0),
            row.get::<TimestampWithTimeZone>(6)?.map(micros),
            row.get::<i64>(7)?.unwrap_or(0),
        ));
    }
    let now_us = micros(now);
    let mut windows = Vec::with_capacity(limits.len());
    for l in limits {
        let counter = rows.iter().find(|r| r.0 == l.meter && r.1 == l.period);
        let Some((_, _, start, used, held, held_until, carry)) = counter else {
            return Ok(None);
        };
        let expired_holds = *held > 0 && held_until.is_none_or(|u| u <= now_us);
        if *start != Some(micros(l.start)) || expired_holds {
            return Ok(None);
        }
        windows.push(ReadWindow {
            plan: plan.clone(),
            meter: l.meter,
            window: counted_window(l.period, l.limit, (*used, *held, *carry), l.end, now),
        });
    }
    Ok(Some(windows))
}

/// Every window of every meter on the user's plan, shortest period first within a meter.
pub fn status(user: &str) -> Result<Vec<ReadWindow>> {
    let now = clock::now()?;
    let mut windows = Spi::connect_mut(|client| {
        statements::with(client, |client, st| {
            if let Some(windows) = fast_status(client, st, user, now)? {
                return Ok(windows);
            }
            Ok(read_with(client, st, user, None, 0, now)?.windows)
        })
    })?;
    windows.sort_by(|a, b| {
        (a.meter.as_str(), period::rank(&a.window.period))
            .cmp(&(b.meter.as_str(), period::rank(&b.window.period)))
    });
    Ok(windows)
}
