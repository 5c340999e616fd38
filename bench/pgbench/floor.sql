-- The physical floor: a plain prepared counter UPDATE on the same users' rows (scenario 1).
\set uid random(1, :users)
UPDATE bench.counters SET used = used + 1 WHERE user_id = 'u' || :uid;
