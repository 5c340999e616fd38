-- History for scenario 3: :rows ledger rows spread evenly over the 10,000 users and the ten UTC days
-- 2026-01-06 .. 2026-01-15. The scenario runs with quota.now = 2026-01-15 23:00 UTC, so the last of those days
-- is "today" for the engine and for the count-today design alike (rows/100,000 rows per user today).
-- Rows are inserted user by user so the ledger's btree fills leaf by leaf. Counters and the daily rollup are then
-- built from the ledger, as the engine would have left them (quota.verify() agrees).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SET synchronous_commit = off;

INSERT INTO quota.ledger (user_id, meter, amount, metadata, created_at)
SELECT 'u' || u, 'ai_requests', 1, '{"model": "gpt-4o-mini"}'::jsonb,
       timestamptz '2026-01-06 00:00:00+00'
         + (k - 1) * (interval '10 days' - interval '1 hour') / (:rows / 10000)
FROM generate_series(1, 10000) AS u, generate_series(1, :rows / 10000) AS k
ORDER BY u, k;

-- Every user's day counter in the fixed "today" window, holding today's usage (zero when there is no history).
DELETE FROM quota.counters WHERE meter = 'ai_requests';
INSERT INTO quota.counters (user_id, meter, period, window_start, used, solo, rollup_day)
SELECT a.user_id, 'ai_requests', 'day', timestamptz '2026-01-15 00:00:00+00', COALESCE(t.used, 0), true,
       date '2026-01-15'
FROM quota.accounts a
LEFT JOIN (SELECT user_id, sum(amount)::bigint AS used FROM quota.ledger
           WHERE created_at >= timestamptz '2026-01-15 00:00:00+00' GROUP BY user_id) t USING (user_id);

INSERT INTO quota.daily_rollup (user_id, day, meter, amount, requests, last_at)
SELECT user_id, (created_at AT TIME ZONE 'UTC')::date, meter, sum(amount), count(*), max(created_at)
FROM quota.ledger GROUP BY 1, 2, 3;

CREATE TABLE bench.meta AS SELECT :'ext_sha'::text AS ext_sha, :rows::bigint AS rows;
VACUUM ANALYZE;
