-- Issue 11's lean PL/pgSQL on aiquota's own tables (bench/sql/template.sql), same users (scenario 1).
\set uid random(1, :users)
SELECT bench.lean_consume('u' || :uid, 'ai_requests', 1);
