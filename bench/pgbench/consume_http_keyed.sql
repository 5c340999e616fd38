-- The decision POST /v1/quota/consume makes, over SQL with a fresh idempotency key per call (scenario 5, for
-- scale): the API mints a key when the client sends none, so that a client told `outcome-unknown` can settle the
-- call, and a keyed consume claims the key and stores its decision around the charge. This contender is the same
-- work without HTTP, so the API's own cost is api / sql_keyed and the key's is sql_keyed / sql.
\set uid random(1, :users)
\set k random(1, 9000000000000000000)
SELECT * FROM quota.consume('u' || :uid, 'ai_requests', 1::bigint, 'bench-' || :k, NULL::jsonb);
