-- The engine's shared rules as SQL: which plan applies to a user, which limits apply to a meter, and how a counter
-- row's usage and carried allowance are recounted from the ledger. Defined once here and used by every engine
-- statement (extension/src/statements/*.sql) and so by consume, reserve, commit, check and status alike.
--
-- The two table functions are LANGUAGE sql STABLE, not STRICT, without SET clauses and without SECURITY DEFINER,
-- so PostgreSQL inlines them into the statements that call them (they cost what their body costs, no function
-- call). They read tables directly: inside the engine they run with the rights of the SECURITY DEFINER function
-- that prepared the statement. EXECUTE is revoked from PUBLIC: called directly they are only as good as the
-- caller's own table privileges anyway, and they are internal.

CREATE FUNCTION quota._effective_plan(p_user text, p_now timestamptz, p_default_plan text, p_default_tz text)
RETURNS TABLE (plan text, tz text, has_account boolean)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- Always one row: a user without an account (or whose plan expired) is on the default plan.
    SELECT CASE WHEN a.user_id IS NULL OR a.plan_expires_at <= p_now THEN p_default_plan ELSE a.plan END,
           COALESCE(a.timezone, p_default_tz),
           a.user_id IS NOT NULL
    FROM (SELECT 1) AS one
    LEFT JOIN quota.accounts a ON a.user_id = p_user
$$;
COMMENT ON FUNCTION quota._effective_plan(text, timestamptz, text, text) IS
    'Internal: the plan and timezone that apply to p_user at p_now (the default plan when the user has no '
    'account or the plan expired), and whether the account exists. Always one row.';

CREATE FUNCTION quota._effective_limits(p_user text, p_meter text, p_plan text, p_tz text, p_now timestamptz)
RETURNS TABLE (meter text, period text, "limit" bigint, rollover_cap bigint, window_start timestamptz,
               window_end timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- Written with index lookups only (no FULL JOIN): a hash join builds its table on every execution, which
    -- cost more than the whole rest of a consume.
    SELECT l.meter, l.period, l."limit", l.rollover_cap, w.ws, quota.window_end(l.period, w.ws, p_tz)
    FROM (
        -- The plan's limit rows for the meter (every meter when p_meter is NULL), each replaced by the user's
        -- override of the same period ...
        SELECT pl.meter, pl.period, CASE WHEN ul.period IS NULL THEN pl."limit" ELSE ul."limit" END AS "limit",
               pl.rollover_cap
        FROM quota.plan_limits pl
        LEFT JOIN quota.user_limits ul ON ul.user_id = p_user AND ul.meter = pl.meter AND ul.period = pl.period
        WHERE pl.plan = p_plan AND (p_meter IS NULL OR pl.meter = p_meter)
        UNION ALL
        -- ... and the overrides of periods the plan does not limit.
        SELECT ul.meter, ul.period, ul."limit", NULL
        FROM quota.user_limits ul
        WHERE ul.user_id = p_user AND (p_meter IS NULL OR ul.meter = p_meter)
          AND NOT EXISTS (SELECT 1 FROM quota.plan_limits pl
                          WHERE pl.plan = p_plan AND pl.meter = ul.meter AND pl.period = ul.period)
    ) l
    -- OFFSET 0 keeps the window start a column: passed as an expression, window_end (which uses its argument twice)
    -- would not be inlined and would run as a separate SQL function call, costing more than the whole statement.
    CROSS JOIN LATERAL (SELECT quota.window_start(l.period, p_now, p_tz) AS ws OFFSET 0) w
$$;
COMMENT ON FUNCTION quota._effective_limits(text, text, text, text, timestamptz) IS
    'Internal: the limits of p_plan on p_meter (all meters when NULL) as overridden for p_user, one row per '
    'period, with the window containing p_now in timezone p_tz. A NULL limit is unlimited.';

CREATE FUNCTION quota._used_in_window(p_user text, p_meter text, p_period text, p_start timestamptz,
                                      p_end timestamptz)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- Usage rows, and the admin resets of this period (negative rows that zeroed a window).
    SELECT COALESCE(sum(g.amount), 0)::bigint FROM quota.ledger g
    WHERE g.user_id = p_user AND g.meter = p_meter AND g.created_at >= p_start AND g.created_at < p_end
      AND (g.reset_period IS NULL OR g.reset_period = p_period)
$$;
COMMENT ON FUNCTION quota._used_in_window(text, text, text, timestamptz, timestamptz) IS
    'Internal: what the ledger says p_user spent of p_meter in the p_period window [p_start, p_end). Used only '
    'when a counter row moves to a new window (or is missing), never on the hot path.';

CREATE FUNCTION quota._carried_into(p_user text, p_meter text, p_period text, p_start timestamptz, p_tz text,
                                    p_limit bigint, p_cap bigint, p_row_start timestamptz, p_row_used bigint,
                                    p_row_carry bigint)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- Rollover: the allowance carried into the window starting at p_start from the one before, up to p_cap
    -- (NULL: no rollover). A row already in the window keeps its carry; a row still in the window before
    -- carries what that window left unused (its own carry included); a row further back is recounted from the
    -- ledger; a new row ('-infinity') carries nothing.
    SELECT CASE
        WHEN p_row_start = p_start THEN p_row_carry
        WHEN p_cap IS NULL OR p_limit IS NULL OR p_row_start = '-infinity' THEN 0
        ELSE LEAST(p_cap, GREATEST(0, p_limit - CASE
            WHEN p_row_start = prev.start THEN p_row_used - p_row_carry
            ELSE quota._used_in_window(p_user, p_meter, p_period, prev.start, p_start) END))
    END
    FROM (SELECT quota.window_start(p_period, p_start - interval '1 microsecond', p_tz) AS start) AS prev
$$;
COMMENT ON FUNCTION quota._carried_into(text, text, text, timestamptz, text, bigint, bigint, timestamptz, bigint,
                                        bigint) IS
    'Internal: the allowance a counter row (p_row_*) carries into the window starting at p_start under '
    'rollover cap p_cap. Used only when a row moves to a new window, and by check/status for a row not moved yet.';

CREATE FUNCTION quota._open_holds(p_user text, p_meter text, p_now timestamptz)
RETURNS TABLE (total bigint, next_expiry timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT COALESCE(sum(r.amount), 0)::bigint, min(r.expires_at)
    FROM quota.reservations r
    WHERE r.user_id = p_user AND r.meter = p_meter AND r.state = 'held' AND r.expires_at > p_now
$$;
COMMENT ON FUNCTION quota._open_holds(text, text, timestamptz) IS
    'Internal: the amount held by p_user''s open reservations of p_meter at p_now and the earliest expiry.';

REVOKE ALL ON FUNCTION quota._effective_plan(text, timestamptz, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota._effective_limits(text, text, text, text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota._used_in_window(text, text, text, timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota._carried_into(text, text, text, timestamptz, text, bigint, bigint, timestamptz, bigint,
                                           bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota._open_holds(text, text, timestamptz) FROM PUBLIC;
