-- Every limit a plan sets, on every meter, with whether the plan also sets a burst limit on that meter
-- (meter_cache.rs keeps it per plan: the fast paths take a meter's one row from it, status takes them all).
-- Params: $1 plan.
-- In psql: PREPARE plan_limits(text) AS <this statement>; EXECUTE plan_limits('free');
SELECT pl.meter, pl.period::text, pl."limit",
       EXISTS (SELECT 1 FROM quota.plan_bursts b WHERE b.plan = $1 AND b.meter = pl.meter) AS burst
FROM quota.plan_limits pl
WHERE pl.plan = $1
