-- aiquota 0.4.0 -> 0.5.0
-- * quota.counters gains solo: whether the row is its user's only counter row of the meter. The fast paths
--   check it on the row they lock instead of looking for rows of other periods in their snapshot, which a fast
--   charge queued behind a call that created such a row could not see (that row then missed its amount). Every
--   existing row is set once here (one pass over the table).

ALTER TABLE quota.counters ADD COLUMN solo boolean NOT NULL DEFAULT false;
UPDATE quota.counters c SET solo = true
WHERE NOT EXISTS (
    SELECT 1 FROM quota.counters o WHERE o.user_id = c.user_id AND o.meter = c.meter AND o.period <> c.period
);
