-- Burst path: locks the user's GCRA state for the meter (after the counter rows, the engine's lock order).
-- No row: the state does not exist yet (add_burst.sql creates it). Params: $1 user, $2 meter.
SELECT s.tat FROM quota.bursts s WHERE s.user_id = $1 AND s.meter = $2 FOR UPDATE
