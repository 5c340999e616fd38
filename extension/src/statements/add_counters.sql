-- Slow path: creates the missing counter rows of the periods in $3, after serialize_counters.sql, so this
-- statement's snapshot holds every row of the user's meter that any session created. '-infinity' is never a
-- current window, so move_windows.sql recounts their usage from the ledger next; the holds of open reservations
-- count from the start.
-- solo (the fast paths' guarantee that the row is the meter's only one) is set here and only here: true on a row
-- created alone, and every existing row loses it when a second row comes. Clearing it locks those rows, so a fast
-- charge that already waits on one re-checks it on the new version and hands over to the general path.
-- Params: $1 user, $2 meter, $3 periods, $4 now.
-- In psql: PREPARE add_counters(text, text, text[], timestamptz) AS <this statement>;
--          EXECUTE add_counters('alice', 'ai_requests', '{day}', now());
WITH rows_after AS (
    SELECT count(*) AS n FROM (
        SELECT c.period FROM quota.counters c WHERE c.user_id = $1 AND c.meter = $2
        UNION
        SELECT unnest($3::text[])
    ) p
), unmarked AS (
    UPDATE quota.counters c SET solo = false
    FROM rows_after r
    WHERE c.user_id = $1 AND c.meter = $2 AND c.solo AND r.n > 1
)
INSERT INTO quota.counters (user_id, meter, period, window_start, held, held_until, solo, rollup_day)
SELECT $1, $2, p, '-infinity', h.total, h.next_expiry, r.n = 1, ($4 AT TIME ZONE 'UTC')::date
FROM unnest($3::text[]) AS p, quota._open_holds($1, $2, $4) h, rows_after r
ON CONFLICT (user_id, meter, period) DO NOTHING
