-- Plans and meters: create_plan, set_plan_limit, remove_plan_limit, set_plan_burst, set_plan_rollover.
BEGIN;
SET LOCAL quota.now = '2026-03-10 20:15:00+00';
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SET LOCAL IntervalStyle = 'postgres';

SELECT key, name FROM quota.create_plan('reg_starter', 'Starter');
SELECT plan, meter, period, "limit" FROM quota.set_plan_limit('reg_starter', 'ai_requests', 'hour', 3);
SELECT plan, meter, period, "limit" FROM quota.set_plan_limit('reg_starter', 'ai_requests', 'day', 20);
SELECT user_id, plan FROM quota.assign_plan('reg-kate', 'reg_starter');

-- Every limit on the meter is charged; the decision reports the window with the least left.
SELECT n, allowed, period, used, "limit", remaining, resets_at, reason
FROM generate_series(1, 4) AS n,
     LATERAL quota.consume('reg-kate', p_metadata => jsonb_build_object('n', n));

-- limits lists every limited window of the meter (for RateLimit-Policy), the denying call's included.
SELECT allowed, period, limits FROM quota.consume('reg-kate');
SELECT allowed, limits FROM quota.check('reg-kate', 'ai_requests', 1);

SELECT quota.remove_plan_limit('reg_starter', 'ai_requests', 'hour');
SELECT allowed, period, used, "limit", limits FROM quota.consume('reg-kate');

-- A burst limit (GCRA): 1 per 10 s, up to 3 at once.
SELECT plan, meter, rate, per, burst FROM quota.set_plan_burst('reg_starter', 'ai_requests', 1, '10 seconds', 3);
SELECT user_id, plan FROM quota.assign_plan('reg-liam', 'reg_starter');
SELECT n, allowed, period, used, "limit", reason, retry_after_s
FROM generate_series(1, 4) AS n,
     LATERAL quota.consume('reg-liam', p_metadata => jsonb_build_object('n', n));
-- Ten seconds later one more call passes.
SET LOCAL quota.now = '2026-03-10 20:15:10+00';
SELECT allowed, period FROM quota.consume('reg-liam');
ROLLBACK;

BEGIN;
SET LOCAL quota.now = '2026-03-10 12:00:00+00';
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SET LOCAL IntervalStyle = 'postgres';
-- Rollover: unused allowance carries into the next window up to the cap.
SELECT key FROM quota.create_plan('reg_roll', 'Rollover');
SELECT plan, meter, period, "limit", rollover_cap FROM quota.set_plan_limit('reg_roll', 'ai_requests', 'day', 10);
SELECT plan, meter, period, "limit", rollover_cap FROM quota.set_plan_rollover('reg_roll', 'ai_requests', 'day', 5);
SELECT user_id, plan FROM quota.assign_plan('reg-mia', 'reg_roll');
SELECT allowed, used, "limit" FROM quota.consume('reg-mia', 'ai_requests', 2);
SET LOCAL quota.now = '2026-03-11 12:00:00+00';
SELECT allowed, used, "limit", remaining FROM quota.consume('reg-mia', 'ai_requests', 1);

-- Defining a meter and a per-user override.
SELECT key, unit, description FROM quota.define_meter('reg_images', 'images', 'Generated images');
SELECT user_id, meter, period, "limit" FROM quota.set_limit('reg-mia', 'ai_requests', 'day', 30);
SELECT allowed, used, "limit" FROM quota.consume('reg-mia', 'ai_requests', 1);
ROLLBACK;
