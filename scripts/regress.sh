#!/usr/bin/env bash
# Golden SQL tests of the public quota.* surface (extension/tests/regress) with pg_regress against the private
# cluster, in a scratch database. Every file runs in BEGIN ... ROLLBACK with the clock pinned, so they share one
# database and leave nothing behind.
# Then the SQL examples of README.md and docs/sql.md run as pasted, in order, each doc on a fresh database, and
# must print what the doc shows (scripts/doc-examples.py).
# Usage: scripts/regress.sh [--accept]   (--accept copies the outputs over expected/*.out and into the docs'
#        ```text blocks; review the diff)
source "$(dirname "$0")/env.sh"
REG="$ROOT/extension/tests/regress"
PG_REGRESS="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress"
tests=$(cd "$REG/sql" && ls *.sql | sed 's/\.sql$//')
out="$DATA_DIR/regress"
accept=false
[ "${1:-}" = "--accept" ] && accept=true
rm -rf "$out" && mkdir -p "$out/expected"
# --accept runs against empty expected files, so every test "fails" and writes its full output.
for t in $tests; do
  if $accept || [ ! -f "$REG/expected/$t.out" ]; then : >"$out/expected/$t.out"; else cp "$REG/expected/$t.out" "$out/expected/"; fi
done
ln -s "$REG/sql" "$out/sql"
[ "$(id -u)" = 0 ] && chown -R "$RUNAS" "$out"
# A fresh scratch database with the extension (pg_regress --use-existing does not create it).
psql_db -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS aiquota_regress WITH (FORCE)" \
  -c "CREATE DATABASE aiquota_regress"
psql_db -d aiquota_regress -c "CREATE EXTENSION aiquota"
log "golden SQL tests: $(echo $tests)"
status=0
as_pg "$PG_REGRESS" --use-existing --host="$PGHOST" --port="$PGPORT" --user=postgres \
  --dbname=aiquota_regress --inputdir="$out" --outputdir="$out" --bindir="$PGBIN" $tests >"$out/pg_regress.log" 2>&1 || status=$?
if $accept; then
  cp "$out"/results/*.out "$REG/expected/"
  log "accepted the outputs into extension/tests/regress/expected/ (git diff shows what changed)"
elif [ "$status" != 0 ]; then
  cat "$out/pg_regress.log"; cat "$out/regression.diffs" 2>/dev/null; exit 1
else
  grep -E '^(test |.*tests passed)' "$out/pg_regress.log" >&2
fi
psql_db -d postgres -c "DROP DATABASE IF EXISTS aiquota_regress WITH (FORCE)"

# The docs' examples, each doc on a fresh database of its own, as a reader following it would have.
docs_failed=0
for doc in README.md docs/sql.md; do
  psql_db -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS aiquota_doc WITH (FORCE)" \
    -c "CREATE DATABASE aiquota_doc"
  psql_db -d aiquota_doc -c "CREATE EXTENSION aiquota"
  python3 "$ROOT/scripts/doc-examples.py" $($accept && echo --accept) "$ROOT/$doc" \
    "$PGBIN/psql" -U postgres -h "$PGHOST" -p "$PGPORT" -d aiquota_doc || docs_failed=1
done
# docs/operations.md's set-up recipe creates the extension itself, in a database named as in the doc, with what a
# Supabase project has already (an auth.users table and an authenticated role; roles are cluster-wide).
psql_db -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS yourdb WITH (FORCE)" \
  -c "CREATE DATABASE yourdb" \
  -c "DO \$\$ BEGIN CREATE ROLE authenticated NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$"
psql_db -d yourdb -c "CREATE SCHEMA auth" -c "CREATE TABLE auth.users (id uuid PRIMARY KEY)"
python3 "$ROOT/scripts/doc-examples.py" $($accept && echo --accept) "$ROOT/docs/operations.md" \
  "$PGBIN/psql" -U postgres -h "$PGHOST" -p "$PGPORT" -d yourdb || docs_failed=1
psql_db -d postgres -c "DROP DATABASE IF EXISTS yourdb WITH (FORCE)"
# The checker itself must fail on a wrong output: one that passed it would let every doc drift unseen.
if python3 "$ROOT/scripts/doc-examples.py" "$REG/doc-check-must-fail.md" \
  "$PGBIN/psql" -U postgres -h "$PGHOST" -p "$PGPORT" -d aiquota_doc >/dev/null 2>&1; then
  log "scripts/doc-examples.py passed extension/tests/regress/doc-check-must-fail.md, whose output is wrong"
  docs_failed=1
fi
psql_db -d postgres -c "DROP DATABASE IF EXISTS aiquota_doc WITH (FORCE)"
[ "$docs_failed" = 0 ] || { log "the docs' examples differ from what they print (scripts/regress.sh --accept rewrites the outputs)"; exit 1; }
