-- quota.status (every window of the user's plan, reads only) for one of 10,000 users (scenario 1).
\set uid random(1, :users)
SELECT count(*) FROM quota.status('u' || :uid);
