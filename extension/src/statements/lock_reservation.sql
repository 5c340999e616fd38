-- Locks a reservation for settling; with $2, only the user's own. Params: $1 id, $2 user or NULL.
-- Returns user_id, meter, amount, state, expires_at (amount and state as their base types: the engine reads
-- bigint and text, not the domains the columns have).
SELECT user_id, meter, amount::bigint, state::text, expires_at FROM quota.reservations
WHERE id = $1 AND ($2::text IS NULL OR user_id = $2)
FOR UPDATE
