-- The hand-written limiter as SECURITY DEFINER with a pinned search_path, as aiquota's functions run (scenario 1).
\set uid random(1, :users)
SELECT bench.limiter_definer('u' || :uid, 1);
