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
