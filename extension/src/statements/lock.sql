-- Step 1 of every consume, reserve and commit: read what applies and lock what will be written.
-- Returns one row per effective limit of the meter with its counter row (NULL columns when the row is missing),
-- each row also carrying the user's plan, timezone, whether the account exists, the plan's burst limit for the
-- meter, whether a counter row still carries the daily rollup of an earlier UTC day, and which rows it locked; one row with NULL limit columns when the plan limits nothing on the meter. Every counter row of the meter
-- (also of periods the plan does not limit, which charge.sql keeps in step) is locked, in period order so
-- concurrent calls for a user queue and never deadlock, and read as the last committed version after any wait.
-- Nothing is written: the engine decides from these rows, then writes once (charge.sql, hold.sql or deny.sql) or
-- prepares what is missing and locks again. Only index lookups and nested loops: no hash table is built per call.
-- Params: $1 user, $2 meter, $3 now, $4 default plan, $5 default timezone.
-- In psql: PREPARE lock(text, text, timestamptz, text, text) AS <this statement>;
--          EXECUTE lock('alice', 'ai_requests', now(), 'free', 'UTC');
WITH counter AS MATERIALIZED (
    SELECT c.period, c.window_start, c.used, c.held, c.held_until, c.carry, c.rollup_day
    FROM quota.counters c
    WHERE c.user_id = $1 AND c.meter = $2
    ORDER BY c.period
    FOR UPDATE
)
SELECT a.plan, a.tz, a.has_account, b.emission_us, b.burst,
       l.period, l."limit", l.rollover_cap, l.window_start, l.window_end,
       c.period, c.window_start, c.used, c.held, c.held_until, c.carry, k.rollup_stale, k.locked_periods
FROM quota._effective_plan($1, $3, $4, $5) a
-- (the aggregate also makes the locking scan run when no limit applies) Whether a row does not carry today's
-- part of the daily rollup yet (fold_rollup.sql moves it first), and the periods of the rows locked here.
CROSS JOIN (
    SELECT COALESCE(bool_or(r.rollup_day IS DISTINCT FROM ($3 AT TIME ZONE 'UTC')::date), false) AS rollup_stale,
           COALESCE(array_agg(r.period::text), '{}') AS locked_periods
    FROM counter r
) k
LEFT JOIN quota.plan_bursts b ON b.plan = a.plan AND b.meter = $2
LEFT JOIN LATERAL quota._effective_limits($1, $2, a.plan, a.tz, $3) l ON true
LEFT JOIN counter c ON c.period = l.period
