#!/usr/bin/env bash
# `make bench`: aiquota's benchmarks, every contender side by side in one run on one private cluster.
#
# Sets up what it needs (Debian's pgbench, redis-server, wrk; a bench cluster under .data/bench-pg on
# 127.0.0.1:55442 tuned by bench/postgresql.bench.conf; a Redis on 127.0.0.1:56379; the release API on
# 127.0.0.1:58080), runs each scenario for a fixed time after a warm-up, with synchronous_commit on and off, and
# writes bench/results.json and docs/benchmarks.md (tables + the machine). Never part of `make test`; it never
# touches the development cluster (.data/pg, port 55432).
#
# Knobs (environment):
#   BENCH_QUICK=1          3 s per run after 1 s of warm-up (~3-4 minutes once built and the 10M-row ledger exists)
#   BENCH_DURATION=S       seconds measured per run (default 15, quick 3); BENCH_WARMUP=S (default 5, quick 1)
#   BENCH_SYNC="on off"    synchronous_commit values to run
#   BENCH_SCENARIOS="1 2 3 4 5 6"
#   BENCH_LEDGER_SIZES="0 1000000 10000000"   history sizes of scenario 3 (generated once, then reused)
#   BENCH_CLIENTS=8        clients of scenarios 1, 3, 4, 6; scenario 2 uses BENCH_HOT_CLIENTS=32;
#                          scenario 5 BENCH_HTTP_CONNECTIONS=16 (wrk connections = pgbench clients = API pool)
#   BENCH_FROM_HEAD=1      build the API from the last commit (git archive HEAD) instead of the working tree
#   BENCH_KEEP=1           leave the bench cluster and Redis running afterwards
# Usage: scripts/bench.sh [run | stop | report | again]   (report: re-render the last run; again: re-run the
#        scenarios without building, against the running bench cluster)
source "$(dirname "$0")/env.sh"
shopt -s inherit_errexit

BENCH_SRC="$ROOT/bench"
WORK="$DATA_DIR/bench"
BPGDATA="$DATA_DIR/bench-pg"
PGPORT="${AIQUOTA_BENCH_PGPORT:-55442}"
export PGPORT PGUSER=postgres
REDIS_PORT="${AIQUOTA_BENCH_REDIS_PORT:-56379}"
API_LISTEN="${AIQUOTA_BENCH_LISTEN:-127.0.0.1:58080}"
JWT_SECRET="aiquota-bench-secret-not-for-production"

if [ "${BENCH_QUICK:-0}" = 1 ]; then DURATION="${BENCH_DURATION:-3}"; WARMUP="${BENCH_WARMUP:-1}"
else DURATION="${BENCH_DURATION:-15}"; WARMUP="${BENCH_WARMUP:-5}"; fi
SYNCS="${BENCH_SYNC:-on off}"
SCENARIOS="${BENCH_SCENARIOS:-1 2 3 4 5 6}"
LEDGER_SIZES="${BENCH_LEDGER_SIZES:-0 1000000 10000000}"
CLIENTS="${BENCH_CLIENTS:-8}"
HOT_CLIENTS="${BENCH_HOT_CLIENTS:-32}"
HTTP_CONN="${BENCH_HTTP_CONNECTIONS:-16}"
HTTP_USERS=500
USERS=10000
SEED=42
RUNS="$WORK/runs.jsonl"
# Scenario 3's fixed "today" (see bench/sql/ledger.sql): the engine and the count-today design both judge it.
S3_NOW="2026-01-15 23:00:00+00"
S3_DAY_START="2026-01-15 00:00:00+00"
S3_DAY_END="2026-01-16 00:00:00+00"

PY="$(command -v python3 || command -v python || true)"
bpsql() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres "$@"; }

# ------------------------------------------------------------------------------------------------ setup

tools() {
  local missing=()
  command -v pgbench >/dev/null || missing+=(postgresql-client-15)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v redis-cli >/dev/null || missing+=(redis-tools)
  command -v wrk >/dev/null || missing+=(wrk)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root apt-get install -y -q "${missing[@]}" >/dev/null ||
      { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q "${missing[@]}" >/dev/null; }
  fi
  [ -n "$PY" ] || { echo "python3 is needed for the report" >&2; exit 1; }
  if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/aiquota.control" ]; then
    echo "the aiquota extension is not installed in $("$PG_CONFIG" --sharedir): run 'make install' first" >&2
    exit 1
  fi
}

# What the bench databases were built from: the installed extension script and bench/sql. A change rebuilds them.
ext_sha() {
  local v; v="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")"
  cat "$("$SPG_CONFIG" --sharedir)/extension/aiquota--$v.sql" "$BENCH_SRC/sql/template.sql" "$BENCH_SRC/sql/ledger.sql" |
    sha256sum | cut -c1-16
}

# The installed library: its checksum (it must not change during a run) and whether it is a debug build.
so_path() { echo "$("$SPG_CONFIG" --pkglibdir)/aiquota.so"; }
so_sha() { sha256sum "$(so_path)" | cut -c1-16; }
# Debug builds keep Rust's precondition checks as symbols. (grep -c, not -q: -q makes nm die of SIGPIPE under pipefail.)
so_kind() { if [ "$(nm "$(so_path)" 2>/dev/null | grep -c precondition_check || true)" -gt 0 ]; then echo debug; else echo release; fi; }

# The bench cluster runs a private snapshot of the installed PostgreSQL and aiquota (bin, lib, share under
# .data/bench/pgroot; PostgreSQL finds its lib and share directories relative to its binary). Two reasons: a
# reinstall of the extension during a run (`make test` installs its build) would otherwise replace aiquota.so
# under running backends, which crash with SIGBUS, and one run must measure one build. Taken while the bench
# cluster is stopped, from a library that did not change while it was copied.
snapshot() {
  local root="$WORK/pgroot" d before after
  cluster_stop
  for _ in 1 2 3 4 5; do
    before="$(sha256sum "$("$PG_CONFIG" --pkglibdir)/aiquota.so" | cut -c1-16)"
    rm -rf "$root"
    for d in "$("$PG_CONFIG" --bindir)" "$("$PG_CONFIG" --pkglibdir)" "$("$PG_CONFIG" --sharedir)"; do
      mkdir -p "$root$(dirname "$d")" && cp -a "$d" "$root$(dirname "$d")/"
    done
    after="$(sha256sum "$("$PG_CONFIG" --pkglibdir)/aiquota.so" | cut -c1-16)"
    [ "$before" = "$after" ] && [ "$(sha256sum "$root$("$PG_CONFIG" --pkglibdir)/aiquota.so" | cut -c1-16)" = "$after" ] && break
    sleep 5
  done
  SPGBIN="$root$("$PG_CONFIG" --bindir)"
  SPG_CONFIG="$SPGBIN/pg_config"
  [ "$("$SPG_CONFIG" --pkglibdir)" = "$root$("$PG_CONFIG" --pkglibdir)" ] ||
    { echo "this PostgreSQL does not relocate: $("$SPG_CONFIG" --pkglibdir)" >&2; exit 1; }
}
SPGBIN="$WORK/pgroot$("$PG_CONFIG" --bindir)"
SPG_CONFIG="$SPGBIN/pg_config"

cluster_start() {
  mkdir -p "$WORK"
  if [ ! -f "$BPGDATA/PG_VERSION" ]; then
    log "initialising the bench cluster in $BPGDATA (owner: $RUNAS)"
    mkdir -p "$BPGDATA" "$WORK/run"
    [ "$(id -u)" = 0 ] && chown "$RUNAS" "$BPGDATA" "$WORK/run"
    chmod 700 "$BPGDATA"
    as_pg "$SPGBIN/initdb" -D "$BPGDATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$BPGDATA/pg_hba.conf"
  fi
  # The tuning lives in one file; the cluster reads a copy (it may not be able to read the checkout).
  cp "$BENCH_SRC/postgresql.bench.conf" "$BPGDATA/bench.conf"
  [ "$(id -u)" = 0 ] && chown "$RUNAS" "$BPGDATA/bench.conf"
  cat >"$BPGDATA/postgresql.auto.conf" <<CONF
# Written by scripts/bench.sh on every start.
include = 'bench.conf'
port = $PGPORT
unix_socket_directories = '$WORK/run'
CONF
  [ "$(id -u)" = 0 ] && chown "$RUNAS" "$BPGDATA/postgresql.auto.conf" "$WORK/run"
  if ! as_pg "$SPGBIN/pg_ctl" -D "$BPGDATA" status >/dev/null 2>&1; then
    log "starting the bench cluster on 127.0.0.1:$PGPORT"
    # Retried: the port lies in Linux's ephemeral range, so a client connection can hold it for a moment.
    local try
    for try in 1 2 3 4 5 6; do
      as_pg "$SPGBIN/pg_ctl" -D "$BPGDATA" -l "$BPGDATA/server.log" -w -t 120 start >/dev/null && break
      [ "$try" = 6 ] && { tail -5 "$BPGDATA/server.log" >&2; exit 1; }
      sleep 5
    done
  else
    bpsql -d postgres -c "SELECT pg_reload_conf()" >/dev/null
  fi
}

cluster_stop() {
  if [ -f "$BPGDATA/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$BPGDATA" status >/dev/null 2>&1; then
    # Fast shutdown; immediate when that hangs (seen after a backend crash during recovery). Benchmark data only.
    as_pg "$PGBIN/pg_ctl" -D "$BPGDATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
      as_pg "$PGBIN/pg_ctl" -D "$BPGDATA" -m immediate -w -t 60 stop >/dev/null
    log "stopped the bench cluster"
  fi
}

db_exists() { bpsql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1; }

# The template every scenario database is cloned from; rebuilt when the installed extension script changes.
template() {
  local sha; sha="$(ext_sha)"
  if db_exists bench_tmpl && [ "$(bpsql -d bench_tmpl -tAc "SELECT obj_description('bench'::regnamespace)")" = "$sha" ]; then
    return
  fi
  log "creating the template database bench_tmpl"
  db_exists bench_tmpl && bpsql -d postgres -c "DROP DATABASE bench_tmpl" >/dev/null
  bpsql -d postgres -c "CREATE DATABASE bench_tmpl" >/dev/null
  bpsql -d bench_tmpl -f "$BENCH_SRC/sql/template.sql" >/dev/null
  bpsql -d bench_tmpl -c "COMMENT ON SCHEMA bench IS '$sha'" >/dev/null
}

# The API's login role (cluster-wide; it needs the quota_api/quota_admin roles CREATE EXTENSION made).
api_role() { bpsql -d bench_tmpl -c "SET client_min_messages = warning" -f "$ROOT/scripts/api-role.sql" >/dev/null; }

# A fresh database for scenarios 1, 2, 4, 5 and 6 (counter rows already exist: see bench/sql/template.sql).
fresh_main() {
  db_exists bench_main && bpsql -d postgres -c "DROP DATABASE bench_main" >/dev/null
  bpsql -d postgres -c "CREATE DATABASE bench_main TEMPLATE bench_tmpl" >/dev/null
}

# Scenario 3's databases: bench_l<rows>, kept across runs (the 10M one takes minutes to generate).
ledger_db() {
  local rows=$1 db="bench_l$1" sha; sha="$(ext_sha)"
  if [ "$rows" != 0 ] && db_exists "$db" &&
    [ "$(bpsql -d "$db" -tAc "SELECT ext_sha || ':' || rows FROM bench.meta" 2>/dev/null)" = "$sha:$rows" ]; then
    echo "$db"; return
  fi
  log "generating $db: $rows ledger rows (once; reused by later runs)"
  db_exists "$db" && bpsql -d postgres -c "DROP DATABASE $db" >/dev/null
  bpsql -d postgres -c "CREATE DATABASE $db TEMPLATE bench_tmpl" >/dev/null
  bpsql -d "$db" -v rows="$rows" -v ext_sha="$sha" -f "$BENCH_SRC/sql/ledger.sql" >/dev/null
  echo "$db"
}

build() {
  local src="$ROOT" target="$DATA_DIR/target-bench"
  if [ "${BENCH_FROM_HEAD:-0}" = 1 ]; then
    src="$WORK/src"
    local head; head="$(cd "$ROOT" && git rev-parse HEAD)"
    if [ "$(cat "$src/.bench-commit" 2>/dev/null)" != "$head" ]; then
      rm -rf "$src" && mkdir -p "$src"
      (cd "$ROOT" && git archive HEAD) | tar -x -C "$src"
      echo "$head" >"$src/.bench-commit"
    fi
  fi
  log "building the API (release) and the load driver"
  (cd "$src" && CARGO_TARGET_DIR="$target" cargo build --release -q -p aiquota-api)
  API_BIN="$target/release/aiquota-api"
  (cd "$BENCH_SRC/driver" && CARGO_TARGET_DIR="$DATA_DIR/target-bench-driver" cargo build --release -q)
  DRIVER="$DATA_DIR/target-bench-driver/release/aiquota-bench-driver"
}

redis_start() {
  mkdir -p "$WORK/redis"
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    # appendfsync everysec: Redis' recommended durable setting (at most ~1 s of writes lost on a crash).
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --dir "$WORK/redis" \
      --pidfile "$WORK/redis/redis.pid" --logfile "$WORK/redis/redis.log" --save "" \
      --appendonly yes --appendfsync everysec >/dev/null
    for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
}

redis_stop() {
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; fi
}

API_PID=
api_start() { # sync
  local url="postgres://aiquota_api@127.0.0.1:$PGPORT/bench_main?options=-c%20synchronous_commit%3D$1"
  AIQUOTA_DATABASE_URL="$url" AIQUOTA_LISTEN="$API_LISTEN" AIQUOTA_JWT_SECRET="$JWT_SECRET" \
    AIQUOTA_POOL_SIZE="$HTTP_CONN" "$API_BIN" >"$WORK/api.log" 2>&1 &
  API_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://$API_LISTEN/healthz" >/dev/null 2>&1 && return
    kill -0 "$API_PID" 2>/dev/null || { cat "$WORK/api.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "the API did not become healthy" >&2; exit 1
}

api_stop() {
  [ -n "$API_PID" ] || return 0
  kill -TERM "$API_PID" 2>/dev/null || true
  wait "$API_PID" 2>/dev/null || true
  API_PID=
}

cleanup() {
  api_stop
  [ -n "${RSS_PID:-}" ] && kill "$RSS_PID" 2>/dev/null
  if [ "${BENCH_KEEP:-0}" != 1 ]; then redis_stop; cluster_stop; fi
}

# ------------------------------------------------------------------------------------------------ runners

# Records one run: meta (JSON object) merged with the result (JSON object).
record() { "$PY" "$BENCH_SRC/bench.py" append "$RUNS" "$1" "$2"; }

summary() { # label result-json
  "$PY" -c 'import json,sys; r=json.loads(sys.argv[2]); print("    %-48s %9.0f/s  p50 %7.2f ms  p99 %7.2f ms" % (sys.argv[1], r["tps"] or 0, r["p50_ms"] or 0, r["p99_ms"] or 0))' "$1" "$2" >&2
}

# pgbench: a warm-up run, then the measured run with per-transaction logs (latency percentiles).
# Usage: pgb META_JSON SYNC CLIENTS DB SCRIPT [pgbench args...]; PGOPTS_EXTRA adds server options.
pgb() {
  local meta=$1 sync=$2 n=$3 db=$4 script=$5; shift 5
  local dir jobs=$(( n < 2 ? n : 2 )) res
  dir="$(mktemp -d "$WORK/run.XXXXXX")"
  local opts="-c synchronous_commit=$sync ${PGOPTS_EXTRA:-}"
  bpsql -d "$db" -c "CHECKPOINT" >/dev/null
  local common=(-n -M prepared -c "$n" -j "$jobs" --random-seed="$SEED" -D users="$USERS" "$@" -f "$BENCH_SRC/pgbench/$script" "$db")
  (cd "$dir" && PGOPTIONS="$opts" pgbench -T "$WARMUP" "${common[@]}" >warm.txt 2>&1) ||
    { cat "$dir/warm.txt" >&2; exit 1; }
  (cd "$dir" && PGOPTIONS="$opts" pgbench -T "$DURATION" --log --log-prefix=pgbench_log "${common[@]}" >out.txt 2>&1) ||
    { cat "$dir/out.txt" >&2; exit 1; }
  res="$("$PY" "$BENCH_SRC/bench.py" pgbench "$dir/out.txt" "$dir")"
  record "$meta" "$res"
  summary "$(echo "$meta" | "$PY" -c 'import json,sys; m=json.load(sys.stdin); print(m["contender"], m.get("ledger_rows", ""), "sync=" + m["sync"])')" "$res"
  rm -rf "$dir"
}

meta() { # scenario contender sync clients [extra json fields]
  printf '{"scenario":"%s","contender":"%s","sync":"%s","clients":%s%s}' "$1" "$2" "$3" "$4" "${5:+,$5}"
}

# ------------------------------------------------------------------------------------------------ scenarios

s1() {
  log "scenario 1: quota.consume vs the plain UPDATE floor, $USERS users, $CLIENTS clients"
  for sync in $SYNCS; do
    pgb "$(meta s1 consume "$sync" "$CLIENTS")" "$sync" "$CLIENTS" bench_main consume.sql
    pgb "$(meta s1 limiter "$sync" "$CLIENTS")" "$sync" "$CLIENTS" bench_main limiter.sql
    pgb "$(meta s1 limiter_definer "$sync" "$CLIENTS")" "$sync" "$CLIENTS" bench_main limiter_definer.sql
    pgb "$(meta s1 minimal_writes "$sync" "$CLIENTS")" "$sync" "$CLIENTS" bench_main minimal_writes.sql
    pgb "$(meta s1 floor "$sync" "$CLIENTS")" "$sync" "$CLIENTS" bench_main floor.sql
    pgb "$(meta s1 check "$sync" "$CLIENTS")" "$sync" "$CLIENTS" bench_main check.sql
    pgb "$(meta s1 status "$sync" "$CLIENTS")" "$sync" "$CLIENTS" bench_main status.sql
  done
}

s2() {
  log "scenario 2: hot user, $HOT_CLIENTS clients on one team budget vs one plain row"
  for sync in $SYNCS; do
    pgb "$(meta s2 consume "$sync" "$HOT_CLIENTS")" "$sync" "$HOT_CLIENTS" bench_main consume_hot.sql
    pgb "$(meta s2 limiter "$sync" "$HOT_CLIENTS")" "$sync" "$HOT_CLIENTS" bench_main limiter_hot.sql
    pgb "$(meta s2 limiter_definer "$sync" "$HOT_CLIENTS")" "$sync" "$HOT_CLIENTS" bench_main limiter_definer_hot.sql
    pgb "$(meta s2 consume_8 "$sync" "$CLIENTS")" "$sync" "$CLIENTS" bench_main consume_hot.sql
    pgb "$(meta s2 limiter_8 "$sync" "$CLIENTS")" "$sync" "$CLIENTS" bench_main limiter_hot.sql
    pgb "$(meta s2 minimal_writes "$sync" "$HOT_CLIENTS")" "$sync" "$HOT_CLIENTS" bench_main minimal_writes_hot.sql
    pgb "$(meta s2 floor "$sync" "$HOT_CLIENTS")" "$sync" "$HOT_CLIENTS" bench_main floor_hot.sql
  done
}

s3() {
  log "scenario 3: consume and the count-today design as the ledger grows ($LEDGER_SIZES rows)"
  local rows db size
  for rows in $LEDGER_SIZES; do
    db="$(ledger_db "$rows")"
    size="$(bpsql -d "$db" -tAc "SELECT pg_size_pretty(pg_database_size(current_database())) || ' (ledger ' || pg_size_pretty(pg_total_relation_size('quota.ledger')) || ')'")"
    for sync in $SYNCS; do
      PGOPTS_EXTRA="-c quota.now=${S3_NOW// /T}" \
        pgb "$(meta s3 consume "$sync" "$CLIENTS" "\"ledger_rows\":$rows,\"db_size\":\"$size\"")" "$sync" "$CLIENTS" "$db" consume.sql
      pgb "$(meta s3 count_today "$sync" "$CLIENTS" "\"ledger_rows\":$rows")" "$sync" "$CLIENTS" "$db" count_today.sql \
        -D day_start="$S3_DAY_START" -D day_end="$S3_DAY_END" -D now="$S3_NOW"
    done
  done
}

driver() { # meta sync mode
  local res
  "$DRIVER" --mode "$3" --pg "postgres://postgres@127.0.0.1:$PGPORT/bench_main" --redis "127.0.0.1:$REDIS_PORT" \
    --clients "$CLIENTS" --duration "$WARMUP" --warmup 0 --users "$USERS" --sync "$2" --seed "$SEED" >/dev/null
  bpsql -d bench_main -c "CHECKPOINT" >/dev/null
  res="$("$DRIVER" --mode "$3" --pg "postgres://postgres@127.0.0.1:$PGPORT/bench_main" --redis "127.0.0.1:$REDIS_PORT" \
    --clients "$CLIENTS" --duration "$DURATION" --warmup 0 --users "$USERS" --sync "$2" --seed "$SEED")"
  record "$1" "$res"
  summary "$3 sync=$2" "$res"
}

s4() {
  log "scenario 4: job insert + decision in one PostgreSQL transaction vs Redis counter + PostgreSQL insert"
  redis_start
  for sync in $SYNCS; do
    driver "$(meta s4 one_store "$sync" "$CLIENTS")" "$sync" one-store
    driver "$(meta s4 one_store_cte "$sync" "$CLIENTS")" "$sync" one-store-cte
    driver "$(meta s4 one_store_limiter "$sync" "$CLIENTS")" "$sync" one-store-limiter
    driver "$(meta s4 two_store "$sync" "$CLIENTS")" "$sync" two-store
  done
  redis_stop
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

wrk_run() { # seconds think_ms -> result json
  local out; out="$(mktemp "$WORK/wrk.XXXXXX")"
  wrk -t 2 -c "$HTTP_CONN" -d "${1}s" --timeout 10s -s "$BENCH_SRC/wrk/consume.lua" "http://$API_LISTEN" \
    -- "$WORK/tokens.txt" "$2" >"$out" 2>&1 || { cat "$out" >&2; exit 1; }
  "$PY" "$BENCH_SRC/bench.py" wrk "$out"
  rm -f "$out"
}

s5() {
  log "scenario 5: POST /v1/quota/consume through the API vs the same decision over SQL, $HTTP_CONN connections"
  if [ ! -s "$WORK/tokens.txt" ] || [ "$(wc -l <"$WORK/tokens.txt")" != "$HTTP_USERS" ]; then
    : >"$WORK/tokens.txt"
    for i in $(seq 1 "$HTTP_USERS"); do
      AIQUOTA_JWT_SECRET="$JWT_SECRET" "$API_BIN" token --sub "u$i" --ttl 31536000 >>"$WORK/tokens.txt"
    done
  fi
  local sync res idle peak think probe sat
  for sync in $SYNCS; do
    api_start "$sync"
    idle="$(rss_kb "$API_PID")"
    wrk_run "$WARMUP" 0 >/dev/null
    : >"$WORK/rss.txt"
    (while kill -0 "$API_PID" 2>/dev/null; do rss_kb "$API_PID" >>"$WORK/rss.txt"; sleep 0.2; done) &
    RSS_PID=$!
    bpsql -d bench_main -c "CHECKPOINT" >/dev/null
    res="$(wrk_run "$DURATION" 0)"
    kill "$RSS_PID" 2>/dev/null; wait "$RSS_PID" 2>/dev/null || true; RSS_PID=
    peak="$(sort -n "$WORK/rss.txt" | tail -1)"
    record "$(meta s5 api "$sync" "$HTTP_CONN" "\"rss_idle_kb\":$idle,\"rss_peak_kb\":${peak:-0}")" "$res"
    summary "api sync=$sync" "$res"
    # Half of saturation: a think time per connection so that connections / (think + latency) = saturation / 2,
    # calibrated with a short probe (latency at half load is far below latency at saturation).
    think="$("$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); print(max(1, round(int(sys.argv[2])*1000/(r["tps"]/2))))' "$res" "$HTTP_CONN")"
    probe="$(wrk_run "$WARMUP" "$think")"
    think="$("$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); p=json.loads(sys.argv[3]); print(max(1, round(int(sys.argv[2])*1000/(r["tps"]/2) - p["p50_ms"])))' "$res" "$HTTP_CONN" "$probe")"
    sat="$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["tps"])' "$res")"
    res="$(wrk_run "$DURATION" "$think")"
    res="$("$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); r["of_saturation"]=round(r["tps"]/float(sys.argv[2]),2); print(json.dumps(r))' "$res" "$sat")"
    record "$(meta s5 api_half "$sync" "$HTTP_CONN" "\"think_ms\":$think")" "$res"
    summary "api at ~half saturation (think ${think} ms) sync=$sync" "$res"
    api_stop
    USERS=$HTTP_USERS pgb "$(meta s5 sql "$sync" "$HTTP_CONN")" "$sync" "$HTTP_CONN" bench_main consume_http.sql
  done
}

s6() {
  log "scenario 6: reserve/commit pairs, $CLIENTS clients"
  for sync in $SYNCS; do
    pgb "$(meta s6 reserve_commit "$sync" "$CLIENTS")" "$sync" "$CLIENTS" bench_main reserve_commit.sql
    pgb "$(meta s6 consume "$sync" "$CLIENTS")" "$sync" "$CLIENTS" bench_main consume.sql
  done
}

# ------------------------------------------------------------------------------------------------ report

machine() {
  local commit dirty
  commit="$(cd "$ROOT" && git rev-parse --short HEAD)"
  [ "${BENCH_FROM_HEAD:-0}" = 1 ] || { (cd "$ROOT" && git diff --quiet HEAD -- api extension) || dirty=" (+ uncommitted changes in the working tree)"; }
  "$PY" - "$WORK/machine.json" <<PY
import json, os, platform, subprocess, sys
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return None
settings = sh("""$PGBIN/psql -X -h 127.0.0.1 -p $PGPORT -U postgres -d postgres -tA -c "SELECT name || ' = ' || current_setting(name) FROM pg_settings WHERE name IN ('shared_buffers','effective_cache_size','work_mem','wal_buffers','max_wal_size','checkpoint_timeout','fsync','full_page_writes','wal_sync_method','jit','max_connections','autovacuum') ORDER BY name" """).splitlines()
m = {
  "date": sh("date -u '+%Y-%m-%d %H:%M UTC'"),
  "quick": "${BENCH_QUICK:-0}" == "1",
  "duration_s": $DURATION, "warmup_s": $WARMUP,
  "nproc": int(sh("nproc") or 0),
  "cpu": sh("lscpu | sed -n 's/^Model name: *//p' | head -1"),
  "memory": sh("free -h | awk '/^Mem:/ {print \$2}'"),
  "kernel": platform.release(),
  "postgres": sh("$PGBIN/postgres --version"),
  "pgbench": sh("pgbench --version"),
  "redis": sh("redis-server --version | cut -d' ' -f1-3"),
  "wrk": sh("wrk -v 2>&1 | head -1 | cut -d' ' -f1-2"),
  "aiquota_commit": "$commit${dirty:-}",
  "extension_build": "$(so_kind) build of aiquota.so (sha256 $(so_sha)$( [ "${SO_SHA_START:-}" = "$(so_sha)" ] || echo ", REPLACED during the run: was ${SO_SHA_START:-?}"))",
  "settings": settings + ["synchronous_commit = on | off (per run, every contender alike)"],
  "clients": {"default": $CLIENTS, "hot": $HOT_CLIENTS, "http": $HTTP_CONN},
}
json.dump(m, open(sys.argv[1], "w"), indent=2)
PY
}

report() {
  "$PY" "$BENCH_SRC/bench.py" report "$RUNS" "$WORK/machine.json" "$BENCH_SRC/notes.md" \
    "$BENCH_SRC/results.json" "$ROOT/docs/benchmarks.md"
  log "wrote bench/results.json and docs/benchmarks.md"
}

run() {
  tools
  build
  trap cleanup EXIT
  snapshot
  cluster_start
  template
  api_role
  fresh_main
  : >"$RUNS"
  SO_SHA_START="$(so_sha)"
  local s
  for s in $SCENARIOS; do "s$s"; done
  machine
  report
}

case "${1:-run}" in
  run) run ;;
  stop) api_stop; redis_stop; cluster_stop ;;
  report) report ;; # re-renders the report of the last run (e.g. after editing bench/notes.md)
  # Re-runs scenarios against the running bench cluster with the binaries already built (for iterating).
  again) API_BIN="$DATA_DIR/target-bench/release/aiquota-api"; DRIVER="$DATA_DIR/target-bench-driver/release/aiquota-bench-driver"
    trap cleanup EXIT; [ -x "$SPG_CONFIG" ] || snapshot; cluster_start; template; api_role; fresh_main; : >"$RUNS"; SO_SHA_START="$(so_sha)"
    for s in $SCENARIOS; do "s$s"; done; machine; report ;;
  *) echo "usage: $0 [run | stop | report | again]" >&2; exit 2 ;;
esac
