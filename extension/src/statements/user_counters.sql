-- Every counter row of a user, for status's fast path: each window status lists is taken from its row when the
-- row is in the current window and holds no expired reservation (otherwise the general read, read.sql, recounts).
-- Read-only, on the caller's snapshot. Params: $1 user.
-- In psql: PREPARE user_counters(text) AS <this statement>; EXECUTE user_counters('alice');
SELECT c.meter, c.period::text, c.window_start, c.used::bigint, c.held::bigint, c.held_until, c.carry::bigint
FROM quota.counters c
WHERE c.user_id = $1
