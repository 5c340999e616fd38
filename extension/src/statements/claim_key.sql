-- Claims an idempotency key before consuming, under REPEATABLE READ or SERIALIZABLE only (READ COMMITTED records
-- the key once, after the charge: record_key.sql). The call holds the key's turn (key_turn.rs), but its snapshot
-- may predate the commit of the turn's previous holder: then this INSERT finds that row and PostgreSQL refuses
-- (40001) instead of charging again. Returns a row when the key was claimed; store_decision.sql or drop_key.sql
-- finish the claim.
-- Params: $1 user, $2 key, $3 meter, $4 amount, $5 metadata, $6 now (aiquota's clock, which
-- quota.purge_idempotency_keys compares with).
INSERT INTO quota.idempotency_keys (user_id, key, meter, amount, metadata, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (user_id, key) DO NOTHING
RETURNING 1
