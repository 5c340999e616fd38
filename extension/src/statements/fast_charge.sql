-- The fast path of consume, one statement, for the common case: the user's plan limits the meter with exactly one
-- calendar window and sets no burst limit on it (known from the backend's cache, meter_cache.rs: $7-$9), and the
-- row is the meter's only counter row (solo, which add_counters.sql keeps). The UPDATE's condition is the decision
-- (the row is in the current window and is still solo, and the amount fits its limit, carried allowance and holds
-- included), evaluated under the row's lock, and re-checked on the latest version if another call changed the row
-- meanwhile (a row of another period created meanwhile cleared solo under this lock); only then is the ledger
-- row appended. The call's part of the daily rollup goes on the same row (rollup_*, when it carries today's UTC
-- day: quota.usage_daily adds it), so one call writes two rows, as a hand-written limiter does.
-- Returns the charged row, or no row: then nothing was written, and the engine hands over to the general path
-- (lock.sql), which decides everything else (a new window or day, a denial, expired holds, credits).
-- A commit passes its hold as $10: the hold is freed in the same update (GREATEST: a row added after the hold
-- was taken never counted it), so the row is written once; a consume passes 0.
-- Params: $1 user, $2 meter, $3 amount, $4 idempotency key, $5 metadata, $6 now, $7 period, $8 window start,
-- $9 limit (NULL: unlimited), $10 amount held to free first.
-- In psql: PREPARE fast_charge(text, text, bigint, text, jsonb, timestamptz, text, timestamptz, bigint, bigint) AS
--          <this statement>;
--          EXECUTE fast_charge('alice', 'ai_requests', 1, NULL, NULL, now(), 'day',
--                              quota.window_start('day', now(), 'UTC'), 10, 0);
WITH charged AS (
    UPDATE quota.counters c
    SET used = c.used + $3, held = GREATEST(c.held - $10, 0), last_denied = false,
        rollup_amount = c.rollup_amount + $3, rollup_requests = c.rollup_requests + 1,
        rollup_last_at = GREATEST(c.rollup_last_at, $6)
    WHERE c.user_id = $1 AND c.meter = $2 AND c.period = $7 AND c.window_start = $8
      AND ($9 IS NULL OR c.used + GREATEST(c.held - $10, 0) + $3 <= $9 + c.carry)
      AND c.solo AND c.rollup_day = ($6 AT TIME ZONE 'UTC')::date
    RETURNING c.used::bigint, c.held::bigint, c.carry::bigint
), logged AS (
    INSERT INTO quota.ledger (user_id, meter, amount, idempotency_key, metadata, created_at)
    SELECT $1, $2, $3, $4, $5, $6 FROM charged
)
SELECT used, held, carry FROM charged
