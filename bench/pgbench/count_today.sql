-- The seed design "Available = DailyLimit - COUNT(jobs WHERE created_at > today_midnight)": count the user's
-- ledger rows of today, and record the use when under the limit (scenario 3, same data as consume). It is not
-- atomic (two concurrent requests both see room): it is here for its cost, not as a correct alternative.
\set uid random(1, :users)
BEGIN;
SELECT count(*) AS n FROM quota.ledger
 WHERE user_id = 'u' || :uid AND created_at >= :day_start::timestamptz AND created_at < :day_end::timestamptz \gset
\if :n < 1000000000
INSERT INTO quota.ledger (user_id, meter, amount, created_at) VALUES ('u' || :uid, 'ai_requests', 1, :now::timestamptz);
\endif
COMMIT;
