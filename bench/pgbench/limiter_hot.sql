-- The hand-written limiter on one shared row (scenario 2).
SELECT bench.limiter('team', 1);
