-- Writes an allowed consume, decided under the locks of lock.sql: the amount goes to every counter row of the
-- meter that is in its current window (the limited ones all are; rows of periods the plan does not limit are kept
-- in step so they are right the moment a limit applies again), one ledger row, and the daily rollup.
-- Params: $1 user, $2 meter, $3 amount, $4 idempotency key, $5 metadata, $6 now, $7 the part paid from credits,
-- $8 the user's timezone.
WITH counted AS (
    UPDATE quota.counters c
    SET used = c.used + $3, last_denied = false
    WHERE c.user_id = $1 AND c.meter = $2
      AND c.window_start = quota.window_start(c.period, $6, $8)
), logged AS (
    INSERT INTO quota.ledger (user_id, meter, amount, idempotency_key, metadata, created_at, credits)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
)
INSERT INTO quota.daily_rollup AS d (user_id, day, meter, amount, requests, last_at)
VALUES ($1, ($6 AT TIME ZONE 'UTC')::date, $2, $3, 1, $6)
ON CONFLICT (user_id, day, meter) DO UPDATE
SET amount = d.amount + EXCLUDED.amount, requests = d.requests + 1, last_at = GREATEST(d.last_at, EXCLUDED.last_at)
