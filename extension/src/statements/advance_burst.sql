-- Burst path: takes $3 units from the bucket of an allowed call (the state is locked by lock_burst.sql).
-- Params: $1 user, $2 meter, $3 new theoretical arrival time.
UPDATE quota.bursts SET tat = $3 WHERE user_id = $1 AND meter = $2
