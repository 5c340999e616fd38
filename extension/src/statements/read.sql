-- check and status: a user's windows for one meter ($2) or every meter ($2 NULL), as consume would see them now,
-- without locking or writing. A counter row not yet in the current window (or missing) is counted from the
-- ledger; expired holds are left out. For one meter the plan's burst limit and the user's burst state come too.
-- Returns one row with NULL meter when the plan limits nothing (of the meter). Unordered: status sorts the windows
-- itself (by meter, then shortest period first), and a sort here would set up its memory on every call.
-- Params: $1 user, $2 meter or NULL, $3 now, $4 default plan, $5 default timezone.
WITH account AS MATERIALIZED (
    SELECT a.plan, a.tz FROM quota._effective_plan($1, $3, $4, $5) a
)
SELECT a.plan, w.meter, w.period,
       -- (the CASE keeps the recount functions off the common path: they run only for a row not moved yet)
       w."limit" + CASE WHEN c.window_start = w.window_start THEN c.carry
                        WHEN w.rollover_cap IS NULL THEN 0
                        ELSE COALESCE(quota._carried_into($1, w.meter, w.period, w.window_start, a.tz, w."limit",
                                                          w.rollover_cap, c.window_start, c.used, c.carry), 0)
                   END AS "limit",
       CASE WHEN c.window_start = w.window_start THEN c.used
            ELSE quota._used_in_window($1, w.meter, w.period, w.window_start, w.window_end) END AS used,
       w.window_end AS resets_at,
       CASE WHEN c.user_id IS NULL OR (c.held > 0 AND c.held_until <= $3)
            THEN (SELECT h.total FROM quota._open_holds($1, w.meter, $3) h)
            ELSE COALESCE(c.held, 0) END AS held,
       b.emission_us, b.burst, s.tat
FROM account a
LEFT JOIN quota.plan_bursts b ON b.plan = a.plan AND b.meter = $2
LEFT JOIN quota.bursts s ON s.user_id = $1 AND s.meter = b.meter
LEFT JOIN LATERAL quota._effective_limits($1, $2, a.plan, a.tz, $3) w ON true
-- One primary-key probe per window: as a plain join this was planned as two sorts and a merge join, whose sort
-- memory is set up on every call; LIMIT 1 (the key is unique anyway) keeps the subquery a parameterised probe.
LEFT JOIN LATERAL (
    SELECT c.user_id, c.window_start, c.used, c.held, c.held_until, c.carry FROM quota.counters c
    WHERE c.user_id = $1 AND c.meter = w.meter AND c.period = w.period
    LIMIT 1
) c ON true
