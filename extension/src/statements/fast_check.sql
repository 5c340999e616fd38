-- The fast path of check, for the same common case as fast_charge.sql (one calendar window, no burst limit, from
-- the backend's cache: $3-$4; the meter's only counter row, solo): the user's counter row when it is in the
-- current window and holds no expired reservation. Read-only, on the caller's snapshot.
-- No row: the general read (read.sql) decides (a row to recount, expired holds, a missing row).
-- Params: $1 user, $2 meter, $3 period, $4 window start, $5 now.
-- In psql: PREPARE fast_check(text, text, text, timestamptz, timestamptz) AS <this statement>;
--          EXECUTE fast_check('alice', 'ai_requests', 'day', quota.window_start('day', now(), 'UTC'), now());
SELECT c.used::bigint, c.held::bigint, c.carry::bigint
FROM quota.counters c
WHERE c.user_id = $1 AND c.meter = $2 AND c.period = $3 AND c.window_start = $4
  AND (c.held = 0 OR c.held_until > $5)
  AND c.solo
