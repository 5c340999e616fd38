-- Records how a reservation was settled. Params: $1 user, $2 id, $3 state, $4 actual, $5 charged, $6 now.
UPDATE quota.reservations SET state = $3, actual = $4, charged = $5, settled_at = $6
WHERE user_id = $1 AND id = $2
