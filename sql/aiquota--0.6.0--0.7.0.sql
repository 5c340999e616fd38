-- aiquota 0.6.0 -> 0.7.0
-- * The value checks of quota.reservations (amount > 0, the state) and quota.idempotency_keys (the key's length)
--   move from CHECK constraints to domains, as 0.4.0 did for quota.counters and quota.ledger: PostgreSQL re-reads
--   a table's CHECK constraints from their stored text (parse and plan) in every statement that writes the
--   table, and reserve, commit and every keyed consume write these; a domain's check is kept ready in the type
--   cache. Same rules, same SQLSTATE (23514). Measured side by side (bench/cpu_ab.py, release build): a keyed
--   consume's backend CPU 0.94-0.95 of 0.6.0's, a reserve/commit pair's ~0.96.
-- The domains get their checks only after the columns use them: a column changed to a domain that already has a
-- check is rewritten, while adding the check to the domain afterwards only verifies the rows (a scan).

CREATE DOMAIN quota.positive_amount AS bigint;
COMMENT ON DOMAIN quota.positive_amount IS 'An amount of at least 1 (what a reservation holds).';
CREATE DOMAIN quota.reservation_state AS text;
COMMENT ON DOMAIN quota.reservation_state IS 'A reservation''s state: held (open), committed or released.';
CREATE DOMAIN quota.key_text AS text;
COMMENT ON DOMAIN quota.key_text IS 'An idempotency key as stored: 1 to 300 characters (255 and the ''reserve:'' prefix).';

ALTER TABLE quota.reservations
    DROP CONSTRAINT reservations_amount_check,
    DROP CONSTRAINT reservations_state_check,
    ALTER COLUMN state DROP DEFAULT,
    ALTER COLUMN amount TYPE quota.positive_amount,
    ALTER COLUMN state TYPE quota.reservation_state,
    ALTER COLUMN state SET DEFAULT 'held';
ALTER TABLE quota.idempotency_keys
    DROP CONSTRAINT idempotency_keys_key_check,
    ALTER COLUMN key TYPE quota.key_text;

ALTER DOMAIN quota.positive_amount ADD CONSTRAINT positive_amount_check CHECK (VALUE > 0);
ALTER DOMAIN quota.reservation_state ADD CONSTRAINT reservation_state_check
    CHECK (VALUE IN ('held', 'committed', 'released'));
ALTER DOMAIN quota.key_text ADD CONSTRAINT key_text_check CHECK (length(VALUE) BETWEEN 1 AND 300);
