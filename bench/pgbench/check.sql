-- quota.check (reads only) for one of 10,000 users (scenario 1).
\set uid random(1, :users)
SELECT allowed FROM quota.check('u' || :uid, 'ai_requests', 1);
