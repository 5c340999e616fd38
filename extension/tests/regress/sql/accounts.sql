-- Accounts: assign_plan with expiry, the default-plan trigger, set_timezone, reset_usage, user_usage.
BEGIN;
SET LOCAL quota.now = '2026-03-10 20:15:00+00';
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SET LOCAL IntervalStyle = 'postgres';

SELECT allowed FROM quota.consume('reg-nora', 'ai_requests', 10);
SELECT user_id, plan, plan_expires_at FROM quota.assign_plan('reg-nora', 'pro', '2026-03-17 20:15:00+00');
SELECT allowed, plan, used, "limit", remaining, status FROM quota.consume('reg-nora');
-- Once the pass expires the user is back on the default plan, with no job running.
SET LOCAL quota.now = '2026-03-18 09:00:00+00';
SELECT allowed, plan, used, "limit" FROM quota.consume('reg-nora');

-- New rows of an application's users table get the default plan from a trigger.
CREATE TABLE reg_app_users (id text PRIMARY KEY);
CREATE TRIGGER give_quota AFTER INSERT ON reg_app_users
    FOR EACH ROW EXECUTE FUNCTION quota.assign_default_plan('id');
INSERT INTO reg_app_users VALUES ('reg-olga');
SELECT user_id, plan, plan_expires_at, timezone FROM quota.accounts WHERE user_id = 'reg-olga';

SELECT user_id, plan, timezone FROM quota.set_timezone('reg-olga', 'Europe/Berlin');
SELECT allowed FROM quota.consume('reg-olga', 'ai_requests', 4);
SELECT meter, plan, period, used, "limit", percent, status, resets_at, today, all_time FROM quota.user_usage('reg-olga');
SELECT quota.reset_usage('reg-olga', 'ai_requests') AS rows_reset;
SELECT meter, period, used FROM quota.status('reg-olga') WHERE meter = 'ai_requests';
-- The audit log records the admin changes.
SELECT action, target FROM quota.audit_log WHERE target LIKE '%reg-olga%' OR target LIKE '%reg-nora%' ORDER BY id;
ROLLBACK;
