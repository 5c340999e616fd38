-- Slow path: moves the counter rows of the periods in $6 that are not in the current window into it (once per
-- row and window): usage recounted from the ledger for the window so far, the carried allowance computed,
-- denials zeroed. A concurrent session doing the same finds the row already moved and leaves it.
-- Params: $1 user, $2 meter, $3 now, $4 default plan, $5 default timezone, $6 periods.
UPDATE quota.counters c SET
    window_start = l.window_start,
    used = quota._used_in_window($1, $2, l.period, l.window_start, l.window_end),
    carry = quota._carried_into($1, $2, l.period, l.window_start, a.tz, l."limit", l.rollover_cap,
                                c.window_start, c.used, c.carry),
    denied = 0,
    last_denied = false
FROM quota._effective_plan($1, $3, $4, $5) a, quota._effective_limits($1, $2, a.plan, a.tz, $3) l
WHERE c.user_id = $1 AND c.meter = $2 AND c.period = l.period AND c.period = ANY ($6)
  AND c.window_start IS DISTINCT FROM l.window_start
