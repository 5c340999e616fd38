-- The user's unexpired credits for a meter. No row lock is needed: the engine reads this only while it holds the
-- meter's counter rows, which every spender of these credits must lock first. Params: $1 user, $2 meter, $3 now.
SELECT COALESCE(sum(g.remaining), 0)::bigint FROM quota.grants g
WHERE g.user_id = $1 AND g.meter = $2 AND g.remaining > 0 AND (g.expires_at IS NULL OR g.expires_at > $3)
