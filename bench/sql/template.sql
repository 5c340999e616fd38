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
-- As the engine creates them: each the only row of its meter (solo), carrying today's part of the daily rollup.
INSERT INTO quota.counters (user_id, meter, period, window_start, solo, rollup_day)
SELECT a.user_id, l.meter, l.period, quota.window_start(l.period, now(), 'UTC'), true, (now() AT TIME ZONE 'UTC')::date
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


-- What a user would write instead of aiquota (scenarios 1, 2 and 4): a careful hand-written PL/pgSQL limiter on
-- its own table. One row per user with today's count, SELECT ... FOR UPDATE, a lazy reset when the day changed,
-- the check, the UPDATE and a ledger INSERT (indexed like quota.ledger). bench.limiter_definer is the same body
-- as SECURITY DEFINER with a pinned search_path, which is how aiquota's functions must run.
CREATE TABLE bench.limiter_counters (
    user_id     text PRIMARY KEY,
    day         date NOT NULL,
    used        bigint NOT NULL DEFAULT 0,
    daily_limit bigint NOT NULL
) WITH (fillfactor = 80);
INSERT INTO bench.limiter_counters (user_id, day, daily_limit)
SELECT user_id, current_date, 1000000000000 FROM bench.counters;
CREATE TABLE bench.limiter_ledger (
    user_id    text NOT NULL,
    id         bigint GENERATED ALWAYS AS IDENTITY,
    amount     bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, created_at, id)
);
CREATE FUNCTION bench.limiter(p_user text, p_amount bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    c bench.limiter_counters;
BEGIN
    SELECT * INTO c FROM bench.limiter_counters WHERE user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF c.day <> current_date THEN
        c.day := current_date;
        c.used := 0;
    END IF;
    IF c.used + p_amount > c.daily_limit THEN
        RETURN false;
    END IF;
    UPDATE bench.limiter_counters SET used = c.used + p_amount, day = c.day WHERE user_id = p_user;
    INSERT INTO bench.limiter_ledger (user_id, amount) VALUES (p_user, p_amount);
    RETURN true;
END
$$;
CREATE FUNCTION bench.limiter_definer(p_user text, p_amount bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c bench.limiter_counters;
BEGIN
    SELECT * INTO c FROM bench.limiter_counters WHERE user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF c.day <> current_date THEN
        c.day := current_date;
        c.used := 0;
    END IF;
    IF c.used + p_amount > c.daily_limit THEN
        RETURN false;
    END IF;
    UPDATE bench.limiter_counters SET used = c.used + p_amount, day = c.day WHERE user_id = p_user;
    INSERT INTO bench.limiter_ledger (user_id, amount) VALUES (p_user, p_amount);
    RETURN true;
END
$$;

-- The lean PL/pgSQL issue 11 measured on aiquota's own tables (scenario 1, for scale): read the account and the
-- meter's plan limit, one window-checked UPDATE of quota.counters, the ledger INSERT, SECURITY DEFINER. Not an
-- engine (no plan expiry, overrides, holds, rollover, rollup, idempotency, several windows or decision returned),
-- but the best a user gets on this data model by hand: what the engine's own reads and writes cost without it.
CREATE FUNCTION bench.lean_consume(p_user text, p_meter text, p_amount bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a quota.accounts;
    l quota.plan_limits;
BEGIN
    SELECT * INTO a FROM quota.accounts WHERE user_id = p_user;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    SELECT * INTO l FROM quota.plan_limits WHERE plan = a.plan AND meter = p_meter;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE quota.counters c SET used = c.used + p_amount
    WHERE c.user_id = p_user AND c.meter = p_meter AND c.period = l.period
      AND c.window_start = quota.window_start(l.period, now(), coalesce(a.timezone, 'UTC'))
      AND (l."limit" IS NULL OR c.used + c.held + p_amount <= l."limit" + c.carry);
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO quota.ledger (user_id, meter, amount, created_at) VALUES (p_user, p_meter, p_amount, now());
    RETURN true;
END
$$;

VACUUM ANALYZE;
