-- Payments: products, orders and record_payment (applied once, duplicates and mismatches change no plan).
BEGIN;
SET LOCAL quota.now = '2026-03-10 12:00:00+00';
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
SET LOCAL IntervalStyle = 'postgres';

SELECT key, plan, duration, amount, currency, active FROM quota.products ORDER BY key;
SELECT key, plan, duration, amount, currency FROM quota.define_product('reg_pro_day', 'pro', '1 day', 500, 'USD');

SELECT * FROM quota.record_payment('razorpay', 'pay_reg_1', 'reg-rita', 'pro_week', 49900, 'INR');
SELECT * FROM quota.record_payment('razorpay', 'pay_reg_1', 'reg-rita', 'pro_week', 49900, 'INR');
SELECT * FROM quota.record_payment('stripe', 'pi_reg_2', 'reg-rita', 'pro_week', 100, 'INR');
-- A second pass of the same plan extends the running one.
SELECT * FROM quota.record_payment('stripe', 'pi_reg_3', 'reg-rita', 'pro_week', 49900, 'INR');

-- Orders: a reference for the provider, an attached provider id, found by either.
SELECT provider, user_id, product, amount, currency, status, reference_id ~ '^aq_[0-9a-f]{32}$' AS ref_ok
FROM quota.create_order('razorpay', 'reg-sam', 'pro_month') \gset o_
SELECT :'o_provider', :'o_user_id', :'o_status', :'o_ref_ok';
SELECT reference_id AS ref FROM quota.orders WHERE user_id = 'reg-sam' \gset
SELECT provider_ref FROM quota.attach_order(:'ref', 'plink_reg_1');
SELECT user_id, product, status FROM quota.find_order('razorpay', NULL, 'plink_reg_1');
SELECT outcome, status, user_id, plan FROM quota.record_payment('razorpay', 'pay_reg_4', 'reg-sam', 'pro_month', 1900, 'USD', '{}', :'ref');
SELECT status FROM quota.find_order('razorpay', :'ref');
ROLLBACK;
