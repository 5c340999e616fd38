-- The hand-written SECURITY DEFINER limiter on one shared row (scenario 2).
SELECT bench.limiter_definer('team', 1);
