-- Claims an idempotency key before consuming. A concurrent claim of the same key waits here for the first to
-- finish, so the second sees its outcome instead of charging again. Returns a row when the key was claimed.
-- Params: $1 user, $2 key, $3 meter, $4 amount, $5 metadata, $6 now (aiquota's clock, which
-- quota.purge_idempotency_keys compares with).
INSERT INTO quota.idempotency_keys (user_id, key, meter, amount, metadata, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (user_id, key) DO NOTHING
RETURNING 1
