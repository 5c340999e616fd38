-- The fast path of reserve, one statement, for the same common case as fast_charge.sql (one calendar window, no
-- burst limit, from the backend's cache: $6-$8; the meter's only counter row, solo): the UPDATE's condition is the
-- decision under the row's lock (the row is in the current window and the amount fits, holds and carried
-- allowance included); only then is the amount held on the row and the reservation created.
-- Returns the held row and the reservation id, or no row: nothing was written, and the general path decides.
-- Params: $1 user, $2 meter, $3 amount, $4 expiry, $5 now, $6 period, $7 window start, $8 limit (NULL: unlimited).
-- In psql: PREPARE fast_hold(text, text, bigint, timestamptz, timestamptz, text, timestamptz, bigint) AS
--          <this statement>;
--          EXECUTE fast_hold('alice', 'ai_tokens', 500, now() + interval '5 minutes', now(), 'month',
--                            quota.window_start('month', now(), 'UTC'), 10000);
WITH held AS (
    UPDATE quota.counters c SET held = c.held + $3, held_until = LEAST(c.held_until, $4), last_denied = false
    WHERE c.user_id = $1 AND c.meter = $2 AND c.period = $6 AND c.window_start = $7
      AND ($8 IS NULL OR c.used + c.held + $3 <= $8 + c.carry)
      AND c.solo
    RETURNING c.used::bigint, c.held::bigint, c.carry::bigint
), created AS (
    INSERT INTO quota.reservations (user_id, meter, amount, expires_at, created_at)
    SELECT $1, $2, $3, $4, $5 FROM held
    RETURNING id
)
SELECT h.used, h.held, h.carry, r.id FROM held h, created r
