-- Slow path: recomputes held from the reservations still open, once an expiry has passed (the rows are already
-- locked by lock.sql). Params: $1 user, $2 meter, $3 now.
UPDATE quota.counters c SET held = h.total, held_until = h.next_expiry
FROM quota._open_holds($1, $2, $3) h
WHERE c.user_id = $1 AND c.meter = $2
