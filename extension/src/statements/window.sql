-- The window of a period in a timezone that contains a moment, start and end (meter_cache.rs keeps it while it is
-- current). Params: $1 period, $2 timezone, $3 now.
-- In psql: PREPARE window(text, text, timestamptz) AS <this statement>; EXECUTE window('day', 'UTC', now());
SELECT w.start, quota.window_end($1, w.start, $2)
FROM (SELECT quota.window_start($1, $3, $2) AS start) w
