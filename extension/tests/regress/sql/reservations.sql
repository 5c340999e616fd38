-- quota.reserve / commit / release: holds count against the limit; settlement charges once.
BEGIN;
SET LOCAL quota.now = '2026-03-10 20:15:00+00';
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SET LOCAL IntervalStyle = 'postgres';

SELECT reservation_id AS r1, expires_at, allowed, used, "limit", remaining, held, credits_used
FROM quota.reserve('reg-gina', 'ai_tokens', 4000, '2 minutes', 'call-1') \gset
SELECT :'r1' ~ '^[0-9a-f-]{36}$' AS is_uuid;
SELECT expires_at, allowed, used, remaining, held FROM quota.reserve('reg-gina', 'ai_tokens', 4000, '2 minutes', 'call-1');
SELECT reservation_id = :'r1' AS same_reservation, replayed FROM quota.reserve('reg-gina', 'ai_tokens', 4000, '2 minutes', 'call-1');

-- Other requests see less room while the hold is open; a denied reservation has no id.
SELECT reservation_id IS NULL AS no_id, allowed, used, held, remaining, reason FROM quota.reserve('reg-gina', 'ai_tokens', 7000);

-- Commit charges the actual amount and frees the rest; a second commit fails.
SELECT state, held, actual, charged, capped, used, "limit", remaining, status, resets_at FROM quota.commit(:'r1', 3250);
-- The message names the (random) reservation id: only the SQLSTATE is compared.
\set VERBOSITY sqlstate
SELECT state FROM quota.commit(:'r1', 3250);
\set VERBOSITY default
ROLLBACK;

BEGIN;
SET LOCAL quota.now = '2026-03-10 20:15:00+00';
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SET LOCAL IntervalStyle = 'postgres';
-- Named with another user, a reservation does not exist.
SELECT reservation_id AS r2 FROM quota.reserve('reg-gina', 'ai_tokens', 2000) \gset
-- The message names the (random) reservation id: only the SQLSTATE is compared.
\set VERBOSITY sqlstate
SELECT state FROM quota.commit(:'r2', 1500, 'reg-other');
\set VERBOSITY default
ROLLBACK;

BEGIN;
SET LOCAL quota.now = '2026-03-10 20:15:00+00';
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SET LOCAL IntervalStyle = 'postgres';
-- Release frees the hold and charges nothing.
SELECT reservation_id AS r3 FROM quota.reserve('reg-gina', 'ai_tokens', 2000) \gset
SELECT state, held, actual, charged, capped, used FROM quota.release(:'r3', 'reg-gina');
SELECT meter, used, held, remaining FROM quota.status('reg-gina') WHERE meter = 'ai_tokens';

-- A commit above the hold is capped at what the limit allows, unless it is overage.
SELECT allowed FROM quota.consume('reg-gina', 'ai_tokens', 5000);
SELECT reservation_id AS r4 FROM quota.reserve('reg-gina', 'ai_tokens', 3000) \gset
SELECT state, held, actual, charged, capped, used, "limit", remaining, status FROM quota.commit(:'r4', 6000);
SELECT reservation_id AS r5 FROM quota.reserve('reg-hank', 'ai_tokens', 3000) \gset
SELECT state, held, actual, charged, capped, used, "limit", remaining, status FROM quota.commit(:'r5', 12000, 'reg-hank', true);
SELECT * FROM quota.verify();
ROLLBACK;

BEGIN;
SET LOCAL quota.now = '2026-03-10 20:15:00+00';
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SET LOCAL IntervalStyle = 'postgres';
-- An expired hold stops counting and can no longer be settled.
SELECT reservation_id AS r6 FROM quota.reserve('reg-ivy', 'ai_tokens', 2000, '2 minutes') \gset
SET LOCAL quota.now = '2026-03-10 20:17:00+00';
SELECT meter, used, held, remaining FROM quota.status('reg-ivy') WHERE meter = 'ai_tokens';
-- The message names the (random) reservation id: only the SQLSTATE is compared.
\set VERBOSITY sqlstate
SELECT state FROM quota.commit(:'r6', 1500);
\set VERBOSITY default
ROLLBACK;
