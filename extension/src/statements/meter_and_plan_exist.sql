-- Tells an undeclared meter (an error) from a meter the plan does not include (a denial).
-- Params: $1 meter, $2 plan. Returns (meter_exists, plan_exists).
SELECT EXISTS (SELECT 1 FROM quota.meters WHERE key = $1), EXISTS (SELECT 1 FROM quota.plans WHERE key = $2)
