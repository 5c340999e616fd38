-- The request and decision stored under a key. Params: $1 user, $2 key.
SELECT meter, amount, metadata, decision FROM quota.idempotency_keys WHERE user_id = $1 AND key = $2
