-- Records the key of an allowed, keyed call with its request and decision, in the call's transaction, so that a
-- repeat replays it (load_key.sql) once this commits. The call holds the key's turn (key_turn.rs) and found no
-- row under it, so the row is new: one write per keyed call. A denied call records nothing (a retry is evaluated
-- afresh). Params: $1 user, $2 key, $3 meter, $4 amount, $5 metadata, $6 now (aiquota's clock, which
-- quota.purge_idempotency_keys compares with), $7 decision: claim_key.sql's and the decision.
-- In psql: PREPARE record_key(text, text, text, bigint, jsonb, timestamptz, jsonb) AS <this statement>;
--          EXECUTE record_key('alice', 'req-1', 'ai_requests', 1, NULL, now(), '{"allowed": true}');
INSERT INTO quota.idempotency_keys (user_id, key, meter, amount, metadata, created_at, decision)
VALUES ($1, $2, $3, $4, $5, $6, $7)
