-- Releases the claim of a denied, keyed attempt: nothing was charged, so a retry is evaluated afresh.
-- Params: $1 user, $2 key.
DELETE FROM quota.idempotency_keys WHERE user_id = $1 AND key = $2
