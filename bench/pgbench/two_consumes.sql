-- For scale in scenario 6: two consumes for one user, each its own transaction, counted as one pgbench
-- transaction like a reserve/commit pair. A reserve and a commit each write at least what a consume writes (a
-- counter row and a reservation row; the reservation, the counter row and a ledger row), in a transaction of
-- its own, so a pair cannot beat two consumes: this contender is the ceiling of the pair / consume ratio.
\set uid random(1, :users)
SELECT allowed FROM quota.consume('u' || :uid, 'ai_requests', 1);
SELECT allowed FROM quota.consume('u' || :uid, 'ai_requests', 1);
