-- quota.check answers without charging; quota.status lists every window of the user's plan.
BEGIN;
SET LOCAL quota.now = '2026-03-10 20:15:00+00';
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SET LOCAL IntervalStyle = 'postgres';

SELECT allowed, used, remaining, status, reason, retry_after_s, credits_used FROM quota.check('reg-erin', 'ai_tokens', 500);
SELECT allowed, used, remaining, reason, retry_after_s FROM quota.check('reg-erin', 'ai_tokens', 20000);
-- check charged nothing and created no account.
SELECT count(*) AS ledger_rows FROM quota.ledger WHERE user_id = 'reg-erin';

SELECT allowed FROM quota.consume('reg-erin', 'ai_requests', 7);
SELECT meter, period, used, "limit", remaining, percent, status, resets_at, plan, held FROM quota.status('reg-erin');
SELECT allowed, used, remaining, status FROM quota.check('reg-erin', 'ai_requests', 3);
SELECT allowed, used, remaining, status, reason FROM quota.check('reg-erin', 'ai_requests', 4);

-- Statuses follow the thresholds: warning from 60 %, critical from 90 %, exceeded at the limit.
SELECT n, status FROM generate_series(1, 3) AS n,
     LATERAL quota.consume('reg-erin', p_metadata => jsonb_build_object('n', n));

-- A user's windows are cut in their own timezone.
SELECT user_id, timezone FROM quota.set_timezone('reg-frank', 'Asia/Kolkata');
SELECT meter, period, resets_at FROM quota.status('reg-frank');
ROLLBACK;
