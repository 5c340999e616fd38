-- Slow path, with the turn of serialize_counters.sql: how many counter rows of the user's meter this session did
-- not lock in lock.sql ($3: the periods it locked), i.e. rows another session created since. Not zero: the engine
-- gives the turn back and locks the rows again, since the holder of the turn must never wait for a row lock.
-- Params: $1 user, $2 meter, $3 periods locked.
-- In psql: PREPARE unseen_counters(text, text, text[]) AS <this statement>;
--          EXECUTE unseen_counters('alice', 'ai_requests', '{day}');
SELECT count(*) FROM quota.counters c WHERE c.user_id = $1 AND c.meter = $2 AND c.period <> ALL ($3)
