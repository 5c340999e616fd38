#!/usr/bin/env bash
# What partitioning quota.ledger by month would cost and buy, measured on a model of consume's two writes (the
# counter row with its rollup, the ledger row) rather than the engine: the same ledger columns and keys, once a
# plain table and once range-partitioned by created_at (Oct, Nov, Dec 2026, Jan 2027 and a default partition),
# each empty and with 10,000,000 rows of history in October (1,000 per user, 10,000 users), the calls of today
# going to December. Backend CPU per call side by side with bench/cpu_ab.py, right after a CHECKPOINT.
# Usage: bench/ab/ledger_partitions.sh PORT   (a running cluster you can create databases in, as postgres;
#        the four databases lp_* are dropped and created again)
set -euo pipefail
PORT="${1:?port}"
HERE="$(cd "$(dirname "$0")" && pwd)"
P=(psql -X -q -v ON_ERROR_STOP=1 -h "${PGHOST:-/tmp}" -p "$PORT" -U postgres)
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cat >"$WORK/counters.sql" <<'SQL'
CREATE TABLE counters (user_id text, meter text, period text, used bigint NOT NULL DEFAULT 0,
  held bigint NOT NULL DEFAULT 0, rollup_amount bigint NOT NULL DEFAULT 0, rollup_requests bigint NOT NULL DEFAULT 0,
  rollup_last_at timestamptz, PRIMARY KEY (user_id, meter, period)) WITH (fillfactor = 80);
INSERT INTO counters (user_id, meter, period) SELECT 'u' || i, 'ai_requests', 'day' FROM generate_series(1, 10000) i;
SQL
ledger='CREATE TABLE ledger (user_id text NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, meter text NOT NULL,
  amount bigint NOT NULL, idempotency_key text, metadata jsonb, created_at timestamptz NOT NULL, reset_period text,
  credits bigint NOT NULL DEFAULT 0, PRIMARY KEY (user_id, created_at, id))'
cat >"$WORK/plain.sql" <<SQL
$ledger;
CREATE INDEX ON ledger USING brin (created_at);
SQL
cat >"$WORK/partitioned.sql" <<SQL
$ledger PARTITION BY RANGE (created_at);
CREATE INDEX ON ledger USING brin (created_at);
CREATE TABLE ledger_2026_10 PARTITION OF ledger FOR VALUES FROM ('2026-10-01') TO ('2026-11-01');
CREATE TABLE ledger_2026_11 PARTITION OF ledger FOR VALUES FROM ('2026-11-01') TO ('2026-12-01');
CREATE TABLE ledger_2026_12 PARTITION OF ledger FOR VALUES FROM ('2026-12-01') TO ('2027-01-01');
CREATE TABLE ledger_2027_01 PARTITION OF ledger FOR VALUES FROM ('2027-01-01') TO ('2027-02-01');
CREATE TABLE ledger_default PARTITION OF ledger DEFAULT;
SQL
cat >"$WORK/history.sql" <<'SQL'
INSERT INTO ledger (user_id, meter, amount, metadata, created_at)
SELECT 'u' || u, 'ai_requests', 1, '{"model": "gpt-4o-mini"}'::jsonb,
       timestamptz '2026-10-06 00:00:00+00' + (k - 1) * (interval '10 days' - interval '1 hour') / 1000
FROM generate_series(1, 10000) AS u, generate_series(1, 1000) AS k ORDER BY u, k;
VACUUM ANALYZE ledger;
SQL
cat >"$WORK/call.sql" <<'SQL'
\set uid random(1, :users)
WITH upd AS (
    UPDATE counters SET used = used + 1, rollup_amount = rollup_amount + 1, rollup_requests = rollup_requests + 1,
        rollup_last_at = GREATEST(rollup_last_at, now())
    WHERE user_id = 'u' || :uid AND meter = 'ai_requests' AND period = 'day' AND used + held + 1 <= 1000000000000
    RETURNING used
)
INSERT INTO ledger (user_id, meter, amount, created_at) SELECT 'u' || :uid, 'ai_requests', 1, now() FROM upd;
SQL

for db in lp_plain lp_partitioned lp_plain_history lp_partitioned_history; do
  "${P[@]}" -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  "${P[@]}" -d "$db" -f "$WORK/counters.sql"
  case "$db" in *partitioned*) "${P[@]}" -d "$db" -f "$WORK/partitioned.sql" ;; *) "${P[@]}" -d "$db" -f "$WORK/plain.sql" ;; esac
  case "$db" in *history) "${P[@]}" -d "$db" -f "$WORK/history.sql" ;; esac
done
"${P[@]}" -d postgres -c CHECKPOINT
python3 "$HERE/../cpu_ab.py" --host "${PGHOST:-/tmp}" --port "$PORT" --seconds 12 --rounds 3 --rate 500 \
  plain=lp_plain:"$WORK/call.sql" partitioned=lp_partitioned:"$WORK/call.sql" \
  plain_10m=lp_plain_history:"$WORK/call.sql" partitioned_10m=lp_partitioned_history:"$WORK/call.sql"
