-- The plan's part of what the fast path needs (meter_cache.rs): the plan's limits on the meter, one row each,
-- with whether the plan sets a burst limit on it. The fast path applies only to exactly one row and no burst.
-- Params: $1 plan, $2 meter.
-- In psql: PREPARE plan_config(text, text) AS <this statement>; EXECUTE plan_config('free', 'ai_requests');
SELECT pl.period::text, pl."limit",
       EXISTS (SELECT 1 FROM quota.plan_bursts b WHERE b.plan = $1 AND b.meter = $2) AS burst
FROM quota.plan_limits pl
WHERE pl.plan = $1 AND pl.meter = $2
