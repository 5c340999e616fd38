#!/usr/bin/env bash
# Runs the PostgreSQL isolation specs in extension/tests/isolation against the private cluster.
# Each spec's setup creates the extension in a scratch database and its teardown drops it again.
source "$(dirname "$0")/env.sh"
ISO="$ROOT/extension/tests/isolation"
REGRESS="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/isolation/pg_isolation_regress"
specs=$(cd "$ISO/specs" && ls *.spec | sed 's/\.spec$//')
out="$DATA_DIR/isolation"
rm -rf "$out" && mkdir -p "$out"
[ "$(id -u)" = 0 ] && chown -R "$RUNAS" "$out"
# A fresh scratch database (pg_isolation_regress --use-existing does not create it).
psql_db -d postgres -c "DROP DATABASE IF EXISTS aiquota_isolation WITH (FORCE)" -c "CREATE DATABASE aiquota_isolation"
log "isolation specs: $(echo $specs)"
# pg_isolation_regress writes its results next to --outputdir; run it as the cluster's OS user.
as_pg "$REGRESS" --use-existing --host="$PGHOST" --port="$PGPORT" --user=postgres \
  --dbname=aiquota_isolation --inputdir="$ISO" --outputdir="$out" \
  --bindir="$PGBIN" $specs || { cat "$out/regression.diffs" 2>/dev/null; exit 1; }
