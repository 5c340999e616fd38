-- What the fast path needs to know about a user's meter, read when a backend's cache (meter_cache.rs) does not
-- hold it: the account's plan, own timezone (NULL: the default) and expiry, whether the plan sets a burst limit
-- on the meter, and one row per effective limit with its current window (one row of NULLs when the plan limits
-- nothing on the meter). No row: the user has no account.
-- Params: $1 user, $2 meter, $3 now, $4 default timezone.
-- In psql: PREPARE meter_config(text, text, timestamptz, text) AS <this statement>;
--          EXECUTE meter_config('alice', 'ai_requests', now(), 'UTC');
SELECT a.plan, a.timezone, a.plan_expires_at,
       EXISTS (SELECT 1 FROM quota.plan_bursts b WHERE b.plan = a.plan AND b.meter = $2) AS burst,
       l.period, l."limit", l.window_start, l.window_end
FROM quota.accounts a
LEFT JOIN LATERAL quota._effective_limits($1, $2, a.plan, COALESCE(a.timezone, $4), $3) l ON true
WHERE a.user_id = $1
