//! The quota engine: consume (all or nothing, under row locks), check and status.
//!
//! Every decision is made from rows the same statement locked and wrote, so concurrent calls for one user are
//! serialised by PostgreSQL's row locks and calls for different users never touch each other's rows.

use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiTupleTable};
use pgrx::JsonB;

use crate::decision::{period_rank, Decision, Window};
use crate::error::{QuotaError, Result};
use crate::statements::{self, Prepared};
use crate::{burst, clock, events, gucs};

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
    /// Charge every window even past its limit: a commit with `p_overage` (the spend already happened).
    pub force: bool,
}

/// Seconds from `now` until `at`, rounded up so "retry after" never lands a moment too early.
fn seconds_between(now: TimestampWithTimeZone, at: TimestampWithTimeZone) -> i64 {
    let micros = pg_sys::TimestampTz::from(at) - pg_sys::TimestampTz::from(now);
    (micros.max(0) + 999_999) / 1_000_000
}

/// One row of the consume statement.
struct ConsumedRow {
    period: Option<String>,
    limit: Option<i64>,
    used: Option<i64>,
    denied: bool,
    resets_at: Option<TimestampWithTimeZone>,
    held: Option<i64>,
    stale_holds: bool,
    reservation_id: Option<pgrx::Uuid>,
    credits: Option<i64>,
    burst_limited: bool,
    burst_missing: bool,
    burst_ok: bool,
}

/// Consumes `amount` from every window of the meter, or from none.
pub fn consume(req: Request<'_>) -> Result<Decision> {
    let now = clock::now()?;
    Spi::connect_mut(|client| {
        statements::with(client, |client, st| {
            if let Some(key) = req.key {
                if let Some(replay) = claim_key(client, st, &req, key, now)? {
                    return Ok(replay);
                }
            }
            let decision = consume_with(client, st, &req, now)?;
            if !decision.allowed {
                // Allowed calls are rolled up by the consume statement; a final denial is counted here.
                client.update(
                    &st.record_denial,
                    None,
                    &[req.user.into(), req.meter.into(), now.into()],
                )?;
            }
            if let Some(key) = req.key {
                if decision.allowed {
                    let json = JsonB(decision.to_json());
                    client.update(
                        &st.store_decision,
                        None,
                        &[req.user.into(), key.into(), json.into()],
                    )?;
                } else {
                    client.update(&st.drop_key, None, &[req.user.into(), key.into()])?;
                }
            }
            Ok(decision)
        })
    })
}

/// Claims the key, or returns the decision already stored under it (same request) or an error (another request).
fn claim_key(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    req: &Request<'_>,
    key: &str,
    now: TimestampWithTimeZone,
) -> Result<Option<Decision>> {
    let claimed = client.update(
        &st.claim_key,
        None,
        &[
            req.user.into(),
            key.into(),
            req.meter.into(),
            req.amount.into(),
            req.metadata.clone().map(JsonB).into(),
            now.into(),
        ],
    )?;
    if !claimed.is_empty() {
        return Ok(None);
    }
    let stored = client.update(&st.load_key, None, &[req.user.into(), key.into()])?;
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
        None => Err(QuotaError::Invalid(format!(
            "idempotency key \"{key}\" is in use by a request that has not finished"
        ))),
    }
}

/// Consumes (or holds) without an idempotency key, on an open SPI client; the engine's core loop.
pub fn consume_with(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    req: &Request<'_>,
    now: TimestampWithTimeZone,
) -> Result<Decision> {
    let default_plan = gucs::default_plan();
    let default_tz = gucs::default_timezone();
    let hold = req.hold_until.is_some();
    let mut holds_expired = false;
    // Credits are looked at only once the plan's allowance denies (so the common path never reads them), then
    // offered to a second attempt under the counter locks this transaction already holds.
    let mut credits_offered: Option<i64> = None;
    // A first call may create the account, then the counter rows or move them to the current window; a denial may
    // recompute expired holds once and retry once with credits.
    for _ in 0..6 {
        let table = client.update(
            &st.consume,
            None,
            &[
                req.user.into(),
                req.meter.into(),
                req.amount.into(),
                req.key.into(),
                req.metadata.clone().map(JsonB).into(),
                now.into(),
                default_plan.as_str().into(),
                default_tz.as_str().into(),
                hold.into(),
                req.hold_until.into(),
                credits_offered.unwrap_or(0).into(),
                req.burst.into(),
                req.force.into(),
            ],
        )?;
        let (plan, rows) = consumed_rows(table)?;
        let Some(plan) = plan else {
            ensure_account(client, st, req.user, &default_plan)?;
            continue;
        };
        let flag = |f: fn(&ConsumedRow) -> bool| rows.first().is_some_and(f);
        let (burst_limited, burst_missing) = (flag(|r| r.burst_limited), flag(|r| r.burst_missing));
        if rows.iter().all(|r| r.period.is_none()) && !burst_limited {
            return not_in_plan(client, st, req.meter, &plan);
        }
        let periods = |keep: &dyn Fn(&ConsumedRow) -> bool| -> Vec<String> {
            rows.iter()
                .filter(|r| keep(r))
                .filter_map(|r| r.period.clone())
                .collect()
        };
        let incremented = periods(&|r| r.used.is_some() && !r.denied);
        let missing = periods(&|r| r.used.is_none());
        let calendar_denied = rows.iter().any(|r| r.denied);
        // The burst limit is tried only once every calendar window took the amount.
        let burst_denied = burst_limited
            && !burst_missing
            && !flag(|r| r.burst_ok)
            && !calendar_denied
            && missing.is_empty();
        let any_denied = calendar_denied || burst_denied;
        let setup_needed = !missing.is_empty() || (burst_missing && !calendar_denied);
        // Expired holds still counted until recomputed: a denial is only final once they are gone.
        let retry_without_expired =
            calendar_denied && !holds_expired && rows.iter().any(|r| r.stale_holds);
        let retry_with_credits = calendar_denied
            && !retry_without_expired
            && !hold
            && missing.is_empty()
            && credits_offered.is_none()
            && {
                let balance = credit_balance(client, st, req.user, req.meter, now)?;
                credits_offered = Some(balance);
                balance > 0
            };
        let take_back_denials = if retry_without_expired || retry_with_credits {
            periods(&|r| r.denied)
        } else {
            Vec::new()
        };
        if (any_denied || setup_needed) && !(incremented.is_empty() && take_back_denials.is_empty())
        {
            // All or nothing: take back what the windows that fitted took.
            client.update(
                &st.undo,
                None,
                &[
                    req.user.into(),
                    req.meter.into(),
                    req.amount.into(),
                    incremented.into(),
                    take_back_denials.into(),
                    hold.into(),
                ],
            )?;
        }
        if retry_with_credits {
            continue;
        }
        if retry_without_expired {
            holds_expired = true;
            client.update(
                &st.expire_holds,
                None,
                &[req.user.into(), req.meter.into(), now.into()],
            )?;
            continue;
        }
        if !calendar_denied && setup_needed {
            if !missing.is_empty() {
                client.update(
                    &st.add_counters,
                    None,
                    &[
                        req.user.into(),
                        req.meter.into(),
                        missing.clone().into(),
                        now.into(),
                    ],
                )?;
                // New rows and rows still in an earlier window move to the current one, recounted.
                client.update(
                    &st.rollover,
                    None,
                    &[
                        req.user.into(),
                        req.meter.into(),
                        req.amount.into(),
                        req.key.into(),
                        None::<JsonB>.into(),
                        now.into(),
                        default_plan.as_str().into(),
                        default_tz.as_str().into(),
                        missing.into(),
                    ],
                )?;
            }
            if burst_missing {
                client.update(&st.add_burst, None, &[req.user.into(), req.meter.into()])?;
            }
            continue;
        }
        let reservation_id = rows.iter().find_map(|r| r.reservation_id);
        let credits_used = rows.iter().find_map(|r| r.credits).unwrap_or(0);
        if credits_used > 0 {
            client.update(
                &st.spend_credits,
                None,
                &[
                    req.user.into(),
                    req.meter.into(),
                    now.into(),
                    credits_used.into(),
                ],
            )?;
        }
        let windows = rows
            .into_iter()
            .filter_map(|r| {
                let (used, held) = (r.used?, r.held.unwrap_or(0));
                let took_back = any_denied && !r.denied;
                Some(Window {
                    used: if took_back && !hold {
                        used - req.amount
                    } else {
                        used
                    },
                    held: if took_back && hold {
                        held - req.amount
                    } else {
                        held
                    },
                    period: r.period?,
                    limit: r.limit,
                    resets_at: r.resets_at?,
                    seconds_left: seconds_between(now, r.resets_at?),
                    denied: r.denied,
                })
            })
            .collect::<Vec<_>>();
        if !any_denied && !hold {
            events::crossings(req.user, req.meter, req.amount, &windows);
        }
        // The burst limit explains a decision when it denied, or when it is the meter's only limit.
        let mut windows = windows;
        if burst_denied || (burst_limited && windows.is_empty()) {
            if let Some(b) = burst::read(client, st, req.user, req.meter, &plan)? {
                windows.push(b.window(now, req.amount, burst_denied)?);
            }
        }
        let credits = credits_offered.unwrap_or(0);
        let mut decision = Decision::from_windows(req.meter, &plan, req.amount, credits, &windows);
        decision.credits_used = credits_used;
        if decision.allowed && hold {
            decision.reservation_id = reservation_id;
            decision.expires_at = req.hold_until;
        }
        return Ok(decision);
    }
    Err(QuotaError::Internal(format!(
        "could not create counters for user \"{}\"",
        req.user
    )))
}

fn consumed_rows(table: SpiTupleTable<'_>) -> Result<(Option<String>, Vec<ConsumedRow>)> {
    let mut plan = None;
    let mut rows = Vec::with_capacity(table.len());
    for row in table {
        plan = row.get::<String>(1)?;
        rows.push(ConsumedRow {
            period: row.get(2)?,
            limit: row.get(3)?,
            used: row.get(4)?,
            denied: row.get::<bool>(5)?.unwrap_or(false),
            resets_at: row.get(6)?,
            held: row.get(8)?,
            stale_holds: row.get::<bool>(9)?.unwrap_or(false),
            reservation_id: row.get(10)?,
            credits: row.get(11)?,
            burst_limited: row.get::<bool>(12)?.unwrap_or(false),
            burst_missing: row.get::<bool>(13)?.unwrap_or(false),
            burst_ok: row.get::<bool>(14)?.unwrap_or(false),
        });
    }
    Ok((plan, rows))
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

/// Reads a user's windows (one meter, or all with `meter` None) without changing anything.
fn read_windows(
    user: &str,
    meter: Option<&str>,
    amount: i64,
) -> Result<(Option<String>, Vec<ReadWindow>)> {
    let now = clock::now()?;
    Spi::connect_mut(|client| {
        statements::with(client, |client, st| {
            read_with(client, st, user, meter, amount, now)
        })
    })
}

/// How much more the meter's limits allow right now: the least of limit − used − held over its windows.
pub fn room(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    user: &str,
    meter: &str,
    now: TimestampWithTimeZone,
) -> Result<i64> {
    let (_, windows) = read_with(client, st, user, Some(meter), 0, now)?;
    Ok(windows
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
) -> Result<(Option<String>, Vec<ReadWindow>)> {
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
    let mut plan = None;
    let mut out = Vec::with_capacity(table.len());
    for row in table {
        plan = row.get::<String>(1)?;
        let (Some(p), Some(m), Some(period), Some(resets_at)) = (
            plan.clone(),
            row.get::<String>(2)?,
            row.get::<String>(3)?,
            row.get::<TimestampWithTimeZone>(6)?,
        ) else {
            continue;
        };
        let limit: Option<i64> = row.get(4)?;
        let used = row.get::<i64>(5)?.unwrap_or(0);
        let held = row.get::<i64>(7)?.unwrap_or(0);
        out.push(ReadWindow {
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
    if out.is_empty() {
        if let (Some(m), Some(p)) = (meter, plan.as_deref()) {
            not_in_plan(client, st, m, p)?;
        }
    }
    Ok((plan, out))
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
            let (plan, windows) = read_with(client, st, user, Some(meter), amount, now)?;
            let plan = plan.unwrap_or_else(gucs::default_plan);
            let burst = burst::read(client, st, user, meter, &plan)?;
            if windows.is_empty() && burst.is_none() {
                return Ok(Decision::not_in_plan(meter, &plan));
            }
            let mut windows: Vec<Window> = windows.into_iter().map(|w| w.window).collect();
            if let Some(b) = burst {
                let denied = b.wait_us(pg_sys::TimestampTz::from(now), amount) != Some(0);
                // The burst explains the answer when it refuses (credits never lift it), or is the only limit.
                if denied || windows.is_empty() {
                    windows.push(b.window(now, amount, denied)?);
                }
            }
            let calendar = |w: &Window| w.period != burst::PERIOD;
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

/// Every window of every meter on the user's plan, shortest period first within a meter.
pub fn status(user: &str) -> Result<Vec<ReadWindow>> {
    let (_, mut windows) = read_windows(user, None, 0)?;
    windows.sort_by(|a, b| {
        (a.meter.as_str(), period_rank(&a.window.period))
            .cmp(&(b.meter.as_str(), period_rank(&b.window.period)))
    });
    Ok(windows)
}
