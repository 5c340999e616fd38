-- Bad input fails with a specific SQLSTATE and changes nothing.
\set VERBOSITY sqlstate
BEGIN;
SET LOCAL quota.now = '2026-03-10 20:15:00+00';
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SET LOCAL IntervalStyle = 'postgres';
SAVEPOINT s;
SELECT quota.consume(NULL);
ROLLBACK TO s;
SELECT quota.consume('');
ROLLBACK TO s;
SELECT quota.consume(repeat('x', 256));
ROLLBACK TO s;
SELECT quota.consume('reg-err', 'no_such_meter');
ROLLBACK TO s;
SELECT quota.consume('reg-err', 'ai_requests', 0);
ROLLBACK TO s;
SELECT quota.consume('reg-err', 'ai_requests', 1000000000001);
ROLLBACK TO s;
SELECT quota.consume('reg-err', 'ai_requests', 1, '');
ROLLBACK TO s;
SELECT quota.consume('reg-err', 'ai_requests', 1, NULL, '[1]');
ROLLBACK TO s;
SELECT quota.assign_plan('reg-err', 'no_such_plan');
ROLLBACK TO s;
SELECT quota.set_timezone('reg-err', 'Mars/Olympus');
ROLLBACK TO s;
SELECT quota.set_plan_limit('free', 'ai_requests', 'fortnight', 3);
ROLLBACK TO s;
SELECT quota.set_plan_limit('free', 'ai_requests', 'day', -1);
ROLLBACK TO s;
SELECT quota.reserve('reg-err', 'ai_tokens', 10, '25 hours');
ROLLBACK TO s;
SELECT quota.commit('00000000-0000-0000-0000-000000000000', 1);
ROLLBACK TO s;
SELECT quota.top_users(0);
ROLLBACK TO s;
-- An idempotency key reused for a different request.
SELECT allowed FROM quota.consume('reg-err', 'ai_tokens', 10, 'k-1');
SELECT quota.consume('reg-err', 'ai_tokens', 11, 'k-1');
ROLLBACK TO s;
-- The ledger is append-only.
SELECT allowed FROM quota.consume('reg-err');
UPDATE quota.ledger SET amount = 2 WHERE user_id = 'reg-err';
ROLLBACK TO s;
-- Nothing was written by any of the failures above.
SELECT count(*) AS accounts FROM quota.accounts WHERE user_id = 'reg-err';
SELECT count(*) AS ledger_rows FROM quota.ledger WHERE user_id = 'reg-err';
ROLLBACK;
\set VERBOSITY default
-- With the default verbosity: the messages as a client sees them, with their hints.
BEGIN;
SELECT quota.consume('reg-err', 'ai_requests', 1, repeat('k', 256));
ROLLBACK;
BEGIN;
SELECT allowed FROM quota.consume('reg-err', 'ai_tokens', 10, 'k-2');
SELECT quota.consume('reg-err', 'ai_tokens', 11, 'k-2');
ROLLBACK;
