-- Settles a reservation that is still open in the one write that also locks it (commit and release start here):
-- only a reservation still held and not yet expired is settled, with $2 only the user's own. A commit records
-- the whole actual amount as charged, which is what its fast path charges; when the limits cap the charge
-- instead, settle_reservation.sql records what was charged on the row this call already holds. No row: nothing
-- was written, and lock_reservation.sql finds out why (unknown, settled or expired).
-- Params: $1 id, $2 user or NULL, $3 state, $4 actual, $5 charged, $6 now. Returns user_id, meter, amount (as
-- bigint, the base type of its domain, which is what the engine reads).
-- In psql: PREPARE close_reservation(uuid, text, text, bigint, bigint, timestamptz) AS <this statement>;
--          EXECUTE close_reservation('<id>', NULL, 'committed', 800, 800, now());
UPDATE quota.reservations SET state = $3, actual = $4, charged = $5, settled_at = $6
WHERE id = $1 AND ($2::text IS NULL OR user_id = $2) AND state = 'held' AND expires_at > $6
RETURNING user_id, meter, amount::bigint
