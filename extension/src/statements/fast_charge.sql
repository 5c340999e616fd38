-- The fast path of consume, one statement, for the common case: the user has an account, the plan limits the
-- meter with exactly one calendar window, sets no burst limit on it, and the meter has no counter row of another
-- period. The UPDATE's condition is the decision (the row is in the current window and the amount fits its limit,
-- carried allowance and holds included), evaluated under the row's lock, and re-checked on the latest version if
-- another call changed the row meanwhile; only then are the ledger row and the daily rollup appended.
-- Returns the charged window, or no row: then nothing was written, and the engine hands over to the general path
-- (lock.sql), which decides everything else (a first call, a new window, several windows, a burst limit, credits,
-- a denial).
-- Params: $1 user, $2 meter, $3 amount, $4 idempotency key, $5 metadata, $6 now, $7 default plan,
-- $8 default timezone.
WITH account AS (
    SELECT a.plan, a.tz FROM quota._effective_plan($1, $6, $7, $8) a WHERE a.has_account
), lim AS (
    SELECT l.period, l."limit", l.window_start, l.window_end
    FROM account a, quota._effective_limits($1, $2, a.plan, a.tz, $6) l
), charged AS (
    UPDATE quota.counters c SET used = c.used + $3, last_denied = false
    FROM lim
    WHERE c.user_id = $1 AND c.meter = $2 AND c.period = lim.period AND c.window_start = lim.window_start
      AND (lim."limit" IS NULL OR c.used + c.held + $3 <= lim."limit" + c.carry)
      AND (SELECT count(*) FROM lim) = 1
      AND NOT EXISTS (SELECT 1 FROM quota.plan_bursts b, account a WHERE b.plan = a.plan AND b.meter = $2)
      AND NOT EXISTS (SELECT 1 FROM quota.counters o WHERE o.user_id = $1 AND o.meter = $2 AND o.period <> c.period)
    RETURNING c.period, c.used, c.held, c.carry, lim."limit", lim.window_start, lim.window_end
), logged AS (
    INSERT INTO quota.ledger (user_id, meter, amount, idempotency_key, metadata, created_at)
    SELECT $1, $2, $3, $4, $5, $6 FROM charged
), rolled AS (
    INSERT INTO quota.usage_daily AS d (user_id, day, meter, amount, requests, last_at)
    SELECT $1, ($6 AT TIME ZONE 'UTC')::date, $2, $3, 1, $6 FROM charged
    ON CONFLICT (user_id, day, meter) DO UPDATE
    SET amount = d.amount + EXCLUDED.amount, requests = d.requests + 1, last_at = GREATEST(d.last_at, EXCLUDED.last_at)
)
SELECT a.plan, a.tz, ch.period, ch."limit", ch.used, ch.held, ch.carry, ch.window_start, ch.window_end
FROM charged ch, account a
