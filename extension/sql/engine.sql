-- The engine's SQL surface: functions implemented in Rust (LANGUAGE c) and the plain-SQL ones beside them.
--
-- Every function that reads or writes quota tables is SECURITY DEFINER with its search_path pinned (everything
-- inside is schema-qualified), and EXECUTE is revoked from PUBLIC in this same script: a caller needs an explicit
-- GRANT (superusers and the extension owner have it already). The SQL and PL/pgSQL functions pin it with
-- SET search_path = pg_catalog, pg_temp. The engine's C functions below pin it themselves, to pg_catalog alone,
-- for the whole call (an override search path, extension/src/search_path.rs): a SET clause is applied as a
-- configuration change on every call, and that cost about a twentieth of a consume.
-- check and status are PARALLEL RESTRICTED: the engine prepares its statements (some of them writes) on first use
-- in a backend, which a parallel worker must not do.
-- The engine's C functions have no SET clause at all (each one is a configuration change per call). Their
-- statements are prepared once per backend and PostgreSQL chooses between a generic and a custom plan as usual:
-- each is small and index-driven, so the generic plan wins after the first five calls (0.5.0 still forced it, for
-- the 14-CTE statement of 0.3.0, whose generic plan had looked costlier than re-planning it on every call).

CREATE FUNCTION quota.consume(
    p_user text,
    p_meter text DEFAULT 'ai_requests',
    p_amount bigint DEFAULT 1,
    p_idempotency_key text DEFAULT NULL,
    p_metadata jsonb DEFAULT NULL
) RETURNS quota.decision
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'consume_wrapper';
COMMENT ON FUNCTION quota.consume(text, text, bigint, text, jsonb) IS
    'Consumes p_amount of p_meter for p_user from every limit of the user''s plan (and overrides), or from none. '
    'Atomic under row locks; never overspends. A user without an account gets the default plan. A repeat with '
    'the same p_idempotency_key returns the original decision (replayed = true) without charging again; a denied '
    'attempt stores no key. Denials change no usage and add no ledger row. Errors: 22004 NULL argument, 22023 '
    'bad input, 42710 idempotency key reused for a different request, P0002 default plan missing, 57P03 the '
    'database''s extension is at another version than the library (run ALTER EXTENSION aiquota UPDATE).';

CREATE FUNCTION quota.check(p_user text, p_meter text DEFAULT 'ai_requests', p_amount bigint DEFAULT 1)
RETURNS quota.decision
LANGUAGE c STABLE PARALLEL RESTRICTED SECURITY DEFINER
AS 'MODULE_PATHNAME', 'check_wrapper';
COMMENT ON FUNCTION quota.check(text, text, bigint) IS
    'The decision quota.consume would make now for p_amount, without consuming, counting a denial or creating '
    'an account.';

CREATE FUNCTION quota.status(p_user text)
RETURNS TABLE (
    meter text, period text, used bigint, "limit" bigint, remaining bigint, percent double precision,
    status text, resets_at timestamptz, plan text, held bigint
)
LANGUAGE c STABLE PARALLEL RESTRICTED SECURITY DEFINER
AS 'MODULE_PATHNAME', 'status_wrapper';
COMMENT ON FUNCTION quota.status(text) IS
    'One row per meter and window of the user''s effective plan: used, limit (NULL = unlimited), remaining (net '
    'of held), percent and status (of used + held), resets_at, plan, and held (open reservations).';

CREATE FUNCTION quota.reserve(
    p_user text,
    p_meter text,
    p_amount bigint,
    p_ttl interval DEFAULT '5 minutes',
    p_idempotency_key text DEFAULT NULL
) RETURNS quota.reservation
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'reserve_wrapper';
COMMENT ON FUNCTION quota.reserve(text, text, bigint, interval, text) IS
    'Holds p_amount of p_meter for p_ttl (at most 24 hours): all or nothing, under the same locks and limits as '
    'consume, the hold counting against every limit like usage. Returns the decision plus reservation_id and '
    'expires_at when allowed. Settle with quota.commit or quota.release; a hold past its expiry stops counting '
    'by itself. A repeat with the same p_idempotency_key returns the same reservation.';

CREATE FUNCTION quota.commit(p_reservation uuid, p_actual bigint, p_user text DEFAULT NULL,
                             p_overage boolean DEFAULT false)
RETURNS quota.settlement
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'commit_wrapper';
COMMENT ON FUNCTION quota.commit(uuid, bigint, text, boolean) IS
    'Settles a reservation at the actual amount: less than the hold frees the rest; more is charged up to what '
    'the limits allow (capped = true says it was cut), or in full with p_overage (the spend already happened: '
    'the windows go over their limit and deny until they reset). The charge is one ledger row. With p_user, a '
    'reservation of another user is treated as unknown (callers acting for an end user always pass it). Errors: '
    'P0002 unknown reservation, 55000 already committed, released or expired, 22004/22023 bad p_actual, p_user '
    'or p_overage.';

CREATE FUNCTION quota.release(p_reservation uuid, p_user text DEFAULT NULL) RETURNS quota.settlement
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'release_wrapper';
COMMENT ON FUNCTION quota.release(uuid, text) IS
    'Frees a reservation''s hold entirely (the AI call failed: nothing is charged). Errors as for quota.commit.';

CREATE FUNCTION quota._ensure_account(p_user text) RETURNS boolean
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
AS 'MODULE_PATHNAME', 'ensure_account_wrapper';
COMMENT ON FUNCTION quota._ensure_account(text) IS
    'Internal: gives p_user the default plan unless it has an account; true when it created one.';

CREATE FUNCTION quota._validate_user(p_user text) RETURNS text
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'validate_user_wrapper';
COMMENT ON FUNCTION quota._validate_user(text) IS
    'Internal: returns p_user, or raises 22004 (NULL) / 22023 (empty, over 255 characters) like consume does.';

CREATE FUNCTION quota.now() RETURNS timestamptz
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'quota_now_wrapper';
COMMENT ON FUNCTION quota.now() IS
    'The clock aiquota uses: the transaction start time, or the quota.now setting when a superuser set it.';

CREATE FUNCTION quota.default_plan() RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'default_plan_wrapper';
COMMENT ON FUNCTION quota.default_plan() IS 'The plan new users get (setting quota.default_plan).';

CREATE FUNCTION quota.default_timezone() RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'default_timezone_wrapper';
COMMENT ON FUNCTION quota.default_timezone() IS
    'The timezone of accounts without one (setting quota.default_timezone).';

-- Gives every new row of any users table the default plan:
--   CREATE TRIGGER give_quota AFTER INSERT ON auth.users
--       FOR EACH ROW EXECUTE FUNCTION quota.assign_default_plan('id');
-- It runs with the extension owner's rights, on a table someone else owns, so it must never run that someone's
-- code: it reads the one id column, and only when that column has a built-in type whose conversion to text is
-- PostgreSQL's own (a column of a user-defined type could carry a cast or output function of the table owner's:
-- reading the whole row, as to_jsonb(NEW) did, would run it as the extension owner). The column name comes
-- from the trigger's definition, is checked against the catalogue and quoted with %I.
CREATE FUNCTION quota.assign_default_plan() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_column text := COALESCE(TG_ARGV[0], 'id');
    v_type oid;
    v_id text;
BEGIN
    -- A BEFORE trigger returning NULL would silently drop the user's row, so only AFTER is accepted.
    IF TG_OP <> 'INSERT' OR TG_LEVEL <> 'ROW' OR TG_WHEN <> 'AFTER' THEN
        RAISE EXCEPTION 'quota.assign_default_plan() must be an AFTER INSERT ... FOR EACH ROW trigger'
            USING ERRCODE = 'feature_not_supported';
    END IF;
    SELECT a.atttypid INTO v_type FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = TG_RELID AND a.attname = v_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table %.% has no column "%"', TG_TABLE_SCHEMA, TG_TABLE_NAME, v_column
            USING ERRCODE = 'undefined_column',
                  HINT = 'Pass the id column''s name: EXECUTE FUNCTION quota.assign_default_plan(''id'').';
    END IF;
    IF v_type NOT IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'uuid'::regtype, 'int2'::regtype,
                      'int4'::regtype, 'int8'::regtype, 'name'::regtype) THEN
        RAISE EXCEPTION 'column %.%.% has type %, which quota.assign_default_plan() does not read',
            TG_TABLE_SCHEMA, TG_TABLE_NAME, v_column, v_type::regtype
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'The id column must be text, varchar, char, uuid, smallint, integer, bigint or name.';
    END IF;
    EXECUTE pg_catalog.format('SELECT ($1).%I::text', v_column) INTO v_id USING NEW;
    PERFORM quota._ensure_account(v_id);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION quota.assign_default_plan() IS
    'Trigger function for any users table: AFTER INSERT ... FOR EACH ROW EXECUTE FUNCTION '
    'quota.assign_default_plan(''id_column''). Gives the new user the default plan (once; an existing account '
    'is left alone). Reads only that column, which must have a built-in type (text, varchar, char, uuid, '
    'smallint, integer, bigint, name; 42804 otherwise), so no code of the table''s owner ever runs with the '
    'extension owner''s rights.';

CREATE FUNCTION quota.verify()
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

-- A counter row that goes (its account or meter deleted, or the table truncated) first moves the part of the
-- daily rollup it carries into quota.daily_rollup, which outlives accounts like the ledger does.
CREATE FUNCTION quota._keep_carried_rollup() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        INSERT INTO quota.daily_rollup AS d (user_id, day, meter, amount, requests, last_at)
        VALUES (OLD.user_id, OLD.rollup_day, OLD.meter, OLD.rollup_amount, OLD.rollup_requests, OLD.rollup_last_at)
        ON CONFLICT (user_id, day, meter) DO UPDATE
        SET amount = d.amount + EXCLUDED.amount, requests = d.requests + EXCLUDED.requests,
            last_at = GREATEST(d.last_at, EXCLUDED.last_at);
        RETURN OLD;
    END IF;
    INSERT INTO quota.daily_rollup AS d (user_id, day, meter, amount, requests, last_at)
    SELECT c.user_id, c.rollup_day, c.meter, sum(c.rollup_amount), sum(c.rollup_requests), max(c.rollup_last_at)
    FROM quota.counters c WHERE c.rollup_requests > 0
    GROUP BY c.user_id, c.rollup_day, c.meter
    ON CONFLICT (user_id, day, meter) DO UPDATE
    SET amount = d.amount + EXCLUDED.amount, requests = d.requests + EXCLUDED.requests,
        last_at = GREATEST(d.last_at, EXCLUDED.last_at);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION quota._keep_carried_rollup() IS
    'Internal trigger: a deleted or truncated counter row''s carried daily rollup moves to quota.daily_rollup.';
REVOKE ALL ON FUNCTION quota._keep_carried_rollup() FROM PUBLIC;
CREATE TRIGGER keep_carried_rollup BEFORE DELETE ON quota.counters
    FOR EACH ROW WHEN (OLD.rollup_requests > 0) EXECUTE FUNCTION quota._keep_carried_rollup();
CREATE TRIGGER keep_carried_rollup_on_truncate BEFORE TRUNCATE ON quota.counters
    FOR EACH STATEMENT EXECUTE FUNCTION quota._keep_carried_rollup();

CREATE FUNCTION quota.purge_idempotency_keys(p_older_than interval DEFAULT '7 days') RETURNS bigint
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

CREATE FUNCTION quota.purge_reservations(p_older_than interval DEFAULT '30 days') RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_count bigint;
BEGIN
    IF p_older_than IS NULL THEN
        RAISE EXCEPTION 'p_older_than must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_older_than < interval '24 hours' THEN
        RAISE EXCEPTION 'reservations must be kept at least 24 hours, got %', p_older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Settled ones (their charge is in the ledger) and holds that expired long ago; never an open hold.
    DELETE FROM quota.reservations r
    WHERE (r.state <> 'held' AND r.settled_at < quota.now() - p_older_than)
       OR (r.state = 'held' AND r.expires_at < quota.now() - p_older_than);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION quota.purge_reservations(interval) IS
    'Deletes reservations settled, or expired, more than p_older_than ago (at least 24 hours); returns how '
    'many. Open holds are never deleted. The API runs it with purge_idempotency_keys every '
    'AIQUOTA_PURGE_INTERVAL_S; without the API, run both from cron or pg_cron.';

REVOKE ALL ON FUNCTION quota.consume(text, text, bigint, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.check(text, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.status(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.reserve(text, text, bigint, interval, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.commit(uuid, bigint, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.release(uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota._ensure_account(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.assign_default_plan() FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.verify() FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.purge_idempotency_keys(interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.purge_reservations(interval) FROM PUBLIC;
