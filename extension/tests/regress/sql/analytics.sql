-- Analytics read the daily rollup that consume keeps: analytics, top_users, usage_history, predict_exhaustion.
BEGIN;
SET LOCAL quota.now = '2026-03-10 12:00:00+00';
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SET LOCAL IntervalStyle = 'postgres';
-- Start from an empty rollup so that the figures are this file's own.
SELECT count(*) AS users_before FROM quota.accounts;

SELECT count(*) FILTER (WHERE allowed) AS allowed, count(*) FILTER (WHERE NOT allowed) AS denied
FROM generate_series(1, 12) AS n, LATERAL quota.consume('reg-pia', p_metadata => jsonb_build_object('n', n));
SELECT allowed FROM quota.consume('reg-quin', 'ai_requests', 3);
SET LOCAL quota.now = '2026-03-11 09:00:00+00';
SELECT allowed FROM quota.consume('reg-quin', 'ai_requests', 2);

SELECT day, meter, total_users, active_users, users_at_limit, usage, requests, denials FROM quota.analytics('2026-03-10');
SELECT day, total_users, active_users, users_at_limit, usage, requests, usage_all_time, requests_all_time FROM quota.analytics();
SELECT rank, user_id, plan, usage, requests, denials FROM quota.top_users(10, 'all_time');
SELECT rank, user_id, usage FROM quota.top_users(10, 'today');
SELECT day, usage, requests, denials FROM quota.usage_history('reg-quin', 3);
SELECT period, used, "limit", resets_at, exhausts_at IS NULL AS never FROM quota.predict_exhaustion('reg-quin');
ROLLBACK;
