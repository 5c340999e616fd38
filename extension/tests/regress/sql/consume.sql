-- quota.consume: allow until the limit, deny with a reason and retry time, idempotent replay, metadata.
BEGIN;
SET LOCAL quota.now = '2026-03-10 20:15:00+00';
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SET LOCAL IntervalStyle = 'postgres';

-- A new user gets the default plan (free: 10 ai_requests a day) and is charged until the window is full.
SELECT n, allowed, plan, used, "limit", remaining, status, period, reason, retry_after_s, replayed, held, credits_used
FROM generate_series(1, 11) AS n,
     LATERAL quota.consume('reg-alice', p_metadata => jsonb_build_object('n', n));

-- An amount that does not fit what is left is denied whole.
SELECT allowed, used, remaining, reason, retry_after_s FROM quota.consume('reg-bob', 'ai_requests', 8);
SELECT allowed, used, remaining, reason, retry_after_s FROM quota.consume('reg-bob', 'ai_requests', 3);

-- An amount larger than the whole limit can never pass: no retry time.
SELECT allowed, used, reason, retry_after_s FROM quota.consume('reg-bob', 'ai_tokens', 20000);

-- Idempotency: the repeat returns the first decision, replayed; nothing is charged twice.
SELECT allowed, used, remaining, replayed FROM quota.consume('reg-carol', 'ai_tokens', 1200, 'key-1', '{"model": "m"}');
SELECT allowed, used, remaining, replayed FROM quota.consume('reg-carol', 'ai_tokens', 1200, 'key-1', '{"model": "m"}');
SELECT used FROM quota.status('reg-carol') WHERE meter = 'ai_tokens';

-- The ledger holds one row per charge, with its metadata; the counters agree with it.
SELECT user_id, meter, amount, metadata FROM quota.ledger WHERE user_id = 'reg-carol' ORDER BY id;
SELECT count(*) AS alice_ledger_rows FROM quota.ledger WHERE user_id = 'reg-alice';
SELECT * FROM quota.verify();

-- A meter the plan does not include is denied with limit 0 and no retry time.
SELECT key, unit FROM quota.define_meter('images', 'images');
SELECT allowed, "limit", period, reason, retry_after_s FROM quota.consume('reg-dave', 'images');
ROLLBACK;
