-- One reserve/commit pair (scenario 6): hold 1000 tokens, then commit the 800 actually used.
\set uid random(1, :users)
SELECT reservation_id AS rid FROM quota.reserve('u' || :uid, 'ai_tokens', 1000, interval '5 minutes') \gset
SELECT state FROM quota.commit(:rid::uuid, 800);
