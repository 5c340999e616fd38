-- Test setup only, never part of the extension: until the extension that has the `quota_payments` role and
-- `quota.revoke_payment` is merged, the test template gets a stand-in for both, so the API's payment code
-- (which runs every payment call as quota_payments) can be tested against this branch's extension. Each
-- part does nothing when the extension already provides it.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'quota_payments') THEN
    CREATE ROLE quota_payments NOLOGIN;
    -- The old extension grants the order and payment functions to quota_api; inherit them.
    GRANT quota_api TO quota_payments;
  END IF;
  GRANT quota_payments TO aiquota_api;
  IF to_regprocedure('quota.revoke_payment(text, text, text, text)') IS NULL THEN
    -- The contract: end the pass the payment bought (idempotent), P0002 for an unknown payment.
    EXECUTE $f$
      CREATE FUNCTION quota.revoke_payment(p_provider text, p_payment_id text, p_reason text,
                                           p_actor text DEFAULT NULL)
      RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $b$
      DECLARE
        p quota.payments;
      BEGIN
        SELECT * INTO p FROM quota.payments WHERE provider = p_provider AND payment_id = p_payment_id;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'no payment % of %', p_payment_id, p_provider USING ERRCODE = 'P0002';
        END IF;
        UPDATE quota.accounts SET plan_expires_at = now(), updated_at = now()
         WHERE user_id = p.user_id AND plan = p.plan AND plan_expires_at > now();
      END
      $b$
    $f$;
    REVOKE ALL ON FUNCTION quota.revoke_payment(text, text, text, text) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION quota.revoke_payment(text, text, text, text) TO quota_payments;
  END IF;
END
$$;
