-- fast_charge.sql for a backend that does not have the user's meter in its cache yet (meter_cache.rs): the same
-- decision under the row's lock and the same writes, with the configuration read in the same statement (the
-- account, its one limit on the meter with the current window, no burst limit), and returned so the backend keeps
-- it for the next calls. A user's first call in a backend costs one statement, like every later one.
-- No row: nothing was written (no account, expired plan, several windows, a burst limit, a row of another period,
-- a new window, or the amount does not fit), and the engine hands over to the general path.
-- Params: $1 user, $2 meter, $3 amount, $4 idempotency key, $5 metadata, $6 now, $7 default timezone.
-- In psql: PREPARE fast_charge_cold(text, text, bigint, text, jsonb, timestamptz, text) AS <this statement>;
--          EXECUTE fast_charge_cold('alice', 'ai_requests', 1, NULL, NULL, now(), 'UTC');
WITH account AS (
    SELECT a.plan, COALESCE(a.timezone, $7) AS tz, a.timezone IS NULL AS tz_is_default, a.plan_expires_at
    FROM quota.accounts a
    WHERE a.user_id = $1 AND (a.plan_expires_at IS NULL OR a.plan_expires_at > $6)
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
    RETURNING c.period::text, c.used::bigint, c.held::bigint, c.carry::bigint, lim."limit", lim.window_start,
              lim.window_end
), logged AS (
    INSERT INTO quota.ledger (user_id, meter, amount, idempotency_key, metadata, created_at)
    SELECT $1, $2, $3, $4, $5, $6 FROM charged
), rolled AS (
    INSERT INTO quota.usage_daily AS d (user_id, day, meter, amount, requests, last_at)
    SELECT $1, ($6 AT TIME ZONE 'UTC')::date, $2, $3, 1, $6 FROM charged
    ON CONFLICT (user_id, day, meter) DO UPDATE
    SET amount = d.amount + EXCLUDED.amount, requests = d.requests + 1, last_at = GREATEST(d.last_at, EXCLUDED.last_at)
)
SELECT ch.used, ch.held, ch.carry, a.plan, a.tz, a.tz_is_default, a.plan_expires_at, ch.period, ch."limit",
       ch.window_start, ch.window_end
FROM charged ch, account a
