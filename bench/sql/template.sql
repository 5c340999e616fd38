-- The bench template database (cloned per scenario with CREATE DATABASE ... TEMPLATE bench_tmpl).
-- 10,000 users u1..u10000 and one shared team account "team" on plan "bench", whose limits are so high that no
-- call is ever denied: the benchmarks measure the cost of deciding, not of refusing.
CREATE EXTENSION aiquota;
SET client_min_messages = warning;

INSERT INTO quota.plans (key, name) VALUES ('bench', 'Benchmark');
INSERT INTO quota.plan_limits (plan, meter, period, "limit") VALUES
    ('bench', 'ai_requests', 'day', 1000000000000),
    ('bench', 'ai_tokens', 'month', 1000000000000000);
INSERT INTO quota.accounts (user_id, plan)
SELECT 'u' || g, 'bench' FROM generate_series(1, 10000) g
UNION ALL SELECT 'team', 'bench';

-- Every user's counter rows exist, as in a running service (a user's first call of a day moves that row to the
-- new window instead of creating it). Built directly: 20,000 first calls inside one statement would take minutes.
INSERT INTO quota.counters (user_id, meter, period, window_start)
SELECT a.user_id, l.meter, l.period, quota.window_start(l.period, now(), 'UTC')
FROM quota.accounts a JOIN quota.plan_limits l ON l.plan = a.plan;

-- The physical floor: one plain counter row per user, updated in place like quota.counters (same fillfactor).
CREATE SCHEMA bench;
CREATE TABLE bench.counters (
    user_id text PRIMARY KEY,
    used    bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 80);
INSERT INTO bench.counters (user_id) SELECT 'u' || g FROM generate_series(1, 10000) g UNION ALL SELECT 'team';

-- The application's own table (scenario 4): the generation job a request creates, indexed as in the seed design.
CREATE SCHEMA app;
CREATE TABLE app.generation_jobs (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text NOT NULL,
    prompt     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX generation_jobs_user_day ON app.generation_jobs (user_id, created_at);

VACUUM ANALYZE;
