-- Step 1 of every consume, reserve and commit: read what applies and lock what will be written.
-- Returns one row per effective limit and per counter row of the meter (matched by period), each row also
-- carrying the user's plan, timezone, whether the account exists, and the plan's burst limit for the meter.
-- The counter rows are locked in period order (so concurrent calls for a user queue and never deadlock) and
-- read as the last committed version after any wait. Nothing is written: the engine decides from these rows, then
-- writes once (charge.sql, hold.sql or deny.sql) or prepares what is missing and locks again.
-- Params: $1 user, $2 meter, $3 now, $4 default plan, $5 default timezone.
-- In psql: PREPARE lock(text, text, timestamptz, text, text) AS <this statement>;
--          EXECUTE lock('alice', 'ai_requests', now(), 'free', 'UTC');
WITH counter AS MATERIALIZED (
    SELECT c.period, c.window_start, c.used, c.held, c.held_until, c.carry
    FROM quota.counters c
    WHERE c.user_id = $1 AND c.meter = $2
    ORDER BY c.period
    FOR UPDATE
), account AS MATERIALIZED (
    SELECT a.plan, a.tz, a.has_account FROM quota._effective_plan($1, $3, $4, $5) a
), lim AS (
    SELECT l.period, l."limit", l.rollover_cap, l.window_start, l.window_end
    FROM account a, quota._effective_limits($1, $2, a.plan, a.tz, $3) l
)
SELECT a.plan, a.tz, a.has_account, b.emission_us, b.burst,
       lim.period, lim."limit", lim.rollover_cap, lim.window_start, lim.window_end,
       c.period, c.window_start, c.used, c.held, c.held_until, c.carry
FROM account a
LEFT JOIN quota.plan_bursts b ON b.plan = a.plan AND b.meter = $2
LEFT JOIN (lim FULL JOIN counter c ON c.period = lim.period) ON true
