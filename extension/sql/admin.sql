-- Plan and account administration, in plain SQL (PL/pgSQL): nothing here is on the hot path.
--
-- Every change is audited in quota.audit_log in the same transaction. The actor is p_actor when given (the API
-- passes the admin's id) or else session_user: inside a SECURITY DEFINER function current_user is the owner,
-- so session_user is the closest name for who is calling.

CREATE FUNCTION quota._audit(p_actor text, p_action text, p_target text, p_details jsonb) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO quota.audit_log (actor, action, target, details)
    VALUES (COALESCE(p_actor, session_user::text), p_action, p_target, COALESCE(p_details, '{}'::jsonb))
$$;
COMMENT ON FUNCTION quota._audit(text, text, text, jsonb) IS 'Internal: appends one row to quota.audit_log.';

CREATE FUNCTION quota._check_key(p_what text, p_key text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_key IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', p_what USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_key !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION '% "%" is not a valid key', p_what, p_key
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use 1 to 63 characters: a lowercase letter, then lowercase letters, digits or _.';
    END IF;
    RETURN p_key;
END
$$;
COMMENT ON FUNCTION quota._check_key(text, text) IS 'Internal: validates a plan or meter key (22004 / 22023).';

CREATE FUNCTION quota._require_plan(p_plan text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_plan IS NULL THEN
        RAISE EXCEPTION 'plan must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM quota.plans WHERE key = p_plan) THEN
        RAISE EXCEPTION 'plan "%" does not exist', p_plan
            USING ERRCODE = 'no_data_found', HINT = 'List plans with: SELECT key FROM quota.plans;';
    END IF;
    RETURN p_plan;
END
$$;
COMMENT ON FUNCTION quota._require_plan(text) IS 'Internal: raises 22004 / P0002 unless p_plan exists.';

CREATE FUNCTION quota._require_meter(p_meter text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_meter IS NULL THEN
        RAISE EXCEPTION 'meter must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM quota.meters WHERE key = p_meter) THEN
        RAISE EXCEPTION 'meter "%" is not declared in quota.meters', p_meter
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Declare it with quota.define_meter().';
    END IF;
    RETURN p_meter;
END
$$;
COMMENT ON FUNCTION quota._require_meter(text) IS 'Internal: raises 22004 / 22023 unless p_meter is declared.';

CREATE FUNCTION quota._check_period(p_period text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_period IS NULL THEN
        RAISE EXCEPTION 'period must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_period NOT IN ('hour', 'day', 'week', 'month') THEN
        RAISE EXCEPTION 'period "%" is not one of hour, day, week, month', p_period
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN p_period;
END
$$;
COMMENT ON FUNCTION quota._check_period(text) IS 'Internal: raises 22004 / 22023 unless p_period is a calendar period.';

CREATE FUNCTION quota.define_meter(p_key text, p_unit text DEFAULT 'units', p_description text DEFAULT '',
                                   p_actor text DEFAULT NULL)
RETURNS quota.meters
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row quota.meters;
BEGIN
    PERFORM quota._check_key('meter', p_key);
    INSERT INTO quota.meters AS m (key, unit, description)
    VALUES (p_key, COALESCE(p_unit, 'units'), COALESCE(p_description, ''))
    ON CONFLICT (key) DO UPDATE SET unit = EXCLUDED.unit, description = EXCLUDED.description
    RETURNING * INTO v_row;
    PERFORM quota._audit(p_actor, 'define_meter', p_key, pg_catalog.to_jsonb(v_row));
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.define_meter(text, text, text, text) IS
    'Declares a meter (or updates its unit and description). Only declared meters can be consumed.';

CREATE FUNCTION quota.create_plan(p_key text, p_name text, p_actor text DEFAULT NULL) RETURNS quota.plans
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row quota.plans;
BEGIN
    PERFORM quota._check_key('plan', p_key);
    IF p_name IS NULL OR pg_catalog.btrim(p_name) = '' OR pg_catalog.length(p_name) > 200 THEN
        RAISE EXCEPTION 'plan name must be 1 to 200 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO quota.plans AS p (key, name) VALUES (p_key, p_name)
    ON CONFLICT (key) DO UPDATE SET name = EXCLUDED.name
    RETURNING * INTO v_row;
    PERFORM quota._audit(p_actor, 'create_plan', p_key, pg_catalog.jsonb_build_object('name', p_name));
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.create_plan(text, text, text) IS
    'Creates a plan (or renames an existing one). It includes no meter until quota.set_plan_limit() adds one.';

CREATE FUNCTION quota.set_plan_limit(p_plan text, p_meter text, p_period text, p_limit bigint,
                                     p_actor text DEFAULT NULL)
RETURNS quota.plan_limits
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row quota.plan_limits;
BEGIN
    PERFORM quota._require_plan(p_plan);
    PERFORM quota._require_meter(p_meter);
    PERFORM quota._check_period(p_period);
    IF p_limit < 0 THEN
        RAISE EXCEPTION 'limit must be zero or more (NULL means unlimited), got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO quota.plan_limits AS l (plan, meter, period, "limit") VALUES (p_plan, p_meter, p_period, p_limit)
    ON CONFLICT (plan, meter, period) DO UPDATE SET "limit" = EXCLUDED."limit"
    RETURNING * INTO v_row;
    PERFORM quota._audit(p_actor, 'set_plan_limit', p_plan, pg_catalog.to_jsonb(v_row));
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.set_plan_limit(text, text, text, bigint, text) IS
    'Sets the plan''s limit for a meter and period (hour, day, week, month); p_limit NULL means unlimited. '
    'Takes effect on the very next consume.';

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

CREATE FUNCTION quota.remove_plan_limit(p_plan text, p_meter text, p_period text, p_actor text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_found boolean;
BEGIN
    PERFORM quota._require_plan(p_plan);
    PERFORM quota._require_meter(p_meter);
    PERFORM quota._check_period(p_period);
    DELETE FROM quota.plan_limits WHERE plan = p_plan AND meter = p_meter AND period = p_period;
    v_found := FOUND;
    IF v_found THEN
        PERFORM quota._audit(p_actor, 'remove_plan_limit', p_plan,
                             pg_catalog.jsonb_build_object('meter', p_meter, 'period', p_period));
    END IF;
    RETURN v_found;
END
$$;
COMMENT ON FUNCTION quota.remove_plan_limit(text, text, text, text) IS
    'Removes a plan''s limit for a meter and period; a plan without any limit on a meter no longer includes it.';

CREATE FUNCTION quota.assign_plan(p_user text, p_plan text, p_expires_at timestamptz DEFAULT NULL,
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
    -- Who and what kind of change only: any role can LISTEN, so the plan is re-read by whoever is allowed to.
    PERFORM pg_catalog.pg_notify('quota_events', pg_catalog.json_build_object(
        'user', p_user, 'kind', 'plan_changed')::jsonb::text);
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.assign_plan(text, text, timestamptz, text) IS
    'Puts p_user on p_plan, until p_expires_at (NULL: no end), creating the account if needed. Effective for '
    'the very next consume: nothing is cached. After expiry the user falls back to the default plan. Audited '
    'and announced on NOTIFY channel quota_events once the transaction commits.';

CREATE FUNCTION quota.set_timezone(p_user text, p_tz text, p_actor text DEFAULT NULL) RETURNS quota.accounts
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row quota.accounts;
BEGIN
    PERFORM quota._validate_user(p_user);
    IF p_tz IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = p_tz) THEN
        RAISE EXCEPTION 'timezone "%" is not an IANA timezone name', p_tz
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example Europe/Berlin or Asia/Kolkata.';
    END IF;
    PERFORM quota._ensure_account(p_user);
    UPDATE quota.accounts SET timezone = p_tz, updated_at = pg_catalog.now() WHERE user_id = p_user
    RETURNING * INTO v_row;
    PERFORM quota._audit(p_actor, 'set_timezone', p_user, pg_catalog.jsonb_build_object('timezone', p_tz));
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.set_timezone(text, text, text) IS
    'Sets the IANA timezone of the user''s calendar windows (NULL: quota.default_timezone). Windows are cut at '
    'local boundaries from the next call on; the current window in the new zone counts what the ledger holds '
    'for it (the counter rows are recounted when they move), so a change neither forgives nor double counts '
    'usage. Admin-only: a user who could choose the zone could pick the one whose window resets soonest.';

REVOKE ALL ON FUNCTION quota._audit(text, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota._require_plan(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota._require_meter(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.define_meter(text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.create_plan(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.set_plan_limit(text, text, text, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.remove_plan_limit(text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.assign_plan(text, text, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.set_timezone(text, text, text) FROM PUBLIC;

CREATE FUNCTION quota.set_limit(p_user text, p_meter text, p_period text, p_limit bigint, p_actor text DEFAULT NULL)
RETURNS quota.user_limits
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_row quota.user_limits;
BEGIN
    PERFORM quota._validate_user(p_user);
    PERFORM quota._require_meter(p_meter);
    PERFORM quota._check_period(p_period);
    IF p_limit < 0 THEN
        RAISE EXCEPTION 'limit must be zero or more (NULL removes the override), got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM quota._ensure_account(p_user);
    IF p_limit IS NULL THEN
        DELETE FROM quota.user_limits WHERE user_id = p_user AND meter = p_meter AND period = p_period;
    ELSE
        INSERT INTO quota.user_limits AS l (user_id, meter, period, "limit") VALUES (p_user, p_meter, p_period, p_limit)
        ON CONFLICT (user_id, meter, period) DO UPDATE SET "limit" = EXCLUDED."limit"
        RETURNING * INTO v_row;
    END IF;
    PERFORM quota._audit(p_actor, 'set_limit', p_user,
        pg_catalog.jsonb_build_object('meter', p_meter, 'period', p_period, 'limit', p_limit));
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.set_limit(text, text, text, bigint, text) IS
    'Per-user override of the limit for a meter and period (replaces the plan''s, or adds one); p_limit NULL '
    'removes the override. Returns the override row (NULL when removed). Audited.';

CREATE FUNCTION quota.reset_usage(p_user text, p_meter text DEFAULT NULL, p_actor text DEFAULT NULL) RETURNS bigint
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

REVOKE ALL ON FUNCTION quota.set_limit(text, text, text, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.set_plan_rollover(text, text, text, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.set_plan_burst(text, text, bigint, interval, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.reset_usage(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.credits(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.user_usage(text) FROM PUBLIC;
