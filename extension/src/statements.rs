//! The engine's SQL, prepared once per backend and kept (`SPI_keepplan`).
//!
//! No statement is built from input: every value is a bound parameter. Kept plans are revalidated by PostgreSQL
//! when the objects they use change, so they survive `ALTER EXTENSION ... UPDATE` and even a drop and re-create.

use std::cell::OnceCell;

use pgrx::pg_sys::{PgBuiltInOids, PgOid};
use pgrx::spi::{OwnedPreparedStatement, SpiClient};

use crate::error::Result;

/// The per-user account and the effective limits of one meter: the plan's limit rows, replaced or extended by the
/// user's overrides. Shared by the consume statement, so its rules cannot drift from each other.
macro_rules! account_and_limits {
    () => {
        r#"acct AS (
    SELECT CASE WHEN a.plan_expires_at <= $6 THEN $7 ELSE a.plan END AS plan,
           COALESCE(a.timezone, $8) AS tz
    FROM quota.accounts a
    WHERE a.user_id = $1
), lim AS (
    SELECT COALESCE(o.period, p.period) AS period,
           CASE WHEN o.period IS NULL THEN p."limit" ELSE o."limit" END AS lim, p.rollover_cap AS cap
    FROM (SELECT pl.period, pl."limit", pl.rollover_cap FROM quota.plan_limits pl, acct
          WHERE pl.plan = acct.plan AND pl.meter = $2) p
    FULL JOIN (SELECT ul.period, ul."limit" FROM quota.user_limits ul
               WHERE ul.user_id = $1 AND ul.meter = $2) o ON o.period = p.period
), ws AS (
    SELECT lim.period, lim.lim, lim.cap, quota.window_start(lim.period, $6, acct.tz) AS ws FROM lim, acct
), win AS (
    SELECT ws.period, ws.lim, ws.cap, ws.ws, quota.window_end(ws.period, ws.ws, acct.tz) AS we, acct.tz
    FROM ws, acct
)"#
    };
}

/// A counter row's usage in the current window `win`: its own count when it is already in that window,
/// otherwise what the ledger says the user spent in the window so far. That second branch runs only when a row
/// moves to a new window (once per window) and makes the count right whenever the row missed usage: a limit
/// added mid-window, a plan that did not limit this period for a while, a timezone change. Uses $1 user, $2 meter.
macro_rules! window_used {
    ($meter:literal) => {
        concat!(
            r#"(CASE WHEN c.window_start = win.ws THEN c.used ELSE (
        SELECT COALESCE(sum(g.amount), 0)::bigint FROM quota.ledger g
        WHERE g.user_id = $1 AND g.created_at >= win.ws AND g.created_at < win.we AND g.meter = "#,
            $meter,
            r#"
          AND (g.reset_period IS NULL OR g.reset_period = win.period)) END)"#
        )
    };
}

/// Rollover: the allowance carried into the current window `win` from the one before it, up to the plan
/// limit's `rollover_cap` (`win.cap`; NULL: no rollover). A row still in the window before carries what that
/// window left unused (its own carry included); a row further back is recounted from the ledger; a new row
/// carries nothing. Computed only when a row moves to a new window, then kept on the row.
macro_rules! carry {
    ($meter:literal) => {
        concat!(
            r#"(CASE WHEN c.window_start = win.ws THEN c.carry
      WHEN win.cap IS NULL OR win.lim IS NULL OR c.window_start = '-infinity' THEN 0
      ELSE LEAST(win.cap, GREATEST(0, win.lim
        + CASE WHEN c.window_start = quota.window_start(win.period, win.ws - interval '1 microsecond', win.tz)
               THEN c.carry - c.used
               ELSE -(SELECT COALESCE(sum(g.amount), 0)::bigint FROM quota.ledger g
                      WHERE g.user_id = $1 AND g.meter = "#,
            $meter,
            r#"
                        AND g.created_at >= quota.window_start(win.period, win.ws - interval '1 microsecond', win.tz)
                        AND g.created_at < win.ws
                        AND (g.reset_period IS NULL OR g.reset_period = win.period)) END)) END)"#
        )
    };
}

/// Whether the amount fits the window: usage plus held plus the amount within the limit (or no limit).
/// Whether the amount fits a counter row already in the current window `win`: usage plus held plus the amount
/// within the limit and the carried allowance. With $11 the credits the user may spend (0 when none are offered),
/// the part beyond the allowance must be payable from them; a window already past its limit (credits paid
/// before) needs the whole amount from credits.
macro_rules! fits {
    () => {
        "($13 OR win.lim IS NULL OR LEAST($3, GREATEST(0, c.used + c.held + $3 - win.lim - c.carry)) <= $11)"
    };
}

/// The hot path, one statement: read the account and limits, lock the counter rows (in period order when a meter
/// has several), add the amount where it fits or count a denial where it does not, and append the ledger row
/// only when every window took the amount. Only rows already in the current window are touched: a row that is
/// missing or still in an earlier window comes back with NULL used, and the engine creates it or moves it on
/// (ROLLOVER) and tries again, so the rarely needed recount stays out of this statement. Counter rows of periods
/// the plan does not limit (left from another plan or an override) are kept in step too, so they are right the
/// moment a limit applies to them again. In hold mode ($9, for quota.reserve) the amount goes to `held` instead
/// of `used` and a reservation row expiring at $10 replaces the ledger row.
///
/// Params: $1 user, $2 meter, $3 amount, $4 idempotency key, $5 metadata, $6 now, $7 default plan, $8 default tz,
/// $9 hold mode, $10 hold expiry, $11 credits on offer, $12 whether the burst limit applies (not to the charge
/// of a commit, whose call was admitted at reserve), $13 force: every window takes the amount even past its limit
/// (a commit with p_overage). Returns no row when the account does not exist; one row with
/// NULL period when the plan lacks the meter; otherwise one row per limit, with NULL used where the counter row
/// does not exist yet or is not in the current window.
pub const CONSUME: &str = concat!(
    "WITH ",
    account_and_limits!(),
    r#", lk AS (
    SELECT c.period FROM quota.counters c
    WHERE c.user_id = $1 AND c.meter = $2
      AND ((SELECT count(*) FROM win) > 1 OR c.period NOT IN (SELECT win.period FROM win))
    ORDER BY c.period
    FOR UPDATE
), upd AS (
    UPDATE quota.counters c SET
        used = c.used + CASE WHEN NOT $9 AND "#,
    fits!(),
    r#" THEN $3 ELSE 0 END,
        held = c.held + CASE WHEN $9 AND "#,
    fits!(),
    r#" THEN $3 ELSE 0 END,
        held_until = CASE WHEN $9 THEN LEAST(c.held_until, $10) ELSE c.held_until END,
        denied = c.denied + CASE WHEN "#,
    fits!(),
    r#" THEN 0 ELSE 1 END,
        last_denied = NOT "#,
    fits!(),
    r#"
    FROM win
    WHERE c.user_id = $1 AND c.meter = $2 AND c.period = win.period AND c.window_start = win.ws
      AND (SELECT count(*) FROM lk) >= 0
    RETURNING c.period, c.used, c.last_denied, c.held, c.held > 0 AND c.held_until <= $6 AS stale_holds, c.carry
), bcfg AS (
    SELECT b.emission_us AS t, b.burst FROM quota.plan_bursts b, acct
    WHERE b.plan = acct.plan AND b.meter = $2 AND $12
), bcur AS (
    SELECT s.tat FROM quota.bursts s WHERE s.user_id = $1 AND s.meter = $2 AND EXISTS (SELECT 1 FROM bcfg)
), bst AS (
    UPDATE quota.bursts s SET tat = GREATEST(s.tat, $6) + ($3 * bcfg.t) * interval '1 microsecond'
    FROM bcfg
    WHERE s.user_id = $1 AND s.meter = $2
      AND GREATEST(s.tat, $6) + (($3 - bcfg.burst) * bcfg.t) * interval '1 microsecond' <= $6
      AND (SELECT count(*) FROM upd WHERE NOT upd.last_denied) = (SELECT count(*) FROM win)
    RETURNING s.tat
), ok AS (
    SELECT (EXISTS (SELECT 1 FROM win) OR EXISTS (SELECT 1 FROM bcfg))
       AND (SELECT count(*) FROM upd WHERE NOT upd.last_denied) = (SELECT count(*) FROM win)
       AND (NOT EXISTS (SELECT 1 FROM bcfg) OR EXISTS (SELECT 1 FROM bst)) AS all_fit
), led AS (
    INSERT INTO quota.ledger (user_id, meter, amount, idempotency_key, metadata, created_at, credits)
    SELECT $1, $2, $3, $4, $5, $6,
           COALESCE((SELECT max(LEAST($3, GREATEST(0, u.used + u.held - w.lim - u.carry)))
                     FROM upd u JOIN win w ON w.period = u.period WHERE $11 > 0), 0)
    FROM ok WHERE ok.all_fit AND NOT $9
    RETURNING credits
), roll AS (
    INSERT INTO quota.usage_daily AS d (user_id, day, meter, amount, requests, last_at)
    SELECT $1, ($6 AT TIME ZONE 'UTC')::date, $2, $3, 1, $6 FROM led
    ON CONFLICT (user_id, day, meter) DO UPDATE
    SET amount = d.amount + EXCLUDED.amount, requests = d.requests + 1,
        last_at = GREATEST(d.last_at, EXCLUDED.last_at)
), res AS (
    INSERT INTO quota.reservations (user_id, meter, amount, expires_at, created_at)
    SELECT $1, $2, $3, $10, $6 FROM ok WHERE ok.all_fit AND $9
    RETURNING id
), unlimited AS (
    UPDATE quota.counters c SET
        used = c.used + CASE WHEN NOT $9 AND c.window_start = quota.window_start(c.period, $6, acct.tz)
                             THEN $3 ELSE 0 END,
        held = c.held + CASE WHEN $9 THEN $3 ELSE 0 END,
        held_until = CASE WHEN $9 THEN LEAST(c.held_until, $10) ELSE c.held_until END
    FROM acct
    WHERE c.user_id = $1 AND c.meter = $2 AND c.period NOT IN (SELECT win.period FROM win)
      AND (SELECT count(*) FROM led) + (SELECT count(*) FROM res) > 0
)
SELECT acct.plan, win.period, win.lim + COALESCE(upd.carry, 0), upd.used, upd.last_denied, win.we AS resets_at,
       (SELECT count(*) FROM led)::int4 AS logged,
       upd.held, upd.stale_holds, (SELECT id FROM res) AS reservation_id,
       (SELECT credits FROM led) AS credits,
       EXISTS (SELECT 1 FROM bcfg) AS burst_limited,
       EXISTS (SELECT 1 FROM bcfg) AND NOT EXISTS (SELECT 1 FROM bcur) AS burst_missing,
       EXISTS (SELECT 1 FROM bst) AS burst_ok
FROM acct LEFT JOIN win ON true LEFT JOIN upd ON upd.period = win.period"#
);

/// Takes back an attempt: the amount added to the windows in $4 (to used, or to held in hold mode $6) and the
/// denial counted in the windows in $5. Params: $1 user, $2 meter, $3 amount, $4 periods, $5 periods, $6 hold.
pub const UNDO: &str = "UPDATE quota.counters SET \
     used = used - CASE WHEN NOT $6 AND period = ANY ($4) THEN $3 ELSE 0 END, \
     held = held - CASE WHEN $6 AND period = ANY ($4) THEN $3 ELSE 0 END, \
     denied = denied - CASE WHEN period = ANY ($5) THEN 1 ELSE 0 END \
     WHERE user_id = $1 AND meter = $2 AND (period = ANY ($4) OR period = ANY ($5))";

/// Recomputes held from the reservations still open, once an expiry has passed (the rows are already locked).
/// Params: $1 user, $2 meter, $3 now.
pub const EXPIRE_HOLDS: &str = "UPDATE quota.counters c SET held = h.total, held_until = h.next \
     FROM (SELECT COALESCE(sum(r.amount), 0)::bigint AS total, min(r.expires_at) AS next \
           FROM quota.reservations r \
           WHERE r.user_id = $1 AND r.meter = $2 AND r.state = 'held' AND r.expires_at > $3) h \
     WHERE c.user_id = $1 AND c.meter = $2";

/// Creates missing counter rows. '-infinity' is never a current window, so the consume statement takes their
/// usage from the ledger; the holds of open reservations count from the start. Params: $1 user, $2 meter,
/// $3 periods, $4 now.
pub const ADD_COUNTERS: &str =
    "INSERT INTO quota.counters (user_id, meter, period, window_start, held, held_until) \
     SELECT $1, $2, p, '-infinity', h.total, h.next FROM unnest($3::text[]) AS p, \
       (SELECT COALESCE(sum(r.amount), 0)::bigint AS total, min(r.expires_at) AS next \
        FROM quota.reservations r \
        WHERE r.user_id = $1 AND r.meter = $2 AND r.state = 'held' AND r.expires_at > $4) h \
     ON CONFLICT (user_id, meter, period) DO NOTHING";

/// Moves counter rows of the periods in $9 that are not in the current window into it: usage recounted from the
/// ledger for the window so far, the carried allowance computed, denials zeroed. Runs once per row and window
/// (or when a row missed usage), never on the hot path. A concurrent session doing the same finds the row
/// already moved and leaves it. Params as CONSUME's $1..$8 ($3..$5 unused), $9 periods.
pub const ROLLOVER: &str = concat!(
    "WITH ",
    account_and_limits!(),
    r#"
UPDATE quota.counters c SET
    window_start = win.ws,
    used = "#,
    window_used!("$2"),
    r#",
    carry = "#,
    carry!("$2"),
    r#",
    denied = 0,
    last_denied = false
FROM win
WHERE c.user_id = $1 AND c.meter = $2 AND c.period = win.period AND c.period = ANY ($9)
  AND c.window_start IS DISTINCT FROM win.ws"#
);

/// Gives a user without an account the default plan, exactly once however many sessions race.
/// Params: $1 user, $2 default plan. Returns (created, plan_exists).
pub const ENSURE_ACCOUNT: &str = "WITH ins AS ( \
     INSERT INTO quota.accounts (user_id, plan) SELECT $1, p.key FROM quota.plans p WHERE p.key = $2 \
     ON CONFLICT (user_id) DO NOTHING RETURNING 1) \
     SELECT (SELECT count(*) FROM ins) > 0, EXISTS (SELECT 1 FROM quota.plans WHERE key = $2)";

/// Tells an undeclared meter (an error) from a meter the plan does not include (a denial).
/// Params: $1 meter, $2 plan. Returns (meter_exists, plan_exists).
pub const METER_AND_PLAN_EXIST: &str =
    "SELECT EXISTS (SELECT 1 FROM quota.meters WHERE key = $1), \
     EXISTS (SELECT 1 FROM quota.plans WHERE key = $2)";

/// Read-only view of a user's windows, for one meter or (meter NULL) all of them: what check and status report.
/// Params: $1 user, $2 meter or NULL, $3 now, $4 default plan, $5 default tz.
pub const READ: &str = concat!(
    r#"WITH acct AS (
    SELECT CASE WHEN a.user_id IS NULL OR a.plan_expires_at <= $3 THEN $4 ELSE a.plan END AS plan,
           COALESCE(a.timezone, $5) AS tz
    FROM (SELECT 1) AS one LEFT JOIN quota.accounts a ON a.user_id = $1
), lim AS (
    SELECT COALESCE(o.meter, p.meter) AS meter, COALESCE(o.period, p.period) AS period,
           CASE WHEN o.period IS NULL THEN p."limit" ELSE o."limit" END AS lim, p.rollover_cap AS cap
    FROM (SELECT pl.meter, pl.period, pl."limit", pl.rollover_cap FROM quota.plan_limits pl, acct
          WHERE pl.plan = acct.plan AND ($2::text IS NULL OR pl.meter = $2)) p
    FULL JOIN (SELECT ul.meter, ul.period, ul."limit" FROM quota.user_limits ul
               WHERE ul.user_id = $1 AND ($2::text IS NULL OR ul.meter = $2)) o
      ON o.meter = p.meter AND o.period = p.period
), ws AS (
    SELECT lim.meter, lim.period, lim.lim, lim.cap, quota.window_start(lim.period, $3, acct.tz) AS ws
    FROM lim, acct
), win AS (
    SELECT ws.*, quota.window_end(ws.period, ws.ws, acct.tz) AS we, acct.tz FROM ws, acct
)
SELECT acct.plan, win.meter, win.period, win.lim + COALESCE("#,
    carry!("win.meter"),
    r#", 0),
       "#,
    window_used!("win.meter"),
    r#" AS used,
       win.we AS resets_at,
       CASE WHEN c.user_id IS NULL OR (c.held > 0 AND c.held_until <= $3)
            THEN (SELECT COALESCE(sum(r.amount), 0)::bigint FROM quota.reservations r
                  WHERE r.user_id = $1 AND r.meter = win.meter AND r.state = 'held' AND r.expires_at > $3)
            ELSE COALESCE(c.held, 0) END AS held
FROM acct LEFT JOIN win ON true
LEFT JOIN quota.counters c ON c.user_id = $1 AND c.meter = win.meter AND c.period = win.period
ORDER BY win.meter, win.period"#
);

/// Claims an idempotency key before consuming. A concurrent claim of the same key waits here for the first to
/// finish, so the second sees its outcome instead of charging again. Params: $1 user, $2 key, $3 meter,
/// $4 amount, $5 metadata, $6 now (aiquota's clock, which quota.purge_idempotency_keys compares with).
/// Returns a row when the key was claimed.
pub const CLAIM_KEY: &str =
    "INSERT INTO quota.idempotency_keys (user_id, key, meter, amount, metadata, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, key) DO NOTHING RETURNING 1";

/// The request and decision stored under a key. Params: $1 user, $2 key.
pub const LOAD_KEY: &str = "SELECT meter, amount, metadata, decision FROM quota.idempotency_keys \
     WHERE user_id = $1 AND key = $2";

/// Stores the decision of an allowed, keyed consumption. Params: $1 user, $2 key, $3 decision.
pub const STORE_DECISION: &str =
    "UPDATE quota.idempotency_keys SET decision = $3 WHERE user_id = $1 AND key = $2";

/// Releases the claim of a denied, keyed attempt: nothing was charged, so a retry is evaluated afresh.
/// Params: $1 user, $2 key.
pub const DROP_KEY: &str = "DELETE FROM quota.idempotency_keys WHERE user_id = $1 AND key = $2";

/// Locks a reservation for settling. Params: $1 id. Returns user_id, meter, amount, state, expires_at.
pub const LOCK_RESERVATION: &str =
    "SELECT user_id, meter, amount, state, expires_at FROM quota.reservations \
     WHERE id = $1 AND ($2::text IS NULL OR user_id = $2) FOR UPDATE";

/// Frees a hold on every window of the meter, locking the rows in the engine's order first. GREATEST: a window
/// added after the hold was taken never counted it. Params: $1 user, $2 meter, $3 amount.
pub const RELEASE_HOLD: &str = "WITH lk AS ( \
     SELECT c.period FROM quota.counters c WHERE c.user_id = $1 AND c.meter = $2 ORDER BY c.period FOR UPDATE) \
     UPDATE quota.counters c SET held = GREATEST(c.held - $3, 0) \
     WHERE c.user_id = $1 AND c.meter = $2 AND (SELECT count(*) FROM lk) >= 0";

/// Records how a reservation was settled. Params: $1 user, $2 id, $3 state, $4 actual, $5 charged, $6 now.
pub const SETTLE_RESERVATION: &str = "UPDATE quota.reservations \
     SET state = $3, actual = $4, charged = $5, settled_at = $6 WHERE user_id = $1 AND id = $2";

/// Counts a final denial in the daily rollup (last_at stays the last use: a denial used nothing).
/// Params: $1 user, $2 meter, $3 now.
pub const RECORD_DENIAL: &str =
    "INSERT INTO quota.usage_daily AS d (user_id, day, meter, denials) \
     VALUES ($1, ($3 AT TIME ZONE 'UTC')::date, $2, 1) \
     ON CONFLICT (user_id, day, meter) DO UPDATE SET denials = d.denials + 1";

/// The user's unexpired credits for a meter. No row lock is needed: consume reads this only while it holds the
/// meter's counter rows, which every spender of these credits must lock first. Params: $1 user, $2 meter, $3 now.
pub const CREDIT_BALANCE: &str = "SELECT COALESCE(sum(g.remaining), 0)::bigint FROM quota.grants g \
     WHERE g.user_id = $1 AND g.meter = $2 AND g.remaining > 0 AND (g.expires_at IS NULL OR g.expires_at > $3)";

/// Spends $4 from the credits CREDIT_BALANCE summed, earliest expiry first (no expiry last), oldest first
/// among equals. Params: $1 user, $2 meter, $3 now, $4 amount.
pub const SPEND_CREDITS: &str = "WITH g AS ( \
     SELECT g.id, g.remaining, \
            sum(g.remaining) OVER (ORDER BY g.expires_at NULLS LAST, g.id) - g.remaining AS before \
     FROM quota.grants g \
     WHERE g.user_id = $1 AND g.meter = $2 AND g.remaining > 0 AND (g.expires_at IS NULL OR g.expires_at > $3)) \
     UPDATE quota.grants q SET remaining = q.remaining - LEAST(g.remaining, $4 - g.before) \
     FROM g WHERE q.user_id = $1 AND q.id = g.id AND g.before < $4";

/// A plan's burst limit for a meter and the user's GCRA state. Params: $1 user, $2 meter, $3 plan.
/// Returns emission_us, burst, rate, per, tat (NULL before the first call).
pub const READ_BURST: &str = "SELECT b.emission_us, b.burst, b.rate, b.per::text, s.tat \
     FROM quota.plan_bursts b LEFT JOIN quota.bursts s ON s.user_id = $1 AND s.meter = b.meter \
     WHERE b.plan = $3 AND b.meter = $2";

/// Creates the GCRA state row; '-infinity' means a full bucket. Params: $1 user, $2 meter.
pub const ADD_BURST: &str =
    "INSERT INTO quota.bursts (user_id, meter, tat) VALUES ($1, $2, '-infinity') \
     ON CONFLICT (user_id, meter) DO NOTHING";

/// Every statement, prepared.
pub struct Prepared {
    pub consume: OwnedPreparedStatement,
    pub undo: OwnedPreparedStatement,
    pub expire_holds: OwnedPreparedStatement,
    pub add_counters: OwnedPreparedStatement,
    pub rollover: OwnedPreparedStatement,
    pub ensure_account: OwnedPreparedStatement,
    pub meter_and_plan_exist: OwnedPreparedStatement,
    pub read: OwnedPreparedStatement,
    pub claim_key: OwnedPreparedStatement,
    pub load_key: OwnedPreparedStatement,
    pub store_decision: OwnedPreparedStatement,
    pub drop_key: OwnedPreparedStatement,
    pub lock_reservation: OwnedPreparedStatement,
    pub release_hold: OwnedPreparedStatement,
    pub settle_reservation: OwnedPreparedStatement,
    pub record_denial: OwnedPreparedStatement,
    pub credit_balance: OwnedPreparedStatement,
    pub spend_credits: OwnedPreparedStatement,
    pub read_burst: OwnedPreparedStatement,
    pub add_burst: OwnedPreparedStatement,
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
    // Mutating statements run with a fresh snapshot per statement (READ COMMITTED), which LOAD_KEY relies on to
    // see a concurrent claim that committed while CLAIM_KEY waited; read-only ones reuse the caller's snapshot.
    let keep = |sql: &str, args: &[PgOid]| -> Result<OwnedPreparedStatement> {
        Ok(client.prepare_mut(sql, args)?.keep())
    };
    let keep_read_only = |sql: &str, args: &[PgOid]| -> Result<OwnedPreparedStatement> {
        Ok(client.prepare(sql, args)?.keep())
    };
    Ok(Prepared {
        consume: keep(
            CONSUME,
            &[
                text, text, int8, text, jsonb, tstz, text, text, boolean, tstz, int8, boolean,
                boolean,
            ],
        )?,
        undo: keep(UNDO, &[text, text, int8, texts, texts, boolean])?,
        expire_holds: keep(EXPIRE_HOLDS, &[text, text, tstz])?,
        add_counters: keep(ADD_COUNTERS, &[text, text, texts, tstz])?,
        rollover: keep(
            ROLLOVER,
            &[text, text, int8, text, jsonb, tstz, text, text, texts],
        )?,
        ensure_account: keep(ENSURE_ACCOUNT, &[text, text])?,
        meter_and_plan_exist: keep_read_only(METER_AND_PLAN_EXIST, &[text, text])?,
        read: keep_read_only(READ, &[text, text, tstz, text, text])?,
        claim_key: keep(CLAIM_KEY, &[text, text, text, int8, jsonb, tstz])?,
        load_key: keep(LOAD_KEY, &[text, text])?,
        store_decision: keep(STORE_DECISION, &[text, text, jsonb])?,
        drop_key: keep(DROP_KEY, &[text, text])?,
        lock_reservation: keep(LOCK_RESERVATION, &[uuid, text])?,
        release_hold: keep(RELEASE_HOLD, &[text, text, int8])?,
        settle_reservation: keep(SETTLE_RESERVATION, &[text, uuid, text, int8, int8, tstz])?,
        record_denial: keep(RECORD_DENIAL, &[text, text, tstz])?,
        credit_balance: keep(CREDIT_BALANCE, &[text, text, tstz])?,
        spend_credits: keep(SPEND_CREDITS, &[text, text, tstz, int8])?,
        read_burst: keep(READ_BURST, &[text, text, text])?,
        add_burst: keep(ADD_BURST, &[text, text])?,
    })
}

/// Runs `f` with the prepared statements, preparing them on the backend's first call.
pub fn with<'c, R>(
    client: &mut SpiClient<'c>,
    f: impl FnOnce(&mut SpiClient<'c>, &Prepared) -> Result<R>,
) -> Result<R> {
    PREPARED.with(|cell| {
        if cell.get().is_none() {
            let prepared = prepare(client)?;
            // Cannot be set already: a backend runs one call at a time and `prepare` does not re-enter.
            let _ = cell.set(prepared);
        }
        match cell.get() {
            Some(p) => f(client, p),
            None => Err(crate::error::QuotaError::Internal(
                "statements not prepared".into(),
            )),
        }
    })
}
