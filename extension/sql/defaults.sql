-- Installed defaults: two meters and four plans. Admins change them with SQL or the admin functions.
INSERT INTO quota.meters (key, unit, description) VALUES
    ('ai_requests', 'requests', 'Calls to an AI model'),
    ('ai_tokens', 'tokens', 'AI tokens (prompt and completion)');

INSERT INTO quota.plans (key, name) VALUES
    ('free', 'Free'), ('pro', 'Pro'), ('enterprise', 'Enterprise'), ('admin', 'Admin');

INSERT INTO quota.plan_limits (plan, meter, period, "limit") VALUES
    ('free', 'ai_requests', 'day', 10),
    ('free', 'ai_tokens', 'month', 10000),
    ('pro', 'ai_requests', 'day', 50),
    ('pro', 'ai_tokens', 'month', 1000000),
    ('enterprise', 'ai_requests', 'day', 1000),
    ('enterprise', 'ai_tokens', 'month', 50000000),
    ('admin', 'ai_requests', 'day', NULL),
    ('admin', 'ai_tokens', 'month', NULL);

INSERT INTO quota.products (key, plan, duration, amount, currency) VALUES
    ('pro_week', 'pro', interval '7 days', 49900, 'INR'),
    ('pro_month', 'pro', interval '30 days', 1900, 'USD');

-- pg_dump keeps the data of extension tables only when they are marked. Per-user tables are dumped whole; the
-- catalogue tables are dumped except the rows installed above (CREATE EXTENSION recreates those on restore).
SELECT pg_catalog.pg_extension_config_dump('quota.accounts', '');
SELECT pg_catalog.pg_extension_config_dump('quota.user_limits', '');
SELECT pg_catalog.pg_extension_config_dump('quota.counters', '');
SELECT pg_catalog.pg_extension_config_dump('quota.ledger', '');
SELECT pg_catalog.pg_extension_config_dump('quota.ledger_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('quota.idempotency_keys', '');
SELECT pg_catalog.pg_extension_config_dump('quota.reservations', '');
SELECT pg_catalog.pg_extension_config_dump('quota.daily_rollup', '');
SELECT pg_catalog.pg_extension_config_dump('quota.daily_totals', '');
SELECT pg_catalog.pg_extension_config_dump('quota.grants', '');
SELECT pg_catalog.pg_extension_config_dump('quota.orders', '');
SELECT pg_catalog.pg_extension_config_dump('quota.payments', '');
SELECT pg_catalog.pg_extension_config_dump('quota.products', $$WHERE key NOT IN ('pro_week', 'pro_month')$$);
SELECT pg_catalog.pg_extension_config_dump('quota.bursts', '');
SELECT pg_catalog.pg_extension_config_dump('quota.plan_bursts', '');
SELECT pg_catalog.pg_extension_config_dump('quota.grants_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('quota.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('quota.audit_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('quota.meters', $$WHERE key NOT IN ('ai_requests', 'ai_tokens')$$);
SELECT pg_catalog.pg_extension_config_dump('quota.plans', $$WHERE key NOT IN ('free', 'pro', 'enterprise', 'admin')$$);
SELECT pg_catalog.pg_extension_config_dump('quota.plan_limits',
    $$WHERE plan NOT IN ('free', 'pro', 'enterprise', 'admin')$$);
