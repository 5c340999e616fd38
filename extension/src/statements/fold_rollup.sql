-- Slow path, under the locks of lock.sql: moves the part of the daily rollup that the user's counter rows of the
-- meter carry for an earlier UTC day (or none yet: a row from before 0.5.0) into quota.daily_rollup, and starts
-- carrying today's. Run once per row and UTC day, when lock.sql says a row is not on today; until then the fast
-- path hands over (its UPDATE requires today's rollup_day). quota.usage_daily reads the same sum before and after.
-- Params: $1 user, $2 meter, $3 now.
-- In psql: PREPARE fold_rollup(text, text, timestamptz) AS <this statement>;
--          EXECUTE fold_rollup('alice', 'ai_requests', now());
WITH carried AS MATERIALIZED (
    SELECT c.period, c.rollup_day, c.rollup_amount, c.rollup_requests, c.rollup_last_at
    FROM quota.counters c
    WHERE c.user_id = $1 AND c.meter = $2 AND c.rollup_day IS DISTINCT FROM ($3 AT TIME ZONE 'UTC')::date
    ORDER BY c.period
    FOR UPDATE
), folded AS (
    INSERT INTO quota.daily_rollup AS d (user_id, day, meter, amount, requests, last_at)
    SELECT $1, k.rollup_day, $2, sum(k.rollup_amount), sum(k.rollup_requests), max(k.rollup_last_at)
    FROM carried k WHERE k.rollup_requests > 0
    GROUP BY k.rollup_day
    ON CONFLICT (user_id, day, meter) DO UPDATE
    SET amount = d.amount + EXCLUDED.amount, requests = d.requests + EXCLUDED.requests,
        last_at = GREATEST(d.last_at, EXCLUDED.last_at)
)
UPDATE quota.counters c
SET rollup_day = ($3 AT TIME ZONE 'UTC')::date, rollup_amount = 0, rollup_requests = 0, rollup_last_at = NULL
FROM carried k
WHERE c.user_id = $1 AND c.meter = $2 AND c.period = k.period
