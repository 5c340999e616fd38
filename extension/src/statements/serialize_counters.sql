-- Slow path, before add_counters.sql: waits for the turn to create counter rows for one user and meter, and
-- returns its two keys (creation_turn.rs explains the turn, and why it is a session-level lock that the engine
-- gives back itself at the end of the transaction). Any other session never waits on it: the fast path only ever
-- locks the counter row itself. (pg_advisory_lock's two-key form; an application using the same two keys would
-- only wait, never be wrong.)
-- Params: $1 user, $2 meter.
-- In psql: PREPARE serialize_counters(text, text) AS <this statement>; EXECUTE serialize_counters('alice', 'ai_requests');
--          (then SELECT pg_advisory_unlock(...) with the two keys it returned)
SELECT pg_catalog.hashtext($1) AS user_key, pg_catalog.hashtext($2) AS meter_key,
       pg_catalog.pg_advisory_lock(pg_catalog.hashtext($1), pg_catalog.hashtext($2))::text AS taken
