-- Locks a reservation for settling; with $2, only the user's own. Params: $1 id, $2 user or NULL.
-- Returns user_id, meter, amount, state, expires_at.
SELECT user_id, meter, amount, state, expires_at FROM quota.reservations
WHERE id = $1 AND ($2::text IS NULL OR user_id = $2)
FOR UPDATE
