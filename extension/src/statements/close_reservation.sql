-- Settles a reservation that is still open in the one write that also locks it (commit and release start here):
-- only a reservation still held and not yet expired is settled, with $2 only the user's own. A commit records
-- the whole actual amount as charged, which is what its fast path charges; when the limits cap the charge
-- instead, settle_reservation.sql records what was charged on the row this call already holds. No row: nothing
-- was written, and lock_reservation.sql finds out why (unknown, settled or expired).
-- The state it settles from, 'held', is a parameter ($7), not a literal: with the literal, the condition implies
-- the predicate of the partial index of open holds, and the kept (generic) plan may find the row through that
-- index by `expires_at > $6`, visiting every open hold of every user (and each settled one not yet vacuumed)
-- instead of the one row the unique index on id names.
-- Params: $1 id, $2 user or NULL, $3 state, $4 actual, $5 charged, $6 now, $7 'held'. Returns user_id, meter,
-- amount (as bigint, the base type of its domain, which is what the engine reads).
-- In psql: PREPARE close_reservation(uuid, text, text, bigint, bigint, timestamptz, text) AS <this statement>;
--          EXECUTE close_reservation('<id>', NULL, 'committed', 800, 800, now(), 'held');
UPDATE quota.reservations SET state = $3, actual = $4, charged = $5, settled_at = $6
WHERE id = $1 AND ($2::text IS NULL OR user_id = $2) AND state = $7 AND expires_at > $6
RETURNING user_id, meter, amount::bigint
