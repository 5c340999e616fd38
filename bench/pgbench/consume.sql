-- quota.consume for one of 10,000 users (scenarios 1 and 3).
\set uid random(1, :users)
SELECT allowed FROM quota.consume('u' || :uid, 'ai_requests', 1);
