-- aiquota 0.1.0 -> 0.2.0
--
-- Why this script exists: 0.2.0 adds credits (quota.grant), burst limits (GCRA), rollover, a daily usage rollup
-- with analytics, and payments (products, orders, quota.record_payment), and scopes commit/release to a user.
-- Databases created at 0.1.0 get all of it with `ALTER EXTENSION aiquota UPDATE`, which runs this script in one
-- transaction. Afterwards the schema is exactly what `CREATE EXTENSION aiquota` (0.2.0) creates: same tables,
-- columns in the same order, types, functions, comments, grants, row-level security and pg_dump markings;
-- scripts/upgrade-test.sh (`make test-upgrade`) compares the two.
--
-- Function bodies, comments and table definitions are copied verbatim from extension/sql/ at 0.2.0. Objects
-- created here become members of the extension automatically. The C functions point at 'MODULE_PATHNAME' like
-- the generated install script does; PostgreSQL substitutes $libdir/aiquota from the control file.
--
-- Existing data: new columns get their defaults (ledger.credits 0, counters.carry 0, plan_limits.rollover_cap
-- NULL), and quota.usage_daily is backfilled from the ledger so all-time usage and analytics include the usage
-- recorded before the update. Adding the CHECKed columns scans (does not rewrite) quota.ledger and
-- quota.counters under an ACCESS EXCLUSIVE lock, like the backfill, for the duration of the update.

\echo Use "ALTER EXTENSION aiquota UPDATE TO '0.2.0'" to load this file. \quit

------------------------------------------------------------------------------------------------------------------
-- 1. Tables and columns (schema.sql, payments.sql)
------------------------------------------------------------------------------------------------------------------

-- Rollover: up to this much unused allowance carries into the next window (NULL: none).
ALTER TABLE quota.plan_limits ADD COLUMN rollover_cap bigint CHECK (rollover_cap >= 0);

-- Burst limits (GCRA): at most `rate` per `per` on average, with up to `burst` at once. Checked in the same
-- all-or-nothing decision as the calendar limits. emission_us = per / rate is what the engine computes with.
CREATE TABLE quota.plan_bursts (
    plan        text NOT NULL REFERENCES quota.plans (key) ON UPDATE CASCADE ON DELETE CASCADE,
    meter       text NOT NULL REFERENCES quota.meters (key) ON UPDATE CASCADE ON DELETE CASCADE,
    rate        bigint NOT NULL CHECK (rate > 0),
    per         interval NOT NULL CHECK (per > interval '0' AND per <= interval '1 day'),
    burst       bigint NOT NULL CHECK (burst > 0),
    emission_us bigint NOT NULL CHECK (emission_us > 0),
    PRIMARY KEY (plan, meter)
);
COMMENT ON TABLE quota.plan_bursts IS
    'Burst limit per plan and meter, a GCRA: rate per per on average, up to burst at once (e.g. 1 per 10 s, burst 3).';

-- Allowance carried into this window from the one before (see quota.plan_limits.rollover_cap).
ALTER TABLE quota.counters ADD COLUMN carry bigint NOT NULL DEFAULT 0 CHECK (carry >= 0);

-- The part of amount paid from credits (quota.grants) because the plan's allowance was used up. Usage recorded
-- at 0.1.0 had no credits, so 0 is the truth for every existing row.
ALTER TABLE quota.ledger ADD COLUMN credits bigint NOT NULL DEFAULT 0 CHECK (credits >= 0);

-- GCRA state per user and meter: the theoretical arrival time. A call of n passes when
-- max(tat, now) + n * emission - burst * emission <= now, and moves tat to max(tat, now) + n * emission.
CREATE TABLE quota.bursts (
    user_id text NOT NULL REFERENCES quota.accounts (user_id) ON DELETE CASCADE,
    meter   text NOT NULL REFERENCES quota.meters (key) ON UPDATE CASCADE ON DELETE CASCADE,
    tat     timestamptz NOT NULL,
    PRIMARY KEY (user_id, meter)
) WITH (fillfactor = 80);
COMMENT ON TABLE quota.bursts IS 'Burst (GCRA) state per user and meter; see quota.plan_bursts.';

-- Per-user, per-UTC-day rollup of usage, maintained by the consume statement itself (and denials by the
-- engine), so analytics never scan the ledger however long it grows.
CREATE TABLE quota.usage_daily (
    user_id  text NOT NULL,
    day      date NOT NULL,
    meter    text NOT NULL,
    amount   bigint NOT NULL DEFAULT 0,
    requests bigint NOT NULL DEFAULT 0,
    denials  bigint NOT NULL DEFAULT 0,
    last_at  timestamptz,
    PRIMARY KEY (user_id, day, meter)
) WITH (fillfactor = 80);
CREATE INDEX usage_daily_day_idx ON quota.usage_daily (day, meter, user_id);
COMMENT ON TABLE quota.usage_daily IS
    'Usage per user, UTC day and meter: amount consumed, allowed calls (requests), denied calls, last use. '
    'Maintained in the consume transaction; resets do not change it (it records what was used).';

-- Totals of finished days, filled in by quota.analytics the first time it needs a day: a day that is over
-- never changes, so "all time" costs one row per day instead of a scan of every user-day.
CREATE TABLE quota.daily_totals (
    day      date NOT NULL,
    meter    text NOT NULL,
    users    bigint NOT NULL,
    amount   bigint NOT NULL,
    requests bigint NOT NULL,
    denials  bigint NOT NULL,
    PRIMARY KEY (meter, day)
);
COMMENT ON TABLE quota.daily_totals IS 'Cache of usage_daily totals per finished UTC day (see quota.analytics).';

-- One-off credits (top-ups, promotions): spent only once the plan's window allowance is used up, earliest
-- expiry first. remaining only goes down; expired credits simply stop counting.
CREATE TABLE quota.grants (
    user_id    text NOT NULL REFERENCES quota.accounts (user_id) ON DELETE CASCADE,
    id         bigint GENERATED ALWAYS AS IDENTITY,
    meter      text NOT NULL REFERENCES quota.meters (key) ON UPDATE CASCADE ON DELETE CASCADE,
    amount     bigint NOT NULL CHECK (amount > 0),
    remaining  bigint NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    expires_at timestamptz,
    source     text NOT NULL CHECK (length(source) BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX grants_open_idx ON quota.grants (user_id, meter, expires_at) WHERE remaining > 0;
COMMENT ON TABLE quota.grants IS
    'Credits granted with quota.grant: used after the plan''s allowance, earliest expiry first (no expiry last).';

-- The composite types gain the part of a decision paid from credits (last attribute, as in a fresh install).
ALTER TYPE quota.decision ADD ATTRIBUTE credits_used bigint;
ALTER TYPE quota.reservation ADD ATTRIBUTE credits_used bigint;

------------------------------------------------------------------------------------------------------------------
-- 2. Backfill of the daily rollup from the ledger
------------------------------------------------------------------------------------------------------------------

-- 0.2.0's consume keeps quota.usage_daily in the same statement that writes the ledger; for the history written
-- at 0.1.0, rebuild it here: usage rows only (resets are not usage), per user, UTC day and meter. Denials were
-- never recorded per call at 0.1.0 (only counters.denied per window), so they start at 0.
INSERT INTO quota.usage_daily (user_id, day, meter, amount, requests, denials, last_at)
SELECT g.user_id, (g.created_at AT TIME ZONE 'UTC')::date, g.meter, sum(g.amount), count(*), 0, max(g.created_at)
FROM quota.ledger g
WHERE g.reset_period IS NULL
GROUP BY 1, 2, 3;

------------------------------------------------------------------------------------------------------------------
-- 3. Engine (engine.sql)
------------------------------------------------------------------------------------------------------------------

-- commit and release gained p_user (a reservation of another user is treated as unknown). A new argument is a
-- new signature, so the 0.1.0 functions are dropped (nothing in the extension depends on them) and created anew
-- with their comment, REVOKE and GRANT. Callers passing two (one) arguments keep working through the default.
DROP FUNCTION quota.commit(uuid, bigint);
DROP FUNCTION quota.release(uuid);

CREATE FUNCTION quota.commit(p_reservation uuid, p_actual bigint, p_user text DEFAULT NULL)
RETURNS quota.settlement
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan
AS 'MODULE_PATHNAME', 'commit_wrapper';
COMMENT ON FUNCTION quota.commit(uuid, bigint, text) IS
    'Settles a reservation at the actual amount: less than the hold frees the rest; more is charged up to what '
    'the limits allow (capped = true says it was cut). The charge is one ledger row. With p_user, a reservation '
    'of another user is treated as unknown (callers acting for an end user always pass it). Errors: P0002 '
    'unknown reservation, 55000 already committed, released or expired, 22004/22023 bad p_actual or p_user.';

CREATE FUNCTION quota.release(p_reservation uuid, p_user text DEFAULT NULL) RETURNS quota.settlement
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan
AS 'MODULE_PATHNAME', 'release_wrapper';
COMMENT ON FUNCTION quota.release(uuid, text) IS
    'Frees a reservation''s hold entirely (the AI call failed: nothing is charged). Errors as for quota.commit.';

REVOKE ALL ON FUNCTION quota.commit(uuid, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.release(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION quota.commit(uuid, bigint, text) TO quota_api;
GRANT EXECUTE ON FUNCTION quota.release(uuid, text) TO quota_api;

-- The engine's functions plan their prepared statements generically (see engine.sql): re-planning the consume
-- statement on every call cost more than running it.
ALTER FUNCTION quota.consume(text, text, bigint, text, jsonb) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION quota.check(text, text, bigint) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION quota.status(text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION quota.reserve(text, text, bigint, interval, text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION quota._ensure_account(text) SET plan_cache_mode = force_generic_plan;

-- Same signatures, new bodies: replaced in place, which keeps their grants.
CREATE OR REPLACE FUNCTION quota.assign_default_plan() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_column text := COALESCE(TG_ARGV[0], 'id');
    v_row jsonb;
BEGIN
    -- A BEFORE trigger returning NULL would silently drop the user's row, so only AFTER is accepted.
    IF TG_OP <> 'INSERT' OR TG_LEVEL <> 'ROW' OR TG_WHEN <> 'AFTER' THEN
        RAISE EXCEPTION 'quota.assign_default_plan() must be an AFTER INSERT ... FOR EACH ROW trigger'
            USING ERRCODE = 'feature_not_supported';
    END IF;
    v_row := pg_catalog.to_jsonb(NEW);
    IF NOT v_row ? v_column THEN
        RAISE EXCEPTION 'table %.% has no column "%"', TG_TABLE_SCHEMA, TG_TABLE_NAME, v_column
            USING ERRCODE = 'undefined_column',
                  HINT = 'Pass the id column''s name: EXECUTE FUNCTION quota.assign_default_plan(''id'').';
    END IF;
    PERFORM quota._ensure_account(v_row ->> v_column);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION quota.assign_default_plan() IS
    'Trigger function for any users table: AFTER INSERT ... FOR EACH ROW EXECUTE FUNCTION '
    'quota.assign_default_plan(''id_column''). Gives the new user the default plan (once; an existing account '
    'is left alone).';

CREATE OR REPLACE FUNCTION quota.verify()
RETURNS TABLE (user_id text, meter text, period text, window_start timestamptz, counter_used bigint, ledger_used bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.user_id, c.meter, c.period, c.window_start, c.used, COALESCE(l.total, 0)
    FROM quota.counters c
    JOIN quota.accounts a ON a.user_id = c.user_id
    CROSS JOIN LATERAL (SELECT COALESCE(a.timezone, quota.default_timezone()) AS tz) z
    LEFT JOIN LATERAL (
        SELECT sum(g.amount)::bigint AS total
        FROM quota.ledger g
        WHERE g.user_id = c.user_id AND g.meter = c.meter
          AND (g.reset_period IS NULL OR g.reset_period = c.period)
          AND g.created_at >= c.window_start
          AND g.created_at < quota.window_end(c.period, c.window_start, z.tz)
    ) l ON true
    -- Only windows of the user's current timezone: a row left in a window of an earlier timezone no longer
    -- counts (the engine recounts it from the ledger when it is next used).
    WHERE c.window_start = quota.window_start(c.period, c.window_start, z.tz)
      AND c.used <> COALESCE(l.total, 0)
    ORDER BY 1, 2, 3
$$;
COMMENT ON FUNCTION quota.verify() IS
    'Every counter whose usage disagrees with the ledger for its window. Empty when everything is consistent.';

CREATE OR REPLACE FUNCTION quota.purge_idempotency_keys(p_older_than interval DEFAULT '7 days') RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_count bigint;
BEGIN
    IF p_older_than IS NULL THEN
        RAISE EXCEPTION 'p_older_than must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_older_than < interval '24 hours' THEN
        RAISE EXCEPTION 'idempotency keys must be kept at least 24 hours, got %', p_older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM quota.idempotency_keys WHERE created_at < quota.now() - p_older_than;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION quota.purge_idempotency_keys(interval) IS
    'Deletes idempotency keys older than p_older_than (at least 24 hours); returns how many. Run it from cron '
    'or pg_cron; the quota engine itself never needs a job.';

------------------------------------------------------------------------------------------------------------------
-- 4. Administration (admin.sql)
------------------------------------------------------------------------------------------------------------------

CREATE FUNCTION quota.set_plan_rollover(p_plan text, p_meter text, p_period text, p_cap bigint,
                                        p_actor text DEFAULT NULL)
RETURNS quota.plan_limits
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row quota.plan_limits;
BEGIN
    PERFORM quota._require_plan(p_plan);
    PERFORM quota._require_meter(p_meter);
    PERFORM quota._check_period(p_period);
    IF p_cap < 0 THEN
        RAISE EXCEPTION 'rollover cap must be zero or more (NULL: no rollover), got %', p_cap
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE quota.plan_limits SET rollover_cap = p_cap
    WHERE plan = p_plan AND meter = p_meter AND period = p_period
    RETURNING * INTO v_row;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'plan "%" has no % limit for meter "%"', p_plan, p_period, p_meter
            USING ERRCODE = 'no_data_found', HINT = 'Set the limit first with quota.set_plan_limit().';
    END IF;
    PERFORM quota._audit(p_actor, 'set_plan_rollover', p_plan, pg_catalog.to_jsonb(v_row));
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.set_plan_rollover(text, text, text, bigint, text) IS
    'Lets up to p_cap of a window''s unused allowance carry into the next window of the same plan limit '
    '(NULL: no rollover). The carried amount is added to the limit the user sees. Errors: P0002 when the plan '
    'has no such limit; 22004/22023 as for set_plan_limit. Audited.';

CREATE FUNCTION quota.set_plan_burst(p_plan text, p_meter text, p_rate bigint, p_per interval DEFAULT '1 second',
                                     p_burst bigint DEFAULT 1, p_actor text DEFAULT NULL)
RETURNS quota.plan_bursts
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row quota.plan_bursts;
    v_us numeric;
BEGIN
    PERFORM quota._require_plan(p_plan);
    PERFORM quota._require_meter(p_meter);
    IF p_rate IS NULL THEN
        DELETE FROM quota.plan_bursts WHERE plan = p_plan AND meter = p_meter;
        PERFORM quota._audit(p_actor, 'set_plan_burst', p_plan,
                             pg_catalog.jsonb_build_object('meter', p_meter, 'rate', NULL));
        RETURN NULL;
    END IF;
    IF p_per IS NULL OR p_burst IS NULL THEN
        RAISE EXCEPTION 'p_per and p_burst must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_rate <= 0 OR p_burst <= 0 OR p_burst > 1000000000000 THEN
        RAISE EXCEPTION 'rate and burst must be more than 0, got rate % and burst %', p_rate, p_burst
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_per <= interval '0' OR p_per > interval '1 day' THEN
        RAISE EXCEPTION 'per must be more than 0 and at most 1 day, got %', p_per
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_us := EXTRACT(epoch FROM p_per) * 1000000 / p_rate;
    IF v_us < 1 THEN
        RAISE EXCEPTION 'a rate of % per % is more than one per microsecond', p_rate, p_per
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO quota.plan_bursts AS b (plan, meter, rate, per, burst, emission_us)
    VALUES (p_plan, p_meter, p_rate, p_per, p_burst, round(v_us)::bigint)
    ON CONFLICT (plan, meter) DO UPDATE
    SET rate = EXCLUDED.rate, per = EXCLUDED.per, burst = EXCLUDED.burst, emission_us = EXCLUDED.emission_us
    RETURNING * INTO v_row;
    PERFORM quota._audit(p_actor, 'set_plan_burst', p_plan, pg_catalog.to_jsonb(v_row));
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.set_plan_burst(text, text, bigint, interval, bigint, text) IS
    'Sets the plan''s burst limit for a meter (a GCRA): p_rate per p_per on average, up to p_burst at once, e.g. '
    '(''free'', ''ai_requests'', 1, ''10 seconds'', 3). p_rate NULL removes it. Checked in the same decision as '
    'the calendar limits; a denial''s retry_after_s is when the next call passes. Audited.';

CREATE OR REPLACE FUNCTION quota.assign_plan(p_user text, p_plan text, p_expires_at timestamptz DEFAULT NULL,
                                  p_actor text DEFAULT NULL)
RETURNS quota.accounts
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_old text;
    v_row quota.accounts;
BEGIN
    PERFORM quota._validate_user(p_user);
    PERFORM quota._require_plan(p_plan);
    IF p_expires_at IS NOT NULL AND p_expires_at <= quota.now() THEN
        RAISE EXCEPTION 'expiry % is not in the future', p_expires_at USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT plan INTO v_old FROM quota.accounts WHERE user_id = p_user FOR UPDATE;
    INSERT INTO quota.accounts AS a (user_id, plan, plan_expires_at) VALUES (p_user, p_plan, p_expires_at)
    ON CONFLICT (user_id) DO UPDATE
        SET plan = EXCLUDED.plan, plan_expires_at = EXCLUDED.plan_expires_at, updated_at = pg_catalog.now()
    RETURNING * INTO v_row;
    PERFORM quota._audit(p_actor, 'assign_plan', p_user,
                         pg_catalog.jsonb_build_object('from', v_old, 'to', p_plan, 'expires_at', p_expires_at));
    PERFORM pg_catalog.pg_notify('quota_events', pg_catalog.json_build_object(
        'user', p_user, 'kind', 'plan_changed', 'plan', p_plan,
        'expires_at', pg_catalog.to_char(p_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))::jsonb::text);
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.assign_plan(text, text, timestamptz, text) IS
    'Puts p_user on p_plan, until p_expires_at (NULL: no end), creating the account if needed. Effective for '
    'the very next consume: nothing is cached. After expiry the user falls back to the default plan. Audited '
    'and announced on NOTIFY channel quota_events once the transaction commits.';

CREATE OR REPLACE FUNCTION quota.reset_usage(p_user text, p_meter text DEFAULT NULL, p_actor text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_now timestamptz := quota.now();
    v_count bigint := 0;
    v_row record;
BEGIN
    PERFORM quota._validate_user(p_user);
    IF p_meter IS NOT NULL THEN
        PERFORM quota._require_meter(p_meter);
    END IF;
    -- Same lock order as consume (meter, then period), so a reset queues behind in-flight consumes.
    FOR v_row IN
        SELECT c.meter, c.period, c.used, c.window_start,
               quota.window_end(c.period, c.window_start, COALESCE(a.timezone, quota.default_timezone())) AS ends
        FROM quota.counters c JOIN quota.accounts a ON a.user_id = c.user_id
        WHERE c.user_id = p_user AND (p_meter IS NULL OR c.meter = p_meter)
        ORDER BY c.meter, c.period
        FOR UPDATE OF c
    LOOP
        -- Only the current window holds usage that still counts; an older one resets by itself.
        CONTINUE WHEN v_row.used = 0 OR v_now < v_row.window_start OR v_now >= v_row.ends;
        INSERT INTO quota.ledger (user_id, meter, amount, created_at, reset_period, metadata)
        VALUES (p_user, v_row.meter, -v_row.used, v_now, v_row.period,
                pg_catalog.jsonb_build_object('reset_by', COALESCE(p_actor, session_user::text)));
        UPDATE quota.counters SET used = 0, denied = 0, last_denied = false
        WHERE user_id = p_user AND meter = v_row.meter AND period = v_row.period;
        v_count := v_count + 1;
    END LOOP;
    PERFORM quota._audit(p_actor, 'reset_usage', p_user,
        pg_catalog.jsonb_build_object('meter', p_meter, 'windows', v_count));
    PERFORM pg_catalog.pg_notify('quota_events', pg_catalog.json_build_object(
        'user', p_user, 'meter', p_meter, 'kind', 'reset')::jsonb::text);
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION quota.reset_usage(text, text, text) IS
    'Zeroes the user''s current windows (one meter, or all when p_meter is NULL); returns how many. The ledger '
    'keeps its history: each reset appends a correcting row, so quota.verify() stays empty. Audited and '
    'announced on quota_events.';

-- user_usage returns two more columns (held, credits): a new result type cannot be replaced in place. It reads
-- the user's credits through quota.credits, new in 0.2.0.
DROP FUNCTION quota.user_usage(text);

CREATE FUNCTION quota.credits(p_user text)
RETURNS TABLE (meter text, remaining bigint, next_expiry timestamptz, grants bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT g.meter, sum(g.remaining)::bigint, min(g.expires_at), count(*)
    FROM quota.grants g
    WHERE g.user_id = quota._validate_user(p_user) AND g.remaining > 0
      AND (g.expires_at IS NULL OR g.expires_at > quota.now())
    GROUP BY g.meter
    ORDER BY g.meter
$$;
COMMENT ON FUNCTION quota.credits(text) IS
    'The user''s unexpired credits per meter: what is left, the earliest expiry, and how many grants hold it.';

CREATE FUNCTION quota.user_usage(p_user text)
RETURNS TABLE (
    meter text, plan text, period text, used bigint, "limit" bigint, percent double precision, status text,
    resets_at timestamptz, today bigint, all_time bigint, last_used_at timestamptz, held bigint, credits bigint
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH tz AS (
        SELECT COALESCE((SELECT a.timezone FROM quota.accounts a WHERE a.user_id = quota._validate_user(p_user)),
                        quota.default_timezone()) AS name
    ), today AS (
        -- The account's own day, which the UTC rollup cannot give: one day of the user's ledger, by its key.
        SELECT g.meter, sum(g.amount)::bigint AS amount
        FROM quota.ledger g, tz
        WHERE g.user_id = p_user AND g.created_at >= quota.window_start('day', quota.now(), tz.name)
          AND g.reset_period IS NULL
        GROUP BY g.meter
    ), totals AS (
        SELECT u.meter, sum(u.amount)::bigint AS all_time, max(u.last_at) AS last_used_at
        FROM quota.usage_daily u
        WHERE u.user_id = p_user
        GROUP BY u.meter
    )
    SELECT s.meter, s.plan, s.period, s.used, s."limit", s.percent, s.status, s.resets_at,
           COALESCE(d.amount, 0), COALESCE(t.all_time, 0), t.last_used_at, s.held, COALESCE(c.remaining, 0)
    FROM quota.status(p_user) s
    LEFT JOIN totals t ON t.meter = s.meter
    LEFT JOIN today d ON d.meter = s.meter
    LEFT JOIN quota.credits(p_user) c ON c.meter = s.meter
    ORDER BY s.meter, array_position(ARRAY['hour', 'day', 'week', 'month'], s.period)
$$;
COMMENT ON FUNCTION quota.user_usage(text) IS
    'An admin''s view of one user: per meter and window, the plan, usage, limit, percent, status and reset time, '
    'plus usage today (in the account''s timezone) and all time (resets do not erase it), the last use, the '
    'amount held by open reservations and the unexpired credits.';

REVOKE ALL ON FUNCTION quota.set_plan_rollover(text, text, text, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.set_plan_burst(text, text, bigint, interval, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.credits(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.user_usage(text) FROM PUBLIC;

------------------------------------------------------------------------------------------------------------------
-- 5. Credits (credits.sql, new in 0.2.0)
------------------------------------------------------------------------------------------------------------------

-- Credits: one-off amounts (top-ups, promotions) a user spends once the plan's window allowance is used up.
--
-- The engine spends them inside quota.consume, under the meter's counter locks, earliest expiry first; this file
-- grants them (quota.credits, which shows them, lives in admin.sql beside quota.user_usage, which uses it).

CREATE FUNCTION quota.grant(
    p_user text,
    p_meter text,
    p_amount bigint,
    p_expires_at timestamptz DEFAULT NULL,
    p_source text DEFAULT 'admin',
    p_actor text DEFAULT NULL
) RETURNS quota.grants
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row quota.grants;
    v_now timestamptz := quota.now();
BEGIN
    PERFORM quota._validate_user(p_user);
    PERFORM quota._require_meter(p_meter);
    IF p_amount IS NULL THEN
        RAISE EXCEPTION 'p_amount must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_amount <= 0 OR p_amount > 1000000000000 THEN
        RAISE EXCEPTION 'a grant must be more than 0 and at most 1000000000000, got %', p_amount
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_expires_at IS NOT NULL AND p_expires_at <= v_now THEN
        RAISE EXCEPTION 'a grant must expire in the future, got %', p_expires_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_source IS NULL THEN
        RAISE EXCEPTION 'p_source must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF length(btrim(p_source)) = 0 OR length(p_source) > 100 THEN
        RAISE EXCEPTION 'source must be 1 to 100 characters, got "%"', left(p_source, 120)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM quota._ensure_account(p_user);
    INSERT INTO quota.grants (user_id, meter, amount, remaining, expires_at, source, created_at)
    VALUES (p_user, p_meter, p_amount, p_amount, p_expires_at, p_source, v_now)
    RETURNING * INTO v_row;
    PERFORM quota._audit(p_actor, 'grant', p_user,
        pg_catalog.jsonb_build_object('grant_id', v_row.id, 'meter', p_meter, 'amount', p_amount,
                                      'expires_at', p_expires_at, 'source', p_source));
    PERFORM pg_catalog.pg_notify('quota_events', pg_catalog.json_build_object(
        'user', p_user, 'meter', p_meter, 'kind', 'granted', 'amount', p_amount)::jsonb::text);
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.grant(text, text, bigint, timestamptz, text, text) IS
    'Gives p_user p_amount of p_meter as credits, spent only after the plan''s window allowance is used up, '
    'earliest expiry first (p_expires_at NULL: never expires, spent last). Creates the account if needed. '
    'Audited and announced on quota_events (kind granted). Errors: 22004, 22023 (user, undeclared meter, '
    'amount <= 0, expiry not in the future, source).';

REVOKE ALL ON FUNCTION quota.grant(text, text, bigint, timestamptz, text, text) FROM PUBLIC;

------------------------------------------------------------------------------------------------------------------
-- 6. Analytics (analytics.sql, new in 0.2.0)
------------------------------------------------------------------------------------------------------------------

-- Analytics: plain SQL over the daily rollup (quota.usage_daily), never over the ledger, so the cost follows
-- the number of users active in the range asked about, not the length of history.
--
-- Days are UTC days. The rollup is written by the consume statement (allowed calls) and by the engine (denials).

CREATE FUNCTION quota._today() RETURNS date
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT (quota.now() AT TIME ZONE 'UTC')::date
$$;
COMMENT ON FUNCTION quota._today() IS 'Internal: the current UTC day on aiquota''s clock.';

CREATE FUNCTION quota.analytics(p_day date DEFAULT NULL, p_meter text DEFAULT 'ai_requests')
RETURNS TABLE (
    day date, meter text, total_users bigint, active_users bigint, users_at_limit bigint, usage bigint,
    requests bigint, usage_all_time bigint, requests_all_time bigint, avg_usage_per_active_user numeric,
    denials bigint
)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_day date := COALESCE(p_day, quota._today());
    v_today date := quota._today();
    v_from date;
    v_cached_until date;
BEGIN
    PERFORM quota._require_meter(p_meter);
    -- Finished days never change: total each one once, then "all time" is a sum over one row per day. A day
    -- is only cached once the next one is over too, so a transaction that began before midnight and committed
    -- after it is still counted. On a standby (or in a read-only transaction) nothing is cached: the same
    -- answer comes from the rollup directly.
    v_cached_until := v_today - 1;
    IF pg_catalog.pg_is_in_recovery() OR pg_catalog.current_setting('transaction_read_only') = 'on' THEN
        v_cached_until := '-infinity';
    ELSE
        SELECT COALESCE(max(t.day) + 1, '-infinity') INTO v_from FROM quota.daily_totals t WHERE t.meter = p_meter;
        INSERT INTO quota.daily_totals (day, meter, users, amount, requests, denials)
        SELECT u.day, u.meter, count(*), sum(u.amount), sum(u.requests), sum(u.denials)
        FROM quota.usage_daily u
        WHERE u.meter = p_meter AND u.day >= v_from AND u.day < v_cached_until
        GROUP BY u.day, u.meter
        ON CONFLICT DO NOTHING;
    END IF;

    RETURN QUERY
    WITH d AS (
        SELECT count(*) FILTER (WHERE u.requests > 0 OR u.denials > 0) AS active,
               count(*) FILTER (WHERE u.denials > 0) AS at_limit,
               COALESCE(sum(u.amount), 0)::bigint AS usage,
               COALESCE(sum(u.requests), 0)::bigint AS requests,
               COALESCE(sum(u.denials), 0)::bigint AS denials
        FROM quota.usage_daily u
        WHERE u.day = v_day AND u.meter = p_meter
    ), past AS (
        SELECT COALESCE(sum(t.amount), 0) AS usage, COALESCE(sum(t.requests), 0) AS requests
        FROM quota.daily_totals t WHERE t.meter = p_meter AND t.day < v_cached_until
    ), current AS (
        SELECT COALESCE(sum(u.amount), 0) AS usage, COALESCE(sum(u.requests), 0) AS requests
        FROM quota.usage_daily u WHERE u.day >= v_cached_until AND u.meter = p_meter
    )
    SELECT v_day, p_meter, (SELECT count(*) FROM quota.accounts), d.active, d.at_limit, d.usage, d.requests,
           (past.usage + current.usage)::bigint, (past.requests + current.requests)::bigint,
           CASE WHEN d.active > 0 THEN round(d.usage::numeric / d.active, 2) END,
           d.denials
    FROM d, past, current;
END
$$;
COMMENT ON FUNCTION quota.analytics(date, text) IS
    'One row for a UTC day (default today) and meter: accounts in total, users active that day (at least one '
    'call, allowed or denied), users who hit a limit that day (at least one denial), usage and allowed calls that '
    'day and all time, average usage per active user, and denials. Reads the daily rollup only.';

CREATE FUNCTION quota.top_users(p_limit int DEFAULT 10, p_by text DEFAULT 'today', p_meter text DEFAULT 'ai_requests')
RETURNS TABLE (rank bigint, user_id text, plan text, usage bigint, requests bigint, denials bigint, last_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_today date := quota._today();
    v_from date;
BEGIN
    IF p_limit IS NULL OR p_by IS NULL THEN
        RAISE EXCEPTION 'p_limit and p_by must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_limit < 1 OR p_limit > 1000 THEN
        RAISE EXCEPTION 'p_limit must be between 1 and 1000, got %', p_limit USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_from := CASE p_by WHEN 'today' THEN v_today WHEN 'week' THEN v_today - 6 WHEN 'month' THEN v_today - 29
                        WHEN 'all_time' THEN '-infinity'::date END;
    IF v_from IS NULL THEN
        RAISE EXCEPTION 'p_by must be today, week, month or all_time, got "%"', p_by
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM quota._require_meter(p_meter);
    RETURN QUERY
    SELECT row_number() OVER (ORDER BY t.usage DESC, t.user_id), t.user_id,
           CASE WHEN a.plan_expires_at <= quota.now() THEN quota.default_plan() ELSE a.plan END,
           t.usage, t.requests, t.denials, t.last_at
    FROM (
        SELECT u.user_id, sum(u.amount)::bigint AS usage, sum(u.requests)::bigint AS requests,
               sum(u.denials)::bigint AS denials, max(u.last_at) AS last_at
        FROM quota.usage_daily u
        WHERE u.day >= v_from AND u.day <= v_today AND u.meter = p_meter
        GROUP BY u.user_id
        ORDER BY 2 DESC, 1
        LIMIT p_limit
    ) t
    LEFT JOIN quota.accounts a ON a.user_id = t.user_id
    ORDER BY 1;
END
$$;
COMMENT ON FUNCTION quota.top_users(int, text, text) IS
    'The p_limit (1..1000) heaviest users of p_meter over p_by: today, week (last 7 UTC days), month (last 30) '
    'or all_time, with their effective plan, usage, allowed calls, denials and last use.';

CREATE FUNCTION quota.usage_history(p_user text, p_days int DEFAULT 30, p_meter text DEFAULT 'ai_requests')
RETURNS TABLE (day date, usage bigint, requests bigint, denials bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_today date := quota._today();
BEGIN
    PERFORM quota._validate_user(p_user);
    PERFORM quota._require_meter(p_meter);
    IF p_days IS NULL THEN
        RAISE EXCEPTION 'p_days must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_days < 1 OR p_days > 366 THEN
        RAISE EXCEPTION 'p_days must be between 1 and 366, got %', p_days USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT s.day::date, COALESCE(u.amount, 0), COALESCE(u.requests, 0), COALESCE(u.denials, 0)
    FROM generate_series(v_today - (p_days - 1), v_today, interval '1 day') AS s(day)
    LEFT JOIN quota.usage_daily u ON u.user_id = p_user AND u.day = s.day::date AND u.meter = p_meter
    ORDER BY 1;
END
$$;
COMMENT ON FUNCTION quota.usage_history(text, int, text) IS
    'The user''s usage of p_meter per UTC day for the last p_days (1..366) days, today last, with zero days '
    'included so a chart needs no gap filling.';

CREATE FUNCTION quota.predict_exhaustion(p_user text, p_meter text DEFAULT 'ai_requests')
RETURNS TABLE (
    period text, used bigint, "limit" bigint, window_start timestamptz, resets_at timestamptz,
    rate_per_hour double precision, exhausts_at timestamptz
)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_now timestamptz := quota.now();
    v_tz text;
BEGIN
    PERFORM quota._validate_user(p_user);
    PERFORM quota._require_meter(p_meter);
    SELECT COALESCE(a.timezone, quota.default_timezone()) INTO v_tz FROM quota.accounts a WHERE a.user_id = p_user;
    v_tz := COALESCE(v_tz, quota.default_timezone());
    RETURN QUERY
    WITH w AS (
        SELECT s.period, s.used, s.held, s."limit", quota.window_start(s.period, v_now, v_tz) AS ws, s.resets_at
        FROM quota.status(p_user) s
        WHERE s.meter = p_meter AND s."limit" IS NOT NULL
    ), r AS (
        SELECT w.*, EXTRACT(epoch FROM v_now - w.ws) / 3600.0 AS hours FROM w
    )
    SELECT r.period, r.used, r."limit", r.ws, r.resets_at,
           CASE WHEN r.hours > 0 THEN (r.used / r.hours)::double precision ELSE 0 END,
           CASE
               WHEN r.used + r.held >= r."limit" THEN v_now
               WHEN r.used = 0 OR r.hours <= 0 THEN NULL
               ELSE (SELECT e FROM (SELECT v_now + make_interval(secs => (r."limit" - r.used - r.held)
                                            * (r.hours * 3600.0 / r.used)) AS e) x
                     WHERE x.e < r.resets_at)
           END
    FROM r
    ORDER BY array_position(ARRAY['hour', 'day', 'week', 'month'], r.period);
END
$$;
COMMENT ON FUNCTION quota.predict_exhaustion(text, text) IS
    'Per limited window of p_meter: the pace so far in the window (per hour) and when that pace would use up '
    'the limit (exhausts_at); NULL when it would not before the window resets or nothing was used yet; now when '
    'the window is already used up.';

REVOKE ALL ON FUNCTION quota._today() FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.analytics(date, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.top_users(int, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.usage_history(text, int, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.predict_exhaustion(text, text) FROM PUBLIC;

------------------------------------------------------------------------------------------------------------------
-- 7. Payments (payments.sql, new in 0.2.0)
------------------------------------------------------------------------------------------------------------------

-- Payments: what can be bought, pending orders, and recording a verified payment exactly once.
--
-- The API verifies the provider's signature and the amount (it is the only part that talks to Razorpay or
-- Stripe); this file makes applying the payment atomic and idempotent: one row per (provider, payment id), the
-- plan change in the same transaction, so the browser callback and any number of webhook deliveries, in any
-- order and at the same time, upgrade the user exactly once.

CREATE TABLE quota.products (
    key        text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]{0,62}$'),
    plan       text NOT NULL REFERENCES quota.plans (key) ON UPDATE CASCADE,
    -- NULL: the plan is permanent. Otherwise a pass that ends after this long (extended by a repeat purchase).
    duration   interval CHECK (duration > interval '0'),
    amount     bigint NOT NULL CHECK (amount > 0),
    currency   text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE quota.products IS
    'What can be bought: a plan, for a duration (NULL: permanent), at a price in the smallest currency unit.';

CREATE TABLE quota.orders (
    reference_id text PRIMARY KEY CHECK (length(reference_id) BETWEEN 1 AND 40),
    provider     text NOT NULL CHECK (provider ~ '^[a-z][a-z0-9_]{0,30}$'),
    user_id      text NOT NULL,
    product      text NOT NULL REFERENCES quota.products (key) ON UPDATE CASCADE,
    amount       bigint NOT NULL,
    currency     text NOT NULL,
    -- The provider's id for what was created for this order (e.g. a Razorpay payment link plink_...).
    provider_ref text,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid')),
    payment_id   text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE UNIQUE INDEX orders_provider_ref_key ON quota.orders (provider, provider_ref) WHERE provider_ref IS NOT NULL;
CREATE INDEX orders_user_idx ON quota.orders (user_id, created_at);
COMMENT ON TABLE quota.orders IS
    'Orders started by a user (e.g. a payment link): the only trusted source of who pays for what. A payment '
    'names its order; the user and product are never taken from the payment request itself.';

CREATE TABLE quota.payments (
    provider        text NOT NULL,
    payment_id      text NOT NULL CHECK (length(payment_id) BETWEEN 1 AND 255),
    user_id         text NOT NULL,
    product         text NOT NULL,
    amount          bigint NOT NULL,
    currency        text NOT NULL,
    -- applied: the plan was assigned; mismatch: amount or currency differed from the product, nothing assigned.
    status          text NOT NULL CHECK (status IN ('applied', 'mismatch')),
    order_ref       text,
    plan            text,
    plan_expires_at timestamptz,
    raw             jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (provider, payment_id)
);
CREATE INDEX payments_user_idx ON quota.payments (user_id, created_at);
COMMENT ON TABLE quota.payments IS
    'Every payment recorded, once per provider and payment id (the browser callback and the webhooks of one '
    'payment share its id). Visible to admins.';

CREATE FUNCTION quota._check_provider(p_provider text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_provider IS NULL THEN
        RAISE EXCEPTION 'provider must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_provider !~ '^[a-z][a-z0-9_]{0,30}$' THEN
        RAISE EXCEPTION 'provider "%" is not a valid name', left(p_provider, 40)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN p_provider;
END
$$;
COMMENT ON FUNCTION quota._check_provider(text) IS 'Internal: validates a payment provider name (22004 / 22023).';

CREATE FUNCTION quota.define_product(p_key text, p_plan text, p_duration interval, p_amount bigint,
                                     p_currency text, p_active boolean DEFAULT true, p_actor text DEFAULT NULL)
RETURNS quota.products
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row quota.products;
BEGIN
    PERFORM quota._check_key('product', p_key);
    PERFORM quota._require_plan(p_plan);
    IF p_amount IS NULL OR p_currency IS NULL OR p_active IS NULL THEN
        RAISE EXCEPTION 'amount, currency and active must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_duration IS NOT NULL AND (p_duration <= interval '0' OR p_duration > interval '10 years') THEN
        RAISE EXCEPTION 'duration must be more than 0 and at most 10 years (NULL: permanent), got %', p_duration
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_amount <= 0 THEN
        RAISE EXCEPTION 'amount must be more than 0 (in the smallest currency unit), got %', p_amount
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_currency !~ '^[A-Z]{3}$' THEN
        RAISE EXCEPTION 'currency must be an ISO 4217 code such as INR or USD, got "%"', left(p_currency, 10)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO quota.products AS p (key, plan, duration, amount, currency, active)
    VALUES (p_key, p_plan, p_duration, p_amount, p_currency, p_active)
    ON CONFLICT (key) DO UPDATE SET plan = EXCLUDED.plan, duration = EXCLUDED.duration, amount = EXCLUDED.amount,
                                    currency = EXCLUDED.currency, active = EXCLUDED.active
    RETURNING * INTO v_row;
    PERFORM quota._audit(p_actor, 'define_product', p_key, pg_catalog.to_jsonb(v_row));
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.define_product(text, text, interval, bigint, text, boolean, text) IS
    'Creates or changes a product: p_plan for p_duration (NULL: permanent) at p_amount in the smallest unit of '
    'p_currency (ISO 4217). Inactive products cannot be ordered; payments for existing orders still apply. Audited.';

CREATE FUNCTION quota.create_order(p_provider text, p_user text, p_product text) RETURNS quota.orders
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_product quota.products;
    v_row quota.orders;
    v_now timestamptz := quota.now();
BEGIN
    PERFORM quota._check_provider(p_provider);
    PERFORM quota._validate_user(p_user);
    PERFORM quota._check_key('product', p_product);
    SELECT * INTO v_product FROM quota.products WHERE key = p_product AND active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'product "%" does not exist or is not for sale', p_product USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO quota.orders (reference_id, provider, user_id, product, amount, currency, created_at, updated_at)
    VALUES ('aq_' || replace(gen_random_uuid()::text, '-', ''), p_provider, p_user, p_product,
            v_product.amount, v_product.currency, v_now, v_now)
    RETURNING * INTO v_row;
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.create_order(text, text, text) IS
    'Starts an order of p_product for p_user with p_provider: a unique reference_id (at most 40 characters, as '
    'Razorpay requires) and the product''s price. Errors: P0002 unknown or inactive product; 22004/22023.';

CREATE FUNCTION quota.attach_order(p_reference_id text, p_provider_ref text) RETURNS quota.orders
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row quota.orders;
BEGIN
    IF p_reference_id IS NULL OR p_provider_ref IS NULL THEN
        RAISE EXCEPTION 'reference id and provider reference must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF length(p_provider_ref) NOT BETWEEN 1 AND 255 THEN
        RAISE EXCEPTION 'provider reference must be 1 to 255 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_row FROM quota.orders WHERE reference_id = p_reference_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order "%" does not exist', left(p_reference_id, 40) USING ERRCODE = 'no_data_found';
    END IF;
    IF v_row.provider_ref IS NOT NULL AND v_row.provider_ref <> p_provider_ref THEN
        RAISE EXCEPTION 'order "%" is already attached to %', p_reference_id, v_row.provider_ref
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE quota.orders SET provider_ref = p_provider_ref, updated_at = quota.now()
    WHERE reference_id = p_reference_id RETURNING * INTO v_row;
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.attach_order(text, text) IS
    'Records the provider''s id for an order (e.g. the payment link created for it); once set it cannot change. '
    'Errors: P0002 unknown order; 55000 attached to another id.';

CREATE FUNCTION quota.find_order(p_provider text, p_reference_id text DEFAULT NULL, p_provider_ref text DEFAULT NULL)
RETURNS quota.orders
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row quota.orders;
BEGIN
    PERFORM quota._check_provider(p_provider);
    IF p_reference_id IS NULL AND p_provider_ref IS NULL THEN
        RAISE EXCEPTION 'give a reference id or a provider reference' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO v_row FROM quota.orders o
    WHERE o.provider = p_provider
      AND (p_reference_id IS NULL OR o.reference_id = p_reference_id)
      AND (p_provider_ref IS NULL OR o.provider_ref = p_provider_ref);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no % order matches', p_provider USING ERRCODE = 'no_data_found';
    END IF;
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.find_order(text, text, text) IS
    'The order of p_provider with this reference id and/or provider reference (both must match when both are '
    'given). Errors: P0002 when none matches.';

CREATE FUNCTION quota.record_payment(
    p_provider text,
    p_payment_id text,
    p_user text,
    p_product text,
    p_amount bigint,
    p_currency text,
    p_raw jsonb DEFAULT '{}',
    p_order text DEFAULT NULL
)
RETURNS TABLE (outcome text, status text, user_id text, plan text, plan_expires_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_product quota.products;
    v_order quota.orders;
    v_acct quota.accounts;
    v_pay quota.payments;
    v_now timestamptz := quota.now();
    v_base timestamptz;
    v_expires timestamptz;
    v_status text;
BEGIN
    PERFORM quota._check_provider(p_provider);
    IF p_payment_id IS NULL OR p_amount IS NULL OR p_currency IS NULL THEN
        RAISE EXCEPTION 'payment id, amount and currency must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF length(p_payment_id) NOT BETWEEN 1 AND 255 THEN
        RAISE EXCEPTION 'payment id must be 1 to 255 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM quota._validate_user(p_user);
    PERFORM quota._check_key('product', p_product);
    SELECT * INTO v_product FROM quota.products WHERE key = p_product;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'product "%" does not exist', p_product USING ERRCODE = 'no_data_found';
    END IF;
    IF p_order IS NOT NULL THEN
        SELECT * INTO v_order FROM quota.orders WHERE reference_id = p_order FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'order "%" does not exist', left(p_order, 40) USING ERRCODE = 'no_data_found';
        END IF;
        IF v_order.provider <> p_provider OR v_order.user_id <> p_user OR v_order.product <> p_product THEN
            RAISE EXCEPTION 'payment % does not match order %', p_payment_id, p_order
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;

    -- The price is the one the user was asked to pay: the order's when there is one (a later price change
    -- must not turn a correct payment into a mismatch), else the product's.
    v_status := CASE WHEN p_amount = COALESCE(v_order.amount, v_product.amount)
                          AND p_currency = COALESCE(v_order.currency, v_product.currency)
                     THEN 'applied' ELSE 'mismatch' END;
    -- The payment row is the once-only gate: a concurrent duplicate waits here for the first to commit, then
    -- finds it and changes nothing.
    INSERT INTO quota.payments AS p (provider, payment_id, user_id, product, amount, currency, status, order_ref,
                                     raw, created_at)
    VALUES (p_provider, p_payment_id, p_user, p_product, p_amount, p_currency, v_status, p_order,
            COALESCE(p_raw, '{}'), v_now)
    ON CONFLICT (provider, payment_id) DO NOTHING
    RETURNING * INTO v_pay;
    IF NOT FOUND THEN
        SELECT * INTO v_pay FROM quota.payments p WHERE p.provider = p_provider AND p.payment_id = p_payment_id;
        RETURN QUERY SELECT 'duplicate'::text, v_pay.status, v_pay.user_id, v_pay.plan, v_pay.plan_expires_at;
        RETURN;
    END IF;
    IF v_status = 'mismatch' THEN
        RAISE WARNING 'payment %/% of % % does not match the price of % (% %); recorded, plan not changed',
            p_provider, p_payment_id, p_amount, p_currency, p_product,
            COALESCE(v_order.amount, v_product.amount), COALESCE(v_order.currency, v_product.currency);
        RETURN QUERY SELECT 'mismatch'::text, v_status, p_user, NULL::text, NULL::timestamptz;
        RETURN;
    END IF;

    -- A pass extends a running pass of the same plan instead of restarting it; a permanent plan stays permanent.
    PERFORM quota._ensure_account(p_user);
    SELECT * INTO v_acct FROM quota.accounts a WHERE a.user_id = p_user FOR UPDATE;
    IF v_product.duration IS NULL THEN
        v_expires := NULL;
    ELSIF v_acct.plan = v_product.plan AND v_acct.plan_expires_at IS NULL
          AND v_acct.plan IS DISTINCT FROM quota.default_plan() THEN
        v_expires := NULL;
    ELSE
        v_base := CASE WHEN v_acct.plan = v_product.plan AND v_acct.plan_expires_at > v_now
                       THEN v_acct.plan_expires_at ELSE v_now END;
        v_expires := v_base + v_product.duration;
    END IF;
    PERFORM quota.assign_plan(p_user, v_product.plan, v_expires, p_provider || ':' || p_payment_id);
    UPDATE quota.payments p SET plan = v_product.plan, plan_expires_at = v_expires
    WHERE p.provider = p_provider AND p.payment_id = p_payment_id;
    IF p_order IS NOT NULL THEN
        UPDATE quota.orders SET status = 'paid', payment_id = p_payment_id, updated_at = v_now
        WHERE reference_id = p_order;
    END IF;
    RETURN QUERY SELECT 'applied'::text, v_status, p_user, v_product.plan, v_expires;
END
$$;
COMMENT ON FUNCTION quota.record_payment(text, text, text, text, bigint, text, jsonb, text) IS
    'Records a verified payment and assigns the product''s plan in one transaction, exactly once per provider '
    'and payment id: outcome applied (plan assigned; a pass extends a running pass of the same plan), duplicate '
    '(already recorded; nothing changes) or mismatch (amount or currency differ from the price: the order''s '
    'when p_order is given, else the product''s; recorded, no plan change). With p_order, the order must be for '
    'the same provider, user and product, and becomes paid.';

REVOKE ALL ON FUNCTION quota._check_provider(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.define_product(text, text, interval, bigint, text, boolean, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.create_order(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.attach_order(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.find_order(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.record_payment(text, text, text, text, bigint, text, jsonb, text) FROM PUBLIC;

------------------------------------------------------------------------------------------------------------------
-- 8. Roles and row-level security (roles.sql)
------------------------------------------------------------------------------------------------------------------

GRANT EXECUTE ON FUNCTION quota.create_order(text, text, text) TO quota_api;
GRANT EXECUTE ON FUNCTION quota.attach_order(text, text) TO quota_api;
GRANT EXECUTE ON FUNCTION quota.find_order(text, text, text) TO quota_api;
GRANT EXECUTE ON FUNCTION quota.record_payment(text, text, text, text, bigint, text, jsonb, text) TO quota_api;

GRANT EXECUTE ON FUNCTION quota.user_usage(text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.set_plan_rollover(text, text, text, bigint, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.set_plan_burst(text, text, bigint, interval, bigint, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.define_product(text, text, interval, bigint, text, boolean, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.grant(text, text, bigint, timestamptz, text, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.credits(text) TO quota_api, quota_admin;
GRANT EXECUTE ON FUNCTION quota.analytics(date, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.top_users(int, text, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.usage_history(text, int, text) TO quota_admin;
GRANT EXECUTE ON FUNCTION quota.predict_exhaustion(text, text) TO quota_admin;
-- Admins read every table, the new ones included.
GRANT SELECT ON ALL TABLES IN SCHEMA quota TO quota_admin;

-- End users read their own credits, daily rollup and burst state, like their account, limits, counters and ledger.
DO $rls$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['grants', 'usage_daily', 'bursts'] LOOP
        EXECUTE pg_catalog.format('ALTER TABLE quota.%I ENABLE ROW LEVEL SECURITY', v_table);
        EXECUTE pg_catalog.format('ALTER TABLE quota.%I FORCE ROW LEVEL SECURITY', v_table);
        EXECUTE pg_catalog.format(
            'CREATE POLICY own_rows ON quota.%I FOR SELECT TO quota_reader '
            'USING (user_id = (SELECT quota.current_user_id()))', v_table);
        EXECUTE pg_catalog.format(
            'CREATE POLICY admin_reads_all ON quota.%I FOR SELECT TO quota_admin USING (true)', v_table);
        EXECUTE pg_catalog.format('GRANT SELECT ON quota.%I TO quota_reader', v_table);
    END LOOP;
END
$rls$;

------------------------------------------------------------------------------------------------------------------
-- 9. Defaults and pg_dump markings (defaults.sql)
------------------------------------------------------------------------------------------------------------------

INSERT INTO quota.products (key, plan, duration, amount, currency) VALUES
    ('pro_week', 'pro', interval '7 days', 49900, 'INR'),
    ('pro_month', 'pro', interval '30 days', 1900, 'USD');

-- pg_dump keeps the data of extension tables only when they are marked: the new per-user tables whole, products
-- except the rows installed above, and reservations, which 0.1.0 forgot to mark.
SELECT pg_catalog.pg_extension_config_dump('quota.reservations', '');
SELECT pg_catalog.pg_extension_config_dump('quota.usage_daily', '');
SELECT pg_catalog.pg_extension_config_dump('quota.daily_totals', '');
SELECT pg_catalog.pg_extension_config_dump('quota.grants', '');
SELECT pg_catalog.pg_extension_config_dump('quota.orders', '');
SELECT pg_catalog.pg_extension_config_dump('quota.payments', '');
SELECT pg_catalog.pg_extension_config_dump('quota.products', $$WHERE key NOT IN ('pro_week', 'pro_month')$$);
SELECT pg_catalog.pg_extension_config_dump('quota.bursts', '');
SELECT pg_catalog.pg_extension_config_dump('quota.plan_bursts', '');
SELECT pg_catalog.pg_extension_config_dump('quota.grants_id_seq', '');
