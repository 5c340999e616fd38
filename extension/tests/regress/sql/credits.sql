-- quota.grant / quota.credits: credits are spent only once the allowance is used up, earliest expiry first.
BEGIN;
SET LOCAL quota.now = '2026-03-10 12:00:00+00';
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SET LOCAL IntervalStyle = 'postgres';

SELECT user_id, meter, amount, remaining, expires_at, source FROM quota.grant('reg-jack', 'ai_requests', 5, '2026-04-01', 'promo');
SELECT user_id, meter, amount, remaining, expires_at, source FROM quota.grant('reg-jack', 'ai_requests', 3, NULL, 'topup');
SELECT meter, remaining, next_expiry, grants FROM quota.credits('reg-jack');

-- The allowance first: nothing is paid from credits.
SELECT allowed, used, "limit", credits_used FROM quota.consume('reg-jack', 'ai_requests', 10);
-- Then the credits, earliest expiry first.
SELECT allowed, used, "limit", credits_used, status FROM quota.consume('reg-jack', 'ai_requests', 6);
SELECT source, remaining FROM quota.grants WHERE user_id = 'reg-jack' ORDER BY id;
-- More than the credits left is denied whole and spends nothing.
SELECT allowed, credits_used, reason FROM quota.consume('reg-jack', 'ai_requests', 5);
SELECT meter, remaining, next_expiry, grants FROM quota.credits('reg-jack');
SELECT * FROM quota.verify();
ROLLBACK;
