-- Slow path, before add_counters.sql: makes the sessions that create counter rows for one user and meter take
-- turns until their transactions end, so that the next statement sees every row the others created and can say
-- whether the user has one counter row on the meter or several (quota.counters.solo). Any other session never
-- waits on it: the fast path only ever locks the counter row itself. (pg_advisory_xact_lock's two-key form; an
-- application using the same two keys would only wait, never be wrong.)
-- Params: $1 user, $2 meter.
-- In psql: PREPARE serialize_counters(text, text) AS <this statement>; EXECUTE serialize_counters('alice', 'ai_requests');
SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1), pg_catalog.hashtext($2))
