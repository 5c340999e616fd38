-- The account's part of what the fast path needs (meter_cache.rs): plan, own timezone (NULL: the default),
-- expiry, and whether the user has any per-user limit (then the general path decides). No row: no account.
-- Params: $1 user.
-- In psql: PREPARE user_config(text) AS <this statement>; EXECUTE user_config('alice');
SELECT a.plan, a.timezone, a.plan_expires_at,
       EXISTS (SELECT 1 FROM quota.user_limits ul WHERE ul.user_id = $1) AS overrides
FROM quota.accounts a
WHERE a.user_id = $1
