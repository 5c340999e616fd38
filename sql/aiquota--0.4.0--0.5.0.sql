-- aiquota 0.4.0 -> 0.5.0
-- * quota.counters gains solo: whether the row is its user's only counter row of the meter. The fast paths
--   check it on the row they lock instead of looking for rows of other periods in their snapshot, which a fast
--   charge queued behind a call that created such a row could not see (that row then missed its amount). Every
--   existing row is set once here (one pass over the table).
-- * The daily rollup comes off the fast path's second write: a solo counter row carries today's part
--   (rollup_day, rollup_amount, rollup_requests, rollup_last_at), the general path moves it into the stored
--   rollup once the day is over. The table quota.usage_daily becomes quota.daily_rollup (renamed, rows kept), and
--   quota.usage_daily is now a view adding both, so every reader sees the same rows as before. Rows of counters
--   from 0.4.0 carry nothing yet (rollup_day NULL): each one's next call takes the general path once.

ALTER TABLE quota.counters ADD COLUMN solo boolean NOT NULL DEFAULT false;
UPDATE quota.counters c SET solo = true
WHERE NOT EXISTS (
    SELECT 1 FROM quota.counters o WHERE o.user_id = c.user_id AND o.meter = c.meter AND o.period <> c.period
);

ALTER TABLE quota.usage_daily RENAME TO daily_rollup;
ALTER INDEX quota.usage_daily_pkey RENAME TO daily_rollup_pkey;
ALTER INDEX quota.usage_daily_day_idx RENAME TO daily_rollup_day_idx;
COMMENT ON TABLE quota.daily_rollup IS
    'The stored part of quota.usage_daily: what the general path wrote and the days folded from counter rows. '
    'Read quota.usage_daily, which adds the days still carried on quota.counters.';
COMMENT ON TABLE quota.daily_totals IS 'Cache of quota.usage_daily totals per finished UTC day (see quota.analytics).';

ALTER TABLE quota.counters
    ADD COLUMN rollup_day date,
    ADD COLUMN rollup_amount bigint NOT NULL DEFAULT 0,
    ADD COLUMN rollup_requests bigint NOT NULL DEFAULT 0,
    ADD COLUMN rollup_last_at timestamptz;

CREATE VIEW quota.usage_daily WITH (security_invoker = true) AS
SELECT u.user_id, u.day, u.meter, sum(u.amount)::bigint AS amount, sum(u.requests)::bigint AS requests,
       sum(u.denials)::bigint AS denials, max(u.last_at) AS last_at
FROM (
    SELECT r.user_id, r.day, r.meter, r.amount, r.requests, r.denials, r.last_at FROM quota.daily_rollup r
    UNION ALL
    SELECT c.user_id, c.rollup_day, c.meter, c.rollup_amount, c.rollup_requests, 0, c.rollup_last_at
    FROM quota.counters c WHERE c.rollup_requests > 0
) u
GROUP BY u.user_id, u.day, u.meter;
COMMENT ON VIEW quota.usage_daily IS
    'Usage per user, UTC day and meter: amount consumed, allowed calls (requests), denied calls, last use. '
    'Exact in every snapshot; resets do not change it (it records what was used).';
GRANT SELECT ON quota.usage_daily TO quota_admin;
GRANT SELECT ON quota.usage_daily TO quota_reader;

CREATE FUNCTION quota._keep_carried_rollup() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        INSERT INTO quota.daily_rollup AS d (user_id, day, meter, amount, requests, last_at)
        VALUES (OLD.user_id, OLD.rollup_day, OLD.meter, OLD.rollup_amount, OLD.rollup_requests, OLD.rollup_last_at)
        ON CONFLICT (user_id, day, meter) DO UPDATE
        SET amount = d.amount + EXCLUDED.amount, requests = d.requests + EXCLUDED.requests,
            last_at = GREATEST(d.last_at, EXCLUDED.last_at);
        RETURN OLD;
    END IF;
    INSERT INTO quota.daily_rollup AS d (user_id, day, meter, amount, requests, last_at)
    SELECT c.user_id, c.rollup_day, c.meter, sum(c.rollup_amount), sum(c.rollup_requests), max(c.rollup_last_at)
    FROM quota.counters c WHERE c.rollup_requests > 0
    GROUP BY c.user_id, c.rollup_day, c.meter
    ON CONFLICT (user_id, day, meter) DO UPDATE
    SET amount = d.amount + EXCLUDED.amount, requests = d.requests + EXCLUDED.requests,
        last_at = GREATEST(d.last_at, EXCLUDED.last_at);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION quota._keep_carried_rollup() IS
    'Internal trigger: a deleted or truncated counter row''s carried daily rollup moves to quota.daily_rollup.';
REVOKE ALL ON FUNCTION quota._keep_carried_rollup() FROM PUBLIC;
CREATE TRIGGER keep_carried_rollup BEFORE DELETE ON quota.counters
    FOR EACH ROW WHEN (OLD.rollup_requests > 0) EXECUTE FUNCTION quota._keep_carried_rollup();
CREATE TRIGGER keep_carried_rollup_on_truncate BEFORE TRUNCATE ON quota.counters
    FOR EACH STATEMENT EXECUTE FUNCTION quota._keep_carried_rollup();
