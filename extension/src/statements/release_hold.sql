-- Frees a hold on every counter row of the meter, locking the rows in the engine's order first. GREATEST: a
-- window added after the hold was taken never counted it. Params: $1 user, $2 meter, $3 amount.
WITH locked AS (
    SELECT c.period FROM quota.counters c WHERE c.user_id = $1 AND c.meter = $2 ORDER BY c.period FOR UPDATE
)
UPDATE quota.counters c SET held = GREATEST(c.held - $3, 0)
WHERE c.user_id = $1 AND c.meter = $2 AND (SELECT count(*) FROM locked) >= 0
