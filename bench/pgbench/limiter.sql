-- The hand-written PL/pgSQL limiter a user would write instead (bench/sql/template.sql), same users (scenario 1).
\set uid random(1, :users)
SELECT bench.limiter('u' || :uid, 1);
