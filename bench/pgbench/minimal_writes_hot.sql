-- The hot-user version of minimal_writes.sql (scenario 2): the same two writes one allowed consume makes (the
-- counter update with the limit check and the day's rollup carried on the row, the ledger row) in one small
-- statement, without reading the plan or moving windows. Not a correct engine (no window check, no account
-- lookup): it measures what the writes cost.
WITH upd AS (
    UPDATE quota.counters
    SET used = used + 1, rollup_amount = rollup_amount + 1, rollup_requests = rollup_requests + 1,
        rollup_last_at = GREATEST(rollup_last_at, now())
    WHERE user_id = 'team' AND meter = 'ai_requests' AND period = 'day' AND used + held + 1 <= 1000000000000
    RETURNING used
)
INSERT INTO quota.ledger (user_id, meter, amount, created_at)
SELECT 'team', 'ai_requests', 1, now() FROM upd;
