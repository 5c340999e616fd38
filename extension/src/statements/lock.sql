-- Step 1 of every consume, reserve and commit: read what applies and lock what will be written.
-- Returns one row per effective limit of the meter with its counter row (NULL columns when the row is missing),
-- each row also carrying the user's plan, timezone, whether the account exists, and the plan's burst limit for the
-- meter; one row with NULL limit columns when the plan limits nothing on the meter. Every counter row of the meter
-- (also of periods the plan does not limit, which charge.sql keeps in step) is locked, in period order so
-- concurrent calls for a user queue and never deadlock, and read as the last committed version after any wait.
-- Nothing is written: the engine decides from these rows, then writes once (charge.sql, hold.sql or deny.sql) or
-- prepares what is missing and locks again. Only index lookups and nested loops: no hash table is built per call.
-- Params: $1 user, $2 meter, $3 now, $4 default plan, $5 default timezone.
-- In psql: PREPARE lock(text, text, timestamptz, text, text) AS <this statement>;
--          EXECUTE lock('alice', 'ai_requests', now(), 'free', 'UTC');
WITH counter AS MATERIALIZED (
    SELECT c.period, c.window_start, c.used, c.held, c.held_until, c.carry
    FROM quota.counters c
    WHERE c.user_id = $1 AND c.meter = $2
    ORDER BY c.period
    FOR UPDATE
)
SELECT a.plan, a.tz, a.has_account, b.emission_us, b.burst,
       l.period, l."limit", l.rollover_cap, l.window_start, l.window_end,
       c.period, c.window_start, c.used, c.held, c.held_until, c.carry
FROM quota._effective_plan($1, $3, $4, $5) a
-- (the count makes the locking scan run even when no limit applies)
CROSS JOIN (SELECT count(*) AS locked FROM counter) k
LEFT JOIN quota.plan_bursts b ON b.plan = a.plan AND b.meter = $2
LEFT JOIN LATERAL quota._effective_limits($1, $2, a.plan, a.tz, $3) l ON true
LEFT JOIN counter c ON c.period = l.period
