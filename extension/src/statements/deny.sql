-- Writes a final denial, decided under the locks of lock.sql: counted on the counter rows of the windows that
-- refused ($3; none when only the burst limit refused) and, when $5, once in the daily rollup (last_at stays the
-- last use: a denial used nothing). Params: $1 user, $2 meter, $3 refusing periods, $4 now, $5 count in rollup.
WITH counted AS (
    UPDATE quota.counters c
    SET denied = c.denied + 1, last_denied = true
    WHERE c.user_id = $1 AND c.meter = $2 AND c.period = ANY ($3)
)
INSERT INTO quota.daily_rollup AS d (user_id, day, meter, denials)
SELECT $1, ($4 AT TIME ZONE 'UTC')::date, $2, 1
WHERE $5
ON CONFLICT (user_id, day, meter) DO UPDATE SET denials = d.denials + 1
