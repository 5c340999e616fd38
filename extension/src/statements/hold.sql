-- Writes an allowed reserve, decided under the locks of lock.sql: the amount is held on every counter row of the
-- meter (it counts against each limit like usage until the reservation is settled or expires) and the
-- reservation row is created. Params: $1 user, $2 meter, $3 amount, $4 expiry, $5 now. Returns the reservation id.
WITH held AS (
    UPDATE quota.counters c
    SET held = c.held + $3, held_until = LEAST(c.held_until, $4), last_denied = false
    WHERE c.user_id = $1 AND c.meter = $2
)
INSERT INTO quota.reservations (user_id, meter, amount, expires_at, created_at)
VALUES ($1, $2, $3, $4, $5)
RETURNING id
