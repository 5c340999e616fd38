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
        'user', p_user, 'meter', p_meter, 'kind', 'granted')::jsonb::text);
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION quota.grant(text, text, bigint, timestamptz, text, text) IS
    'Gives p_user p_amount of p_meter as credits, spent only after the plan''s window allowance is used up, '
    'earliest expiry first (p_expires_at NULL: never expires, spent last). Creates the account if needed. '
    'Audited and announced on quota_events (kind granted). Errors: 22004, 22023 (user, undeclared meter, '
    'amount <= 0, expiry not in the future, source).';

REVOKE ALL ON FUNCTION quota.grant(text, text, bigint, timestamptz, text, text) FROM PUBLIC;
