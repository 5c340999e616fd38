-- A sketch of consume's fast path, for scale (scenario 1): the same three writes one allowed consume makes (counter
-- update with the limit check, ledger row, daily rollup upsert) in one small statement, without reading the plan
-- or moving windows. Not a correct engine (no window check, no account lookup): it measures what the writes cost.
\set uid random(1, :users)
WITH upd AS (
    UPDATE quota.counters SET used = used + 1
    WHERE user_id = 'u' || :uid AND meter = 'ai_requests' AND period = 'day' AND used + held + 1 <= 1000000000000
    RETURNING used
), led AS (
    INSERT INTO quota.ledger (user_id, meter, amount, created_at)
    SELECT 'u' || :uid, 'ai_requests', 1, now() FROM upd
    RETURNING created_at
)
INSERT INTO quota.usage_daily AS d (user_id, day, meter, amount, requests, last_at)
SELECT 'u' || :uid, (now() AT TIME ZONE 'UTC')::date, 'ai_requests', 1, 1, now() FROM led
ON CONFLICT (user_id, day, meter) DO UPDATE
SET amount = d.amount + 1, requests = d.requests + 1, last_at = GREATEST(d.last_at, EXCLUDED.last_at);
