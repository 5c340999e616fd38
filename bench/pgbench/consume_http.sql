-- The decision POST /v1/quota/consume makes, issued over SQL directly (scenario 5), for the same users.
\set uid random(1, :users)
SELECT * FROM quota.consume('u' || :uid, 'ai_requests', 1::bigint, NULL::text, NULL::jsonb);
