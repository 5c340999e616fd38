-- Stores the decision of an allowed, keyed call. Params: $1 user, $2 key, $3 decision.
UPDATE quota.idempotency_keys SET decision = $3 WHERE user_id = $1 AND key = $2
