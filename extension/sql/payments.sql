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
    -- applied: the plan was assigned; mismatch: amount or currency differed from the product, nothing assigned;
    -- kept: the user is on a better permanent plan, which a pass must not replace, so nothing was assigned;
    -- revoked: refunded or lost in a dispute after it was applied (quota.revoke_payment took the pass back).
    status          text NOT NULL CHECK (status IN ('applied', 'mismatch', 'kept', 'revoked')),
    order_ref       text,
    plan            text,
    plan_expires_at timestamptz,
    raw             jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoke_reason   text,
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

REVOKE ALL ON FUNCTION quota._check_provider(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.define_product(text, text, interval, bigint, text, boolean, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.create_order(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.attach_order(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.find_order(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.record_payment(text, text, text, text, bigint, text, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota._pass_would_demote(text, quota.products) FROM PUBLIC;
REVOKE ALL ON FUNCTION quota.revoke_payment(text, text, text, text) FROM PUBLIC;
