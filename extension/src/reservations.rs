//! Reserve, then settle: for AI calls whose cost is known only afterwards.
//!
//! `quota.reserve` is consume in hold mode (`attempt::Mode::Hold`, statements/hold.sql): the amount counts against every limit as
//! `held` until it is committed, released, or its time is up. Settling locks the reservation row first (settling
//! it in the same write when it is still open) and then the counter rows (in the engine's order), frees the hold,
//! and charges through the ordinary consume path, so the ledger and the counters stay in step exactly as for a
//! plain consume.

use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::Uuid;
use serde_json::json;

use crate::decision::Decision;
use crate::engine::{self, Request};
use crate::error::{QuotaError, Result};
use crate::statements::{self, Prepared};
use crate::{clock, gucs, validate};

/// The state of an open reservation (the domain `quota.reservation_state`).
const HELD: &str = "held";

/// Longest a hold may last: long enough for any AI call, short enough that a lost client frees its budget soon.
pub const MAX_TTL_MICROS: i128 = 24 * 3600 * 1_000_000;

/// The outcome of commit or release, field for field the SQL type `quota.settlement`.
pub struct Settlement {
    pub reservation_id: Uuid,
    pub state: &'static str,
    pub held: i64,
    pub actual: Option<i64>,
    pub charged: i64,
    pub capped: bool,
    pub used: Option<i64>,
    pub limit: Option<i64>,
    pub remaining: Option<i64>,
    pub status: Option<&'static str>,
    pub resets_at: Option<TimestampWithTimeZone>,
}

/// The expiry of a hold taken now for `ttl`.
pub fn expiry(ttl: Option<Interval>) -> Result<TimestampWithTimeZone> {
    let ttl = ttl.ok_or(QuotaError::Null("ttl"))?;
    let micros = ttl.as_micros();
    if micros <= 0 || micros > MAX_TTL_MICROS {
        return Err(QuotaError::Invalid(format!(
            "ttl must be more than 0 and at most 24 hours, got {ttl}"
        )));
    }
    let now = pg_sys::TimestampTz::from(clock::now()?);
    let at = now.saturating_add(i64::try_from(micros).unwrap_or(i64::MAX));
    TimestampWithTimeZone::try_from(at)
        .map_err(|e| QuotaError::Internal(format!("hold expiry: {e}")))
}

struct Held {
    user: String,
    meter: String,
    amount: i64,
}

impl Held {
    /// The reservation's user, meter and amount from the first three columns of `close_reservation.sql` or
    /// `lock_reservation.sql`.
    fn read(row: &pgrx::spi::SpiTupleTable<'_>) -> Result<Held> {
        Ok(Held {
            user: row.get(1)?.unwrap_or_default(),
            meter: row.get(2)?.unwrap_or_default(),
            amount: row.get(3)?.unwrap_or(0),
        })
    }
}

/// Settles the reservation if it is still open, in the write that locks it (`close_reservation.sql`): None when
/// it is not (unknown, another user's, settled or expired), and nothing was written.
#[allow(clippy::too_many_arguments)]
fn close(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    id: Uuid,
    owner: Option<&str>,
    state: &str,
    actual: Option<i64>,
    charged: i64,
    now: TimestampWithTimeZone,
) -> Result<Option<Held>> {
    let table = client.update(
        &st.close_reservation,
        None,
        &[
            id.into(),
            owner.into(),
            state.into(),
            actual.into(),
            charged.into(),
            now.into(),
            HELD.into(),
        ],
    )?;
    if table.is_empty() {
        return Ok(None);
    }
    Held::read(&table.first()).map(Some)
}

/// Locks the reservation and checks it can still be settled: the error that says why `close` settled nothing.
fn lock(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    id: Uuid,
    owner: Option<&str>,
    now: TimestampWithTimeZone,
) -> Result<Held> {
    let table = client.update(&st.lock_reservation, None, &[id.into(), owner.into()])?;
    if table.is_empty() {
        return Err(QuotaError::UnknownReservation(id.to_string()));
    }
    let row = table.first();
    let state: String = row.get(4)?.unwrap_or_default();
    if state != HELD {
        return Err(QuotaError::Settled(format!(
            "reservation {id} is already {state}"
        )));
    }
    let expires_at: Option<TimestampWithTimeZone> = row.get(5)?;
    if expires_at.is_some_and(|e| pg_sys::TimestampTz::from(e) <= pg_sys::TimestampTz::from(now)) {
        return Err(QuotaError::Settled(format!(
            "reservation {id} expired; its hold no longer counts, so nothing can be committed or released"
        )));
    }
    Held::read(&row)
}

/// Frees the hold and charges `actual` (None or 0: only frees it), under the reservation's lock: the amount
/// charged and the decision of the charge.
fn charge(
    client: &mut SpiClient<'_>,
    st: &Prepared,
    id: Uuid,
    held: &Held,
    actual: Option<i64>,
    overage: bool,
    now: TimestampWithTimeZone,
) -> Result<(i64, Option<Decision>)> {
    let release = |client: &mut SpiClient<'_>| -> Result<()> {
        client.update(
            &st.release_hold,
            None,
            &[
                held.user.as_str().into(),
                held.meter.as_str().into(),
                held.amount.into(),
            ],
        )?;
        Ok(())
    };
    let actual = match actual {
        None | Some(0) => {
            release(client)?;
            return Ok((0, None));
        }
        Some(actual) => actual,
    };
    let metadata = Some(json!({ "reservation_id": id.to_string() }));
    let whole = Request {
        user: &held.user,
        meter: &held.meter,
        amount: actual,
        key: None,
        metadata: metadata.clone(),
        hold_until: None,
        burst: false,
        force: overage,
        rollup: false,
    };
    // Most commits charge no more than the hold had room for: the fast path frees the hold and charges the whole
    // actual amount in one write when it fits, exactly as the capped charge below would.
    if let Some(d) =
        gucs::with_default_timezone(|tz| engine::fast(client, st, &whole, now, tz, held.amount))?
    {
        return Ok((actual, Some(d)));
    }
    release(client)?;
    // The hold guaranteed its own amount; beyond it, charge what the limits still allow (or, with overage,
    // everything).
    let charge = if overage {
        actual
    } else {
        let room = engine::room(client, st, &held.user, &held.meter, now)?;
        actual.min(room.max(0))
    };
    if charge == 0 {
        return Ok((0, None));
    }
    let req = Request {
        amount: charge,
        metadata,
        ..whole
    };
    let d = engine::consume_with(client, st, &req, now)?;
    Ok((if d.allowed { charge } else { 0 }, Some(d)))
}

/// Commits at `actual` (Some) or releases (None) the reservation `id`. With `owner`, a reservation of another
/// user is reported as unknown, so an end user cannot settle (or learn of) someone else's hold. With `overage`
/// the whole actual amount is charged even beyond the limits (the upstream already spent it): the windows go over
/// their limit and deny until they reset, instead of the spend being dropped.
///
/// The reservation row is written once in the common case: `close` settles it at the whole actual amount (what
/// the fast path charges) as it locks it, and only a charge the limits capped writes it again.
pub fn settle(
    id: Uuid,
    owner: Option<&str>,
    actual: Option<i64>,
    overage: bool,
) -> Result<Settlement> {
    let now = clock::now()?;
    Spi::connect_mut(|client| {
        statements::with(client, |client, st| {
            let state = if actual.is_some() {
                "committed"
            } else {
                "released"
            };
            let whole = actual.unwrap_or(0);
            let (held, closed) = match close(client, st, id, owner, state, actual, whole, now)? {
                Some(held) => (held, true),
                // Not open: lock says why. Should it be open after all, it is settled below instead.
                None => (lock(client, st, id, owner, now)?, false),
            };
            let (charged, decision) = charge(client, st, id, &held, actual, overage, now)?;
            if !closed || charged != whole {
                client.update(
                    &st.settle_reservation,
                    None,
                    &[
                        held.user.as_str().into(),
                        id.into(),
                        state.into(),
                        actual.into(),
                        charged.into(),
                        now.into(),
                    ],
                )?;
            }
            Ok(Settlement {
                reservation_id: id,
                state,
                held: held.amount,
                actual,
                charged,
                capped: actual.is_some_and(|a| charged < a),
                used: decision.as_ref().map(|d| d.used),
                limit: decision.as_ref().and_then(|d| d.limit),
                remaining: decision.as_ref().and_then(|d| d.remaining),
                status: decision.as_ref().map(|d| d.status),
                resets_at: decision.and_then(|d| d.resets_at),
            })
        })
    })
}

impl Settlement {
    /// Builds the `quota.settlement` composite.
    pub fn into_tuple(self) -> Result<crate::types::Row> {
        crate::types::form("quota.settlement", |t| {
            t.set("reservation_id", self.reservation_id)?;
            t.set("state", self.state)?;
            t.set("held", self.held)?;
            t.set("actual", self.actual)?;
            t.set("charged", self.charged)?;
            t.set("capped", self.capped)?;
            t.set("used", self.used)?;
            t.set("limit", self.limit)?;
            t.set("remaining", self.remaining)?;
            t.set("status", self.status)?;
            t.set("resets_at", self.resets_at)?;
            Ok(())
        })
    }
}

/// Validates the actual amount of a commit: 0 ..= MAX_AMOUNT (0 charges nothing).
pub fn actual(v: Option<i64>) -> Result<i64> {
    match v {
        None => Err(QuotaError::Null("actual")),
        Some(0) => Ok(0),
        Some(a) => validate::amount(Some(a)),
    }
}
