//! One attempt of the engine: the rows `lock.sql` returned, and the one step that comes next.
//!
//! The engine locks, decides here, and then either writes once (charge, hold or denial) or prepares what is
//! missing (an account, a counter row in the current window, fresh holds, the credit balance, the burst state)
//! and decides again. Nothing is ever written to be taken back. `next_step` is pure (plain values in, a step
//! out), so every rule of the decision is unit-tested without a database.

use pgrx::prelude::*;
use pgrx::spi::SpiTupleTable;

use crate::burst::Bucket;
use crate::error::{QuotaError, Result};

/// Microseconds since 2000-01-01 UTC, PostgreSQL's own timestamp representation (-infinity is `i64::MIN`).
pub type Micros = i64;

/// One limit of the meter, with its current window.
#[derive(Debug, Clone)]
pub struct Limit {
    pub period: String,
    /// None: unlimited.
    pub limit: Option<i64>,
    pub start: TimestampWithTimeZone,
    pub end: TimestampWithTimeZone,
}

/// One counter row, locked.
#[derive(Debug, Clone)]
pub struct Counter {
    pub start: Micros,
    pub used: i64,
    pub held: i64,
    pub held_until: Option<Micros>,
    pub carry: i64,
}

/// The plan's burst limit on the meter.
#[derive(Debug, Clone, Copy)]
pub struct BurstLimit {
    pub emission_us: i64,
    pub burst: i64,
}

/// What `lock.sql` returned: the user's plan, the meter's limits each with its counter row (if any), locked.
#[derive(Debug, Clone, Default)]
pub struct Locked {
    pub plan: String,
    pub tz: String,
    pub has_account: bool,
    pub burst: Option<BurstLimit>,
    pub windows: Vec<(Limit, Option<Counter>)>,
    /// A counter row of the meter carries the daily rollup of an earlier UTC day (fold_rollup.sql).
    pub rollup_stale: bool,
    /// The periods of every counter row of the meter that lock.sql locked.
    pub locked_periods: Vec<String>,
}

impl Locked {
    /// Reads the rows of `lock.sql` (counter rows of periods the plan does not limit are left out: charge.sql
    /// keeps them in step by itself).
    pub fn read(table: SpiTupleTable<'_>) -> Result<Locked> {
        let mut locked = Locked {
            windows: Vec::with_capacity(table.len()),
            ..Locked::default()
        };
        for row in table {
            locked.plan = row.get::<String>(1)?.unwrap_or_default();
            locked.tz = row.get::<String>(2)?.unwrap_or_default();
            locked.has_account = row.get::<bool>(3)?.unwrap_or(false);
            locked.rollup_stale = row.get::<bool>(17)?.unwrap_or(false);
            locked.locked_periods = row.get::<Vec<String>>(18)?.unwrap_or_default();
            if let (Some(emission_us), Some(burst)) = (row.get::<i64>(4)?, row.get::<i64>(5)?) {
                locked.burst = Some(BurstLimit { emission_us, burst });
            }
            let (Some(period), Some(start), Some(end)) = (
                row.get::<String>(6)?,
                row.get::<TimestampWithTimeZone>(9)?,
                row.get::<TimestampWithTimeZone>(10)?,
            ) else {
                continue;
            };
            let counter = match row.get::<TimestampWithTimeZone>(12)? {
                None => None,
                Some(start) => Some(Counter {
                    start: micros(start),
                    used: row.get(13)?.unwrap_or(0),
                    held: row.get(14)?.unwrap_or(0),
                    held_until: row.get::<TimestampWithTimeZone>(15)?.map(micros),
                    carry: row.get(16)?.unwrap_or(0),
                }),
            };
            let limit = Limit {
                period,
                limit: row.get(7)?,
                start,
                end,
            };
            locked.windows.push((limit, counter));
        }
        if locked.plan.is_empty() {
            return Err(QuotaError::Internal("lock returned no plan".into()));
        }
        Ok(locked)
    }

    /// The windows whose counter row is in the current window, with that row.
    pub fn current(&self) -> impl Iterator<Item = (&Limit, &Counter)> {
        self.windows.iter().filter_map(|(l, c)| match c {
            Some(c) if c.start == micros(l.start) => Some((l, c)),
            _ => None,
        })
    }
}

/// A timestamp as PostgreSQL stores it.
pub fn micros(ts: TimestampWithTimeZone) -> Micros {
    pg_sys::TimestampTz::from(ts)
}

/// How the amount is to be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// quota.consume: charged when every limit allows it.
    Consume,
    /// quota.reserve: held when every limit allows it.
    Hold,
    /// The charge of a commit with overage: charged whatever the limits say (the upstream already spent it).
    Force,
}

/// What one call asks for, as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    pub amount: i64,
    pub mode: Mode,
    /// Whether the burst limit applies (not to the charge of a commit, whose call was admitted at reserve).
    pub burst: bool,
}

/// What the engine learned between attempts; kept while the counter rows stay locked.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The credit balance on offer: None until a denial made the engine read it.
    pub credits: Option<i64>,
    /// Whether expired holds were already recomputed.
    pub holds_expired: bool,
    /// The locked burst state's theoretical arrival time (`i64::MIN`: a full bucket), once locked.
    pub burst_tat: Option<Micros>,
    /// When this call reached the burst state (read right after its lock was granted): the arrival time the
    /// burst limit measures. Calls are then measured in the order they hold the lock, so one that started its
    /// transaction earlier but got the lock later is never refused for arriving "before" the previous one.
    pub burst_at: Option<Micros>,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The user has no account yet: create it with the default plan, then lock again.
    CreateAccount,
    /// The plan limits nothing on this meter: a denial (or an error for an undeclared meter).
    NotInPlan,
    /// A refusing window still counts holds that expired: recompute them, then lock again.
    ExpireHolds,
    /// A window refuses: read the credit balance and decide again under the same locks.
    OfferCredits,
    /// These periods' counter rows are missing or in an earlier window: create or move them, then lock again.
    MoveWindows(Vec<String>),
    /// A counter row carries the daily rollup of an earlier UTC day: move it to the stored rollup, then lock
    /// again (until then the fast path cannot take the row).
    FoldRollup,
    /// Lock the burst state (creating it when missing), then decide again.
    LockBurst,
    /// Final: refused by these windows, or by the burst limit.
    Deny { refusing: Vec<String>, burst: bool },
    /// Final: every limit takes the amount. Write it once, paying `credits` of it from credits, and store the
    /// burst state's new arrival time when the burst limit applies.
    Write { credits: i64, tat: Option<Micros> },
}

/// The part of `amount` beyond a window's allowance (limit, carried allowance, less usage and holds): what
/// credits must pay for the window to take it.
pub fn overflow(limit: Option<i64>, c: &Counter, amount: i64) -> i64 {
    limit.map_or(0, |l| {
        c.used
            .saturating_add(c.held)
            .saturating_add(amount)
            .saturating_sub(l.saturating_add(c.carry))
            .clamp(0, amount)
    })
}

/// The one step that comes next for `ask` on the rows in `locked`, at `now`.
pub fn next_step(locked: &Locked, ask: Ask, ctx: &Context, now: Micros) -> Step {
    if !locked.has_account {
        return Step::CreateAccount;
    }
    if locked.windows.is_empty() && locked.burst.is_none() {
        return Step::NotInPlan;
    }
    if ask.mode != Mode::Force {
        // A window already current that refuses decides alone: nothing else needs preparing for a denial.
        let credits = ctx.credits.unwrap_or(0);
        let refusing: Vec<(&Limit, &Counter)> = locked
            .current()
            .filter(|(l, c)| overflow(l.limit, c, ask.amount) > credits)
            .collect();
        if !refusing.is_empty() {
            let stale_holds = refusing
                .iter()
                .any(|(_, c)| c.held > 0 && c.held_until.is_some_and(|t| t <= now));
            if stale_holds && !ctx.holds_expired {
                return Step::ExpireHolds;
            }
            if ask.mode == Mode::Consume && ctx.credits.is_none() {
                return Step::OfferCredits;
            }
            return Step::Deny {
                refusing: refusing.iter().map(|(l, _)| l.period.clone()).collect(),
                burst: false,
            };
        }
    }
    let stale: Vec<String> = locked
        .windows
        .iter()
        .filter(|(l, c)| c.as_ref().is_none_or(|c| c.start != micros(l.start)))
        .map(|(l, _)| l.period.clone())
        .collect();
    if !stale.is_empty() {
        return Step::MoveWindows(stale);
    }
    if locked.rollup_stale {
        return Step::FoldRollup;
    }
    let mut tat = None;
    if let (Some(b), true, false) = (locked.burst, ask.burst, ask.mode == Mode::Force) {
        let Some(state) = ctx.burst_tat else {
            return Step::LockBurst;
        };
        let at = ctx.burst_at.unwrap_or(now);
        let bucket = Bucket::new(b.emission_us, b.burst, state);
        if bucket.wait_us(at, ask.amount) != Some(0) {
            return Step::Deny {
                refusing: Vec::new(),
                burst: true,
            };
        }
        tat = Some(bucket.after(at, ask.amount));
    }
    let credits = match (ask.mode, ctx.credits) {
        (Mode::Consume, Some(balance)) if balance > 0 => locked
            .current()
            .map(|(l, c)| overflow(l.limit, c, ask.amount))
            .max()
            .unwrap_or(0),
        _ => 0,
    };
    Step::Write { credits, tat }
}

#[cfg(test)]
mod unit {
    use super::*;

    const H: i64 = 3_600_000_000;

    fn ts(us: i64) -> TimestampWithTimeZone {
        TimestampWithTimeZone::try_from(us).unwrap()
    }

    fn locked(windows: Vec<(Option<i64>, Option<Counter>)>) -> Locked {
        Locked {
            plan: "free".into(),
            tz: "UTC".into(),
            has_account: true,
            windows: windows
                .into_iter()
                .enumerate()
                .map(|(i, (limit, c))| {
                    (
                        Limit {
                            period: ["day", "month"][i].into(),
                            limit,
                            start: ts(0),
                            end: ts(24 * H),
                        },
                        c,
                    )
                })
                .collect(),
            ..Locked::default()
        }
    }

    fn row(used: i64) -> Option<Counter> {
        Some(Counter {
            start: 0,
            used,
            held: 0,
            held_until: None,
            carry: 0,
        })
    }

    fn consume(amount: i64) -> Ask {
        Ask {
            amount,
            mode: Mode::Consume,
            burst: true,
        }
    }

    #[test]
    fn the_common_case_writes_at_once() {
        let l = locked(vec![(Some(10), row(3)), (Some(100), row(50))]);
        let step = next_step(&l, consume(1), &Context::default(), H);
        assert_eq!(
            step,
            Step::Write {
                credits: 0,
                tat: None
            }
        );
    }

    #[test]
    fn a_new_user_gets_an_account_first() {
        let mut l = locked(vec![(Some(10), None)]);
        l.has_account = false;
        assert_eq!(
            next_step(&l, consume(1), &Context::default(), H),
            Step::CreateAccount
        );
    }

    #[test]
    fn missing_and_old_rows_are_prepared_before_writing() {
        let mut old = row(9).unwrap();
        old.start = -24 * H;
        let l = locked(vec![(Some(10), None), (Some(100), Some(old))]);
        assert_eq!(
            next_step(&l, consume(1), &Context::default(), H),
            Step::MoveWindows(vec!["day".into(), "month".into()])
        );
    }

    #[test]
    fn a_refusing_current_window_is_final_once_credits_were_offered() {
        let l = locked(vec![(Some(10), row(10)), (Some(100), None)]);
        let ctx = Context::default();
        assert_eq!(next_step(&l, consume(1), &ctx, H), Step::OfferCredits);
        let ctx = Context {
            credits: Some(0),
            ..Context::default()
        };
        assert_eq!(
            next_step(&l, consume(1), &ctx, H),
            Step::Deny {
                refusing: vec!["day".into()],
                burst: false
            }
        );
    }

    #[test]
    fn credits_pay_the_largest_overflow_once() {
        let l = locked(vec![(Some(10), row(9)), (Some(100), row(98))]);
        let ctx = Context {
            credits: Some(5),
            ..Context::default()
        };
        assert_eq!(
            next_step(&l, consume(4), &ctx, H),
            Step::Write {
                credits: 3,
                tat: None
            }
        );
        let ctx = Context {
            credits: Some(2),
            ..Context::default()
        };
        assert!(matches!(
            next_step(&l, consume(4), &ctx, H),
            Step::Deny { .. }
        ));
    }

    #[test]
    fn reserve_never_offers_credits_and_expired_holds_are_recomputed_once() {
        let mut c = row(5).unwrap();
        c.held = 5;
        c.held_until = Some(H / 2);
        let l = locked(vec![(Some(10), Some(c))]);
        let hold = Ask {
            amount: 1,
            mode: Mode::Hold,
            burst: true,
        };
        assert_eq!(
            next_step(&l, hold, &Context::default(), H),
            Step::ExpireHolds
        );
        let ctx = Context {
            holds_expired: true,
            ..Context::default()
        };
        assert!(matches!(next_step(&l, hold, &ctx, H), Step::Deny { .. }));
    }

    #[test]
    fn force_charges_past_the_limit() {
        let l = locked(vec![(Some(10), row(10))]);
        let force = Ask {
            amount: 500,
            mode: Mode::Force,
            burst: false,
        };
        assert_eq!(
            next_step(&l, force, &Context::default(), H),
            Step::Write {
                credits: 0,
                tat: None
            }
        );
    }

    #[test]
    fn the_burst_limit_is_tried_after_the_calendar_windows() {
        let mut l = locked(vec![(Some(10), row(1))]);
        l.burst = Some(BurstLimit {
            emission_us: 10_000_000,
            burst: 1,
        });
        assert_eq!(
            next_step(&l, consume(1), &Context::default(), H),
            Step::LockBurst
        );
        let full = Context {
            burst_tat: Some(i64::MIN),
            ..Context::default()
        };
        assert_eq!(
            next_step(&l, consume(1), &full, H),
            Step::Write {
                credits: 0,
                tat: Some(H + 10_000_000)
            }
        );
        let empty = Context {
            burst_tat: Some(H + 10_000_000),
            ..Context::default()
        };
        assert_eq!(
            next_step(&l, consume(1), &empty, H),
            Step::Deny {
                refusing: vec![],
                burst: true
            }
        );
    }

    #[test]
    fn a_meter_the_plan_does_not_limit() {
        let l = locked(vec![]);
        assert_eq!(
            next_step(&l, consume(1), &Context::default(), H),
            Step::NotInPlan
        );
    }
}
