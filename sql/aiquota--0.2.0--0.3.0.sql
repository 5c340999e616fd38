-- aiquota 0.2.0 -> 0.3.0: the lean engine.
-- * quota.commit gains p_overage (charge the whole actual amount even beyond the limits, for spend that already
--   happened upstream): the function is replaced, keeping its grants to quota_api.
-- * The engine's shared rules become SQL functions (sql/limits.sql in the extension's sources) that its
--   statements inline: _effective_plan, _effective_limits, _used_in_window, _carried_into, _open_holds.
-- * quota.consume's comment names the new SQLSTATEs (42710 idempotency key reused, 57P03 version mismatch).
-- No table changes: counters, ledger and every other row stay as they are.

DROP FUNCTION quota.commit(uuid, bigint, text);
CREATE FUNCTION quota.commit(p_reservation uuid, p_actual bigint, p_user text DEFAULT NULL,
                             p_overage boolean DEFAULT false)
RETURNS quota.settlement
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan
AS 'MODULE_PATHNAME', 'commit_wrapper';
COMMENT ON FUNCTION quota.commit(uuid, bigint, text, boolean) IS
    'Settles a reservation at the actual amount: less than the hold frees the rest; more is charged up to what '
    'the limits allow (capped = true says it was cut), or in full with p_overage (the spend already happened: '
    'the windows go over their limit and deny until they reset). The charge is one ledger row. With p_user, a '
    'reservation of another user is treated as unknown (callers acting for an end user always pass it). Errors: '
    'P0002 unknown reservation, 55000 already committed, released or expired, 22004/22023 bad p_actual, p_user '
    'or p_overage.';

REVOKE ALL ON FUNCTION quota.commit(uuid, bigint, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION quota.commit(uuid, bigint, text, boolean) TO quota_api;

COMMENT ON FUNCTION quota.consume(text, text, bigint, text, jsonb) IS
    'Consumes p_amount of p_meter for p_user from every limit of the user''s plan (and overrides), or from none. '
    'Atomic under row locks; never overspends. A user without an account gets the default plan. A repeat with '
    'the same p_idempotency_key returns the original decision (replayed = true) without charging again; a denied '
    'attempt stores no key. Denials change no usage and add no ledger row. Errors: 22004 NULL argument, 22023 '
    'bad input, 42710 idempotency key reused for a different request, P0002 default plan missing, 57P03 the '
    'database''s extension is at another version than the library (run ALTER EXTENSION aiquota UPDATE).';

-- sql/limits.sql of 0.3.0 as installed:

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

-- Issue 13, least privilege (all in 0.3.0):
-- * quota.assign_default_plan reads only the id column, of a built-in type, so no code of the users table's owner
--   ever runs with the extension owner's rights (to_jsonb(NEW) ran any cast to json the owner defined).
-- * NOTIFY payloads carry who and what kind of change only (any role can LISTEN): assign_plan and grant change.
-- * Payments: a new role quota_payments holds create_order, attach_order, find_order, record_payment and the new
--   revoke_payment (quota_api loses them); a pass never replaces a better permanent plan (create_order refuses,
--   record_payment keeps the plan: status kept); an order is paid once; refunds and lost disputes are revoked.
CREATE OR REPLACE FUNCTION quota.assign_default_plan() RETURNS trigger
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

CREATE OR REPLACE FUNCTION quota.grant(
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
        'user', p_user, 'meter', p_meter, 'kind', 'granted')::jsonb::text);
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.grant(text, text, bigint, timestamptz, text, text) IS
    'Gives p_user p_amount of p_meter as credits, spent only after the plan''s window allowance is used up, '
    'earliest expiry first (p_expires_at NULL: never expires, spent last). Creates the account if needed. '
    'Audited and announced on quota_events (kind granted). Errors: 22004, 22023 (user, undeclared meter, '
    'amount <= 0, expiry not in the future, source).';

ALTER TABLE quota.payments DROP CONSTRAINT payments_status_check;
ALTER TABLE quota.payments ADD CONSTRAINT payments_status_check
    CHECK (status IN ('applied', 'mismatch', 'kept', 'revoked'));
ALTER TABLE quota.payments ADD COLUMN revoked_at timestamptz;
ALTER TABLE quota.payments ADD COLUMN revoke_reason text;

CREATE FUNCTION quota._pass_would_demote(p_user text, p_product quota.products) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    -- A timed pass of one plan over a permanent, non-default plan of another: buying it would replace the
    -- better plan and, when it ends, leave the user on the default plan.
    SELECT p_product.duration IS NOT NULL AND EXISTS (
        SELECT 1 FROM quota.accounts a
        WHERE a.user_id = p_user AND a.plan_expires_at IS NULL
          AND a.plan <> p_product.plan AND a.plan IS DISTINCT FROM quota.default_plan())
$$;
COMMENT ON FUNCTION quota._pass_would_demote(text, quota.products) IS
    'Internal: whether a pass of p_product would replace p_user''s permanent, non-default plan.';

CREATE FUNCTION quota.revoke_payment(p_provider text, p_payment_id text, p_reason text, p_actor text DEFAULT NULL)
RETURNS TABLE (outcome text, user_id text, plan text, plan_expires_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_pay quota.payments;
    v_product quota.products;
    v_acct quota.accounts;
    v_now timestamptz := quota.now();
    v_expires timestamptz;
BEGIN
    PERFORM quota._check_provider(p_provider);
    IF p_payment_id IS NULL OR p_reason IS NULL THEN
        RAISE EXCEPTION 'payment id and reason must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF length(p_reason) NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION 'reason must be 1 to 100 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v_pay FROM quota.payments p WHERE p.provider = p_provider AND p.payment_id = p_payment_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no % payment %', p_provider, left(p_payment_id, 40) USING ERRCODE = 'no_data_found';
    END IF;
    IF v_pay.status <> 'applied' THEN
        -- Already revoked (a webhook delivered twice), or it never changed a plan: nothing to take back.
        IF v_pay.status <> 'revoked' THEN
            UPDATE quota.payments p SET revoked_at = v_now, revoke_reason = p_reason
            WHERE p.provider = p_provider AND p.payment_id = p_payment_id AND p.revoked_at IS NULL;
        END IF;
        SELECT * INTO v_acct FROM quota.accounts a WHERE a.user_id = v_pay.user_id;
        RETURN QUERY SELECT CASE WHEN v_pay.status = 'revoked' THEN 'duplicate' ELSE 'nothing_applied' END,
                            v_pay.user_id, v_acct.plan, v_acct.plan_expires_at;
        RETURN;
    END IF;
    SELECT * INTO v_product FROM quota.products WHERE key = v_pay.product;
    SELECT * INTO v_acct FROM quota.accounts a WHERE a.user_id = v_pay.user_id FOR UPDATE;
    -- The pass it bought is taken back: its duration comes off the user's current pass of that plan (a later
    -- purchase keeps its own time); what is left ends now when nothing remains, and a permanent plan it bought
    -- ends. A user who meanwhile moved to another plan keeps it.
    IF v_acct.plan = v_pay.plan THEN
        IF v_product.duration IS NULL OR v_acct.plan_expires_at IS NULL THEN
            v_expires := v_now;
        ELSE
            v_expires := v_acct.plan_expires_at - v_product.duration;
        END IF;
        IF v_expires <= v_now THEN
            PERFORM quota.assign_plan(v_pay.user_id, quota.default_plan(), NULL,
                                      COALESCE(p_actor, p_provider || ':' || p_payment_id || ':' || p_reason));
        ELSE
            PERFORM quota.assign_plan(v_pay.user_id, v_pay.plan, v_expires,
                                      COALESCE(p_actor, p_provider || ':' || p_payment_id || ':' || p_reason));
        END IF;
    END IF;
    UPDATE quota.payments p SET status = 'revoked', revoked_at = v_now, revoke_reason = p_reason
    WHERE p.provider = p_provider AND p.payment_id = p_payment_id;
    SELECT * INTO v_acct FROM quota.accounts a WHERE a.user_id = v_pay.user_id;
    RETURN QUERY SELECT 'revoked'::text, v_pay.user_id, v_acct.plan, v_acct.plan_expires_at;
END
$$;
COMMENT ON FUNCTION quota.revoke_payment(text, text, text, text) IS
    'Takes back what a payment bought, for a refund or a lost dispute (p_reason, e.g. refund, dispute_lost): the '
    'pass is shortened by the product''s duration, or ends now (the user falls back to the default plan) when '
    'nothing remains or it was permanent. Idempotent: outcome revoked, duplicate (already revoked) or '
    'nothing_applied (the payment never changed a plan). Audited. Errors: P0002 unknown payment; 22004/22023.';

CREATE OR REPLACE FUNCTION quota.create_order(p_provider text, p_user text, p_product text) RETURNS quota.orders
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
    -- Refused before anyone pays: a pass would replace a permanent plan the user already has (an enterprise or
    -- admin plan, say), and then end on the default plan.
    IF quota._pass_would_demote(p_user, v_product) THEN
        RAISE EXCEPTION 'user "%" is on a permanent plan that a % pass would replace', p_user, p_product
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Only the default plan, or a pass of the same plan, can be upgraded with a pass.';
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
    'Razorpay requires) and the product''s price. Errors: P0002 unknown or inactive product; 55000 the user is '
    'on a permanent plan (not the default) that a pass of this product would replace; 22004/22023.';

CREATE OR REPLACE FUNCTION quota.record_payment(
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
        -- An order is paid once: another payment of it must not extend the pass again (the replay of the payment
        -- that paid it is a duplicate, below).
        IF v_order.status = 'paid' AND v_order.payment_id IS DISTINCT FROM p_payment_id THEN
            RAISE EXCEPTION 'order % is already paid by payment %; payment % is not applied', p_order,
                v_order.payment_id, p_payment_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Refund the second payment with the provider.';
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
    -- A pass never replaces a permanent plan the user already has (create_order refuses that; a payment without
    -- an order, or one whose order predates the plan, is recorded and changes nothing).
    IF quota._pass_would_demote(p_user, v_product) THEN
        UPDATE quota.payments p SET status = 'kept' WHERE p.provider = p_provider AND p.payment_id = p_payment_id;
        RAISE WARNING 'payment %/% for % is recorded, but user "%" keeps a permanent plan that the pass would replace',
            p_provider, p_payment_id, p_product, p_user;
        RETURN QUERY SELECT 'kept'::text, 'kept'::text, p_user, v_acct.plan, v_acct.plan_expires_at;
        RETURN;
    END IF;
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
    '(already recorded; nothing changes), mismatch (amount or currency differ from the price: the order''s '
    'when p_order is given, else the product''s; recorded, no plan change) or kept (the user is on a permanent '
    'plan a pass would replace; recorded, no plan change). With p_order, the order must be for the same '
    'provider, user and product, and becomes paid; 55000 when it is already paid by another payment.';

REVOKE ALL ON FUNCTION quota._pass_would_demote(text, quota.products) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.revoke_payment(text, text, text, text) FROM PUBLIC;

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'quota_payments') THEN
        CREATE ROLE quota_payments NOLOGIN;
    END IF;
END
$roles$;
-- (re-granted to quota_reader after quota_payments, so the schema's ACL lists them as a fresh install does)
REVOKE USAGE ON SCHEMA quota FROM quota_reader;
GRANT USAGE ON SCHEMA quota TO quota_payments, quota_reader;
REVOKE EXECUTE ON FUNCTION quota.create_order(text, text, text) FROM quota_api;
REVOKE EXECUTE ON FUNCTION quota.attach_order(text, text) FROM quota_api;
REVOKE EXECUTE ON FUNCTION quota.find_order(text, text, text) FROM quota_api;
REVOKE EXECUTE ON FUNCTION quota.record_payment(text, text, text, text, bigint, text, jsonb, text) FROM quota_api;
GRANT EXECUTE ON FUNCTION quota.create_order(text, text, text) TO quota_payments;
GRANT EXECUTE ON FUNCTION quota.attach_order(text, text) TO quota_payments;
GRANT EXECUTE ON FUNCTION quota.find_order(text, text, text) TO quota_payments;
GRANT EXECUTE ON FUNCTION quota.record_payment(text, text, text, text, bigint, text, jsonb, text) TO quota_payments;
GRANT EXECUTE ON FUNCTION quota.revoke_payment(text, text, text, text) TO quota_payments;

-- quota.set_timezone's comment said the current window starts afresh; it is recounted from the ledger.
COMMENT ON FUNCTION quota.set_timezone(text, text, text) IS
    'Sets the IANA timezone of the user''s calendar windows (NULL: quota.default_timezone). Windows are cut at '
    'local boundaries from the next call on; the current window in the new zone counts what the ledger holds '
    'for it (the counter rows are recounted when they move), so a change neither forgives nor double counts '
    'usage. Admin-only: a user who could choose the zone could pick the one whose window resets soonest.';

-- Retention: reservations are purged like idempotency keys (quota.max_metadata_bytes bounds metadata; a GUC,
-- nothing to update).
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

REVOKE ALL ON FUNCTION quota.purge_reservations(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION quota.purge_reservations(interval) TO quota_admin;
