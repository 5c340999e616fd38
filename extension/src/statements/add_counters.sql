-- Slow path: creates the missing counter rows of the periods in $3. '-infinity' is never a current window, so
-- move_windows.sql recounts their usage from the ledger next; the holds of open reservations count from the
-- start. A concurrent session creating the same row wins; this one then waits for it and does nothing.
-- Params: $1 user, $2 meter, $3 periods, $4 now.
INSERT INTO quota.counters (user_id, meter, period, window_start, held, held_until)
SELECT $1, $2, p, '-infinity', h.total, h.next_expiry
FROM unnest($3::text[]) AS p, quota._open_holds($1, $2, $4) h
ON CONFLICT (user_id, meter, period) DO NOTHING
