#!/usr/bin/env bash
# Proves the upgrade path: a database created at an earlier version and updated with ALTER EXTENSION aiquota UPDATE
# must have exactly what a fresh CREATE EXTENSION aiquota of the current version has. For every frozen install
# script sql/aiquota--<version>.sql it creates one database at that version with some data (written with that
# version's SQL only), updates it, and compares it with a fresh database: the schema (pg_dump), the extension's
# members, pg_dump markings, catalogue rows, grants, row-level security and function definitions. Then it checks
# that the updated database works: consume, quota.verify() empty, usage_daily equal to the ledger's daily sums.
# A change to extension/sql without a new version and upgrade script fails here.
# Usage: scripts/upgrade-test.sh   (the private cluster must be running with the current build installed: make db)
# AIQUOTA_KEEP_UPGRADE_DBS=1 keeps the databases for a look afterwards.
source "$(dirname "$0")/env.sh"

VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")"
FRESH=aiquota_upgrade_fresh
UPDATED=aiquota_upgrade_updated
OUT="$DATA_DIR/upgrade-test"
mkdir -p "$OUT"

drop_dbs() {
  psql_db -d postgres -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS $FRESH WITH (FORCE)" -c "DROP DATABASE IF EXISTS $UPDATED WITH (FORCE)"
}
cleanup() { [ "${AIQUOTA_KEEP_UPGRADE_DBS:-}" = 1 ] || drop_dbs; }
trap cleanup EXIT

# Everything that must be equal, one labelled section each, in an order that does not depend on OIDs.
describe() {
  local db="$1"
  psql_db -d "$db" -At -F ' | ' <<'SQL'
\echo == extension
SELECT extname, extversion, extrelocatable, extnamespace::regnamespace FROM pg_extension WHERE extname = 'aiquota';
\echo == members
SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'aiquota')
ORDER BY 1;
\echo == pg_dump markings (extconfig)
SELECT c.relname, x.cond FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(reloid, cond)
JOIN pg_class c ON c.oid = x.reloid
WHERE e.extname = 'aiquota' ORDER BY 1;
\echo == columns
SELECT c.relname, c.relkind, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relnamespace = 'quota'::regnamespace ORDER BY 1, 3;
\echo == relations
SELECT c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.reloptions, c.relacl
FROM pg_class c WHERE c.relnamespace = 'quota'::regnamespace ORDER BY 1;
\echo == constraints
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE connamespace = 'quota'::regnamespace ORDER BY 1, 2;
\echo == indexes
SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'quota'::regnamespace) ORDER BY 1;
\echo == functions
SELECT p.oid::regprocedure, p.proacl, obj_description(p.oid, 'pg_proc'), pg_get_functiondef(p.oid)
FROM pg_proc p WHERE p.pronamespace = 'quota'::regnamespace ORDER BY p.oid::regprocedure::text;
\echo == execute privileges
SELECT p.oid::regprocedure, r.rolname, has_function_privilege(r.rolname, p.oid, 'EXECUTE')
FROM pg_proc p, pg_roles r
WHERE p.pronamespace = 'quota'::regnamespace AND r.rolname IN ('quota_api', 'quota_admin', 'quota_payments', 'quota_reader')
ORDER BY p.oid::regprocedure::text, 2;
\echo == table privileges
SELECT c.relname, r.rolname, has_table_privilege(r.rolname, c.oid, 'SELECT'),
       has_table_privilege(r.rolname, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
FROM pg_class c, pg_roles r
WHERE c.relnamespace = 'quota'::regnamespace AND c.relkind IN ('r', 'v', 'S')
  AND r.rolname IN ('quota_api', 'quota_admin', 'quota_payments', 'quota_reader')
ORDER BY 1, 2;
\echo == policies
SELECT tablename, policyname, permissive, roles, cmd, qual, with_check FROM pg_policies
WHERE schemaname = 'quota' ORDER BY 1, 2;
\echo == triggers
SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger
WHERE NOT tgisinternal AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'quota'::regnamespace)
ORDER BY 1, 2;
\echo == types
SELECT t.typname, t.typtype, obj_description(t.oid, 'pg_type') FROM pg_type t
WHERE t.typnamespace = 'quota'::regnamespace AND t.typtype <> 'b' ORDER BY 1;
\echo == comments on tables
SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c
WHERE c.relnamespace = 'quota'::regnamespace ORDER BY 1;
\echo == catalogue rows
SELECT 'meter', key, unit, description FROM quota.meters ORDER BY 2;
SELECT 'plan', key, name FROM quota.plans ORDER BY 2;
SELECT 'plan_limit', plan, meter, period, "limit", rollover_cap FROM quota.plan_limits ORDER BY 2, 3, 4;
SELECT 'plan_burst', plan, meter, rate, per, burst FROM quota.plan_bursts ORDER BY 2, 3;
SELECT 'product', key, plan, duration, amount, currency, active FROM quota.products ORDER BY 2;
SQL
}

# The schema as pg_dump sees it. A plain dump leaves out an extension's members (and --schema=quota leaves out
# the extension), so the whole database (nothing but the extension) is dumped in binary-upgrade mode, which writes
# every member with its membership. Normalised away are only what must differ between two databases: the OIDs
# and relfilenodes that mode pins, the transaction ids it freezes tables at, the extension's pg_dump markings (OIDs; compared by name above), the
# missing-value bookkeeping of a column added with a default by ALTER TABLE, and the values of the sequences that
# are dumped as data (the updated database has rows).
dump_schema() {
  "$PGBIN/pg_dump" -U postgres -h "$PGHOST" -p "$PGPORT" --schema-only --binary-upgrade -d "$1" |
    grep -v -e 'binary_upgrade_set_next_' -e 'binary_upgrade_set_missing_value' -e '^-- set missing value\.$' \
      -e 'binary_upgrade_create_empty_extension' -e '^-- Dumped from' -e '^-- Dumped by' \
      -e '^\\restrict' -e '^\\unrestrict' |
    sed -e "s/^\(SELECT pg_catalog.setval('quota\.[a-z_]*'\), .*/\1, <value>);/" \
      -e "s/^SET relfrozenxid = '[0-9]*', relminmxid = '[0-9]*'$/SET relfrozenxid = <xid>, relminmxid = <mxid>/" \
      -e "s/^WHERE oid = '[0-9]*';$/WHERE oid = <oid>;/" | cat -s
}

compare() {
  local what="$1" a="$2" b="$3"
  if ! diff -u --label "fresh $VERSION" --label "updated from $from" "$a" "$b" >"$OUT/$what.diff"; then
    cat "$OUT/$what.diff" >&2
    log "FAILED: the $what of a database updated from $from differs from a fresh $VERSION (diff above, $OUT/$what.diff)"
    exit 1
  fi
}

run_from() {
  local from="$1"
  log "upgrade test: $from -> $VERSION"
  drop_dbs
  psql_db -d postgres -c "CREATE DATABASE $FRESH" -c "CREATE DATABASE $UPDATED"
  psql_db -d "$FRESH" -c "SET client_min_messages = warning" -c "CREATE EXTENSION aiquota"
  # `cargo pgrx test` installs a test build over the same files; comparing against it would only show its tests.
  if [ "$(psql_db -d "$FRESH" -tAc "SELECT to_regnamespace('tests') IS NOT NULL")" = t ]; then
    log "FAILED: the installed aiquota is a \`cargo pgrx test\` build (it has a tests schema): reinstall it with make db"
    exit 1
  fi

  # The old version, with data written using only what it had. The .so is the current one for both versions, so
  # no C function is called before the update: accounts and ledger rows are written directly, as a restore would.
  psql_db -d "$UPDATED" >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION aiquota VERSION '$from';
INSERT INTO quota.accounts (user_id, plan) VALUES ('alice', 'free'), ('bob', 'pro'), ('carol', 'free');
INSERT INTO quota.ledger (user_id, meter, amount, created_at, idempotency_key) VALUES
    ('alice', 'ai_requests', 1, '2026-11-01 23:30:00+00', 'k1'),
    ('alice', 'ai_requests', 2, '2026-11-01 23:59:59+00', NULL),
    ('alice', 'ai_requests', 1, '2026-11-02 00:00:00+00', NULL),
    ('alice', 'ai_tokens', 500, '2026-11-02 10:00:00+00', NULL),
    ('bob', 'ai_requests', 3, '2026-11-02 05:00:00+05', NULL),
    ('bob', 'ai_tokens', 1200, '2026-11-03 12:00:00+00', NULL),
    ('bob', 'ai_tokens', 800, '2026-11-03 13:00:00+00', NULL);
-- An idempotency key with the decision as 0.1.0 stored it (no credits_used): a retry after the update replays it.
INSERT INTO quota.idempotency_keys (user_id, key, meter, amount, decision, created_at) VALUES
    ('alice', 'k1', 'ai_requests', 1, '{"allowed": true, "meter": "ai_requests", "plan": "free", "used": 1,
      "limit": 10, "remaining": 9, "resets_at": "2026-11-02T00:00:00Z", "status": "normal", "reason": null,
      "retry_after_s": null, "period": "day", "held": 0, "reservation_id": null, "expires_at": null}',
     '2026-11-01 23:30:00+00');
-- A reset row (not usage): it must stay out of the daily rollup.
INSERT INTO quota.ledger (user_id, meter, amount, created_at, reset_period) VALUES
    ('alice', 'ai_requests', -3, '2026-11-02 12:00:00+00', 'day');
-- Counter rows as the old version left them, matching the ledger: alice's only row of ai_requests, and two rows
-- of bob's ai_tokens (0.5.0's update must mark only the first solo: the fast path may charge it alone).
INSERT INTO quota.counters (user_id, meter, period, window_start, used) VALUES
    ('alice', 'ai_requests', 'day', '2026-11-01 00:00:00+00', 3),
    ('bob', 'ai_tokens', 'month', '2026-11-01 00:00:00+00', 2000),
    ('bob', 'ai_tokens', 'day', '2026-11-03 00:00:00+00', 2000);
SELECT quota.assign_plan('carol', 'pro', NULL, 'upgrade-test');
SELECT quota.create_plan('team', 'Team', 'upgrade-test');
SELECT quota.set_plan_limit('team', 'ai_requests', 'day', 200, 'upgrade-test');
SQL
  # A version that has the daily rollup kept it in step with every consume: rows written directly, as above, get
  # theirs here (from 0.1.0 the update's backfill writes it, which the checks below prove).
  psql_db -d "$UPDATED" >/dev/null <<'SQL'
DO $$ BEGIN
  -- From 0.5.0 the stored rollup is quota.daily_rollup (quota.usage_daily a view over it), and the version that
  -- created counter rows marked a meter's only row solo.
  IF to_regclass('quota.daily_rollup') IS NOT NULL THEN
    INSERT INTO quota.daily_rollup (user_id, day, meter, amount, requests, last_at)
    SELECT user_id, (created_at AT TIME ZONE 'UTC')::date, meter, sum(amount), count(*), max(created_at)
    FROM quota.ledger WHERE reset_period IS NULL GROUP BY 1, 2, 3;
    UPDATE quota.counters c SET solo = true WHERE NOT EXISTS (
        SELECT 1 FROM quota.counters o WHERE o.user_id = c.user_id AND o.meter = c.meter AND o.period <> c.period);
  ELSIF to_regclass('quota.usage_daily') IS NOT NULL THEN
    INSERT INTO quota.usage_daily (user_id, day, meter, amount, requests, last_at)
    SELECT user_id, (created_at AT TIME ZONE 'UTC')::date, meter, sum(amount), count(*), max(created_at)
    FROM quota.ledger WHERE reset_period IS NULL GROUP BY 1, 2, 3;
  END IF;
END $$;
SQL
  # Between installing a new library and updating a database, the engine refuses with an error that names the fix
  # (57P03, which the API answers with 503 + Retry-After) instead of failing on what its statements expect.
  local early
  early="$(psql_db -d "$UPDATED" -c '\set VERBOSITY verbose' -c "SELECT quota.consume('alice')" 2>&1 || true)"
  if ! grep -q "57P03" <<<"$early" || ! grep -q "ALTER EXTENSION aiquota UPDATE" <<<"$early"; then
    echo "$early" >&2
    log "FAILED: consume on a database still at $from did not refuse with 57P03 naming ALTER EXTENSION aiquota UPDATE"
    exit 1
  fi
  # (assign_plan calls quota._validate_user, a C function whose signature and symbol are the same in both versions.)
  psql_db -d "$UPDATED" -c "ALTER EXTENSION aiquota UPDATE TO '$VERSION'"
  # The rows the old version's data added to the catalogue are not part of the schema: remove them before comparing.
  psql_db -d "$UPDATED" -c "SELECT quota.remove_plan_limit('team', 'ai_requests', 'day', 'upgrade-test')" \
    -c "DELETE FROM quota.plans WHERE key = 'team'" >/dev/null

  describe "$FRESH" >"$OUT/fresh.txt"
  describe "$UPDATED" >"$OUT/updated.txt"
  compare catalogue "$OUT/fresh.txt" "$OUT/updated.txt"
  dump_schema "$FRESH" >"$OUT/fresh.dump.sql"
  dump_schema "$UPDATED" >"$OUT/updated.dump.sql"
  compare schema "$OUT/fresh.dump.sql" "$OUT/updated.dump.sql"

  # The updated database works, and its history arrived whole.
  local check
  check="$(psql_db -d "$UPDATED" -At <<'SQL'
SELECT 'backfill differs: ' || count(*) FROM (
    (SELECT user_id, (created_at AT TIME ZONE 'UTC')::date, meter, sum(amount), count(*), 0::bigint, max(created_at)
     FROM quota.ledger WHERE reset_period IS NULL GROUP BY 1, 2, 3
     EXCEPT SELECT user_id, day, meter, amount, requests, denials, last_at FROM quota.usage_daily)
    UNION ALL
    (SELECT user_id, day, meter, amount, requests, denials, last_at FROM quota.usage_daily
     EXCEPT SELECT user_id, (created_at AT TIME ZONE 'UTC')::date, meter, sum(amount), count(*), 0::bigint,
                   max(created_at)
     FROM quota.ledger WHERE reset_period IS NULL GROUP BY 1, 2, 3)
) d HAVING count(*) > 0;
SELECT 'backfill has ' || count(*) || ' rows, expected 5' FROM quota.usage_daily HAVING count(*) <> 5;
-- Days are UTC days: 05:00 at +05 is midnight UTC; two calls late on 1 November are one row.
SELECT 'backfill: bob''s UTC day is wrong' WHERE NOT EXISTS (SELECT 1 FROM quota.usage_daily
    WHERE user_id = 'bob' AND meter = 'ai_requests' AND day = '2026-11-02' AND amount = 3 AND requests = 1);
SELECT 'backfill: alice''s 1 November is wrong' WHERE NOT EXISTS (SELECT 1 FROM quota.usage_daily
    WHERE user_id = 'alice' AND meter = 'ai_requests' AND day = '2026-11-01' AND amount = 3 AND requests = 2
      AND last_at = '2026-11-01 23:59:59+00' AND denials = 0);
SELECT 'consume not allowed: ' || d::text FROM quota.consume('alice', 'ai_requests', 2) d WHERE NOT d.allowed;
SELECT 'replay of a 0.1.0 key: ' || d::text FROM quota.consume('alice', 'ai_requests', 1, 'k1') d
WHERE NOT (d.replayed AND d.allowed AND d.used = 1 AND d.credits_used = 0);
SELECT 'consume by a new user not allowed: ' || d::text FROM quota.consume('dave', 'ai_tokens', 10) d
WHERE NOT d.allowed OR d.credits_used IS DISTINCT FROM 0;
SELECT 'verify: ' || v::text FROM quota.verify() v;
SELECT 'solo after the update: ' || s FROM (
    SELECT string_agg(user_id || '/' || meter || '/' || period || '=' || solo, ' ' ORDER BY user_id, meter, period) s
    FROM quota.counters WHERE (user_id, meter) IN (('alice', 'ai_requests'), ('bob', 'ai_tokens'))) c
WHERE s IS DISTINCT FROM 'alice/ai_requests/day=true bob/ai_tokens/day=false bob/ai_tokens/month=false';
SELECT 'usage_daily misses today''s consume' WHERE NOT EXISTS (
    SELECT 1 FROM quota.usage_daily WHERE user_id = 'alice' AND meter = 'ai_requests' AND day = quota._today()
      AND amount = 2 AND requests = 1);
SELECT 'user_usage all_time: ' || u.all_time FROM quota.user_usage('bob') u
WHERE u.meter = 'ai_tokens' AND u.all_time <> 2000;
SELECT 'reserve/commit failed' WHERE NOT EXISTS (
    SELECT 1 FROM quota.reserve('carol', 'ai_tokens', 100) r, quota.commit(r.reservation_id, 40, 'carol') s
    WHERE r.allowed AND s.state = 'committed' AND s.charged = 40);
SELECT 'verify after reserve: ' || v::text FROM quota.verify() v;
SQL
)"
  if [ -n "$check" ]; then
    echo "$check" >&2
    log "FAILED: the database updated from $from does not work as $VERSION (above)"
    exit 1
  fi
  log "upgrade test $from -> $VERSION passed"
}

shopt -s nullglob
tested=0
for script in "$ROOT"/sql/aiquota--*.sql; do
  from="$(basename "$script" .sql)"
  from="${from#aiquota--}"
  case "$from" in *--*) continue ;; esac # an upgrade script, not a frozen install script
  [ "$from" = "$VERSION" ] && continue
  run_from "$from"
  tested=$((tested + 1))
done
[ "$tested" -gt 0 ] || { log "FAILED: no frozen install script in sql/ to upgrade from"; exit 1; }
