-- The login role of the HTTP API (cluster-wide, so once per cluster; idempotent and safe to run again).
-- NOINHERIT: a session has no quota privileges until it switches role. The API runs every pooled
-- connection as quota_api (SET ROLE once per connection) and raises to quota_admin only inside an admin
-- route's transaction (SET LOCAL ROLE), so a bug in a user route cannot call an admin function. Payment
-- routes likewise raise to quota_payments (orders and payments) for their transaction only; that role is
-- granted when the installed extension has it, so the script works on older versions too.
-- No password: the development cluster trusts loopback; production sets one (docs/http.md).
DO $$
BEGIN
  BEGIN
    CREATE ROLE aiquota_api LOGIN NOINHERIT;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
  END;
  ALTER ROLE aiquota_api LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
  GRANT quota_api, quota_admin TO aiquota_api;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'quota_payments') THEN
    GRANT quota_payments TO aiquota_api;
  END IF;
END
$$;
