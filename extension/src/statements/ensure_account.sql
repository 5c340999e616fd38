-- Gives a user without an account the default plan, exactly once however many sessions race.
-- Params: $1 user, $2 default plan. Returns (created, plan_exists).
WITH created AS (
    INSERT INTO quota.accounts (user_id, plan)
    SELECT $1, p.key FROM quota.plans p WHERE p.key = $2
    ON CONFLICT (user_id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM created) > 0, EXISTS (SELECT 1 FROM quota.plans WHERE key = $2)
