-- Every limit a plan sets, on every meter, for status's fast path (meter_cache.rs keeps it per plan).
-- Params: $1 plan.
-- In psql: PREPARE plan_limits(text) AS <this statement>; EXECUTE plan_limits('free');
SELECT pl.meter, pl.period::text, pl."limit" FROM quota.plan_limits pl WHERE pl.plan = $1
