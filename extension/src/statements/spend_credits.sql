-- Spends $4 from the credits credit_balance.sql summed, earliest expiry first (no expiry last), oldest first
-- among equals. Params: $1 user, $2 meter, $3 now, $4 amount.
WITH g AS (
    SELECT g.id, g.remaining,
           sum(g.remaining) OVER (ORDER BY g.expires_at NULLS LAST, g.id) - g.remaining AS before
    FROM quota.grants g
    WHERE g.user_id = $1 AND g.meter = $2 AND g.remaining > 0 AND (g.expires_at IS NULL OR g.expires_at > $3)
)
UPDATE quota.grants q SET remaining = q.remaining - LEAST(g.remaining, $4 - g.before)
FROM g
WHERE q.user_id = $1 AND q.id = g.id AND g.before < $4
