#!/usr/bin/env bash
# `make bench`: aiquota's benchmarks, every contender side by side in one run on one private cluster.
#
# The scenarios and contenders are data (bench/scenarios/*.toml, run settings and databases in bench/bench.toml);
# bench/bench.py reads them, runs pgbench, the load driver (bench/driver) and wrk, and writes bench/results.json
# and docs/benchmarks.md. This script only prepares and starts and stops things: the tools (Debian's pgbench,
# redis-server, wrk), the release API and the driver, a bench cluster under .data/bench-pg on 127.0.0.1:$PGPORT
# (default 55442) tuned by bench/postgresql.bench.conf, and, when bench.py asks (`service`), a Redis and the API.
# Never part of `make test`; it never touches the development cluster (.data/pg).
#
# Knobs (environment; their defaults are in bench/bench.toml):
#   BENCH_QUICK=1          3 s per run after 1 s of warm-up (~3-4 minutes once built and the 10M-row ledger exists)
#   BENCH_DURATION=S       seconds measured per run (default 15, quick 3); BENCH_WARMUP=S (default 5, quick 1; 0: none)
#   BENCH_SYNC="on off"    synchronous_commit values to run
#   BENCH_SCENARIOS="1 2 3 4 5 6"
#   BENCH_LEDGER_SIZES="0 1000000 10000000"   history sizes of scenario 3 (generated once, then reused)
#   BENCH_CLIENTS=8        clients of scenarios 1, 3, 4, 6; scenario 2 uses BENCH_HOT_CLIENTS=32;
#                          scenario 5 BENCH_HTTP_CONNECTIONS=16 (wrk connections = pgbench clients = API pool)
#   BENCH_FROM_HEAD=1      build the API from the last commit (git archive HEAD) instead of the working tree
#   BENCH_KEEP=1           leave the bench cluster and Redis running afterwards
#   AIQUOTA_BENCH_PGPORT=55442, AIQUOTA_BENCH_REDIS_PORT=56379, AIQUOTA_BENCH_LISTEN=127.0.0.1:58080
#                          where the bench cluster, Redis and the API listen (two checkouts on one machine: set all three)
# Usage: scripts/bench.sh [run | stop | report | again | check]   (report: re-render the last run; again: re-run the
#        scenarios without building, against the running bench cluster; check: validate the scenario files)
#        scripts/bench.sh service start|stop redis | api SYNC POOL DATABASE   (bench.py's calls, one at a time)
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
API_BIN="$DATA_DIR/target-bench/release/aiquota-api"
DRIVER="$DATA_DIR/target-bench-driver/release/aiquota-bench-driver"
API_PIDFILE="$WORK/api.pid"

PY="$(command -v python3 || true)"
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
  [ -n "$PY" ] && "$PY" -c 'import tomllib' 2>/dev/null ||
    { echo "python3 (3.11 or later: tomllib) runs the scenarios" >&2; exit 1; }
  if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/aiquota.control" ]; then
    echo "the aiquota extension is not installed in $("$PG_CONFIG" --sharedir): run 'make install' first" >&2
    exit 1
  fi
}

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
  (cd "$BENCH_SRC/driver" && CARGO_TARGET_DIR="$DATA_DIR/target-bench-driver" cargo build --release -q)
}

redis_start() {
  mkdir -p "$WORK/redis"
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    # appendfsync everysec: Redis' recommended durable setting (at most ~1 s of writes lost on a crash).
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --dir "$WORK/redis" \
      --pidfile "$WORK/redis/redis.pid" --logfile "$WORK/redis/redis.log" --save "" \
      --appendonly yes --appendfsync everysec >/dev/null
  fi
  # PONG, not just a reply: while Redis replays its append-only file it answers every command with -LOADING (and
  # redis-cli still exits 0), so the driver's SCRIPT LOAD would fail.
  local _
  for _ in $(seq 1 600); do [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
  [ "$(redis-cli -p "$REDIS_PORT" flushall 2>&1)" = OK ] || { echo "Redis on $REDIS_PORT is not ready" >&2; exit 1; }
}

redis_stop() {
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; fi
}

# The API runs in the background and outlives the `service start api` call; its pid is in $API_PIDFILE.
api_start() { # sync pool-size database
  local url="postgres://aiquota_api@127.0.0.1:$PGPORT/$3?options=-c%20synchronous_commit%3D$1" pid
  mkdir -p "$WORK"
  AIQUOTA_DATABASE_URL="$url" AIQUOTA_LISTEN="$API_LISTEN" AIQUOTA_JWT_SECRET="$JWT_SECRET" \
    AIQUOTA_POOL_SIZE="$2" "$API_BIN" >"$WORK/api.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$API_PIDFILE"
  for _ in $(seq 1 100); do
    curl -fsS "http://$API_LISTEN/healthz" >/dev/null 2>&1 && return
    kill -0 "$pid" 2>/dev/null || { cat "$WORK/api.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "the API did not become healthy" >&2; exit 1
}

api_stop() {
  [ -s "$API_PIDFILE" ] || return 0
  local pid; pid="$(cat "$API_PIDFILE")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true # still there after 10 s of graceful shutdown
  rm -f "$API_PIDFILE"
}

cleanup() {
  api_stop
  if [ "${BENCH_KEEP:-0}" != 1 ]; then redis_stop; cluster_stop; fi
}

# ------------------------------------------------------------------------------------------------ run

# What bench/bench.py needs to know (bench/runner/env.py reads it).
export BENCH_ROOT="$ROOT" BENCH_WORK="$WORK" BENCH_PGBIN="$PGBIN" BENCH_API_BIN="$API_BIN" BENCH_DRIVER="$DRIVER" \
  BENCH_JWT_SECRET="$JWT_SECRET" AIQUOTA_BENCH_PGPORT="$PGPORT" AIQUOTA_BENCH_REDIS_PORT="$REDIS_PORT" \
  AIQUOTA_BENCH_LISTEN="$API_LISTEN"

scenarios() { # the scenario files, on the running bench cluster, with the binaries built
  export BENCH_SPG_CONFIG="$SPG_CONFIG"
  "$PY" "$BENCH_SRC/bench.py" run
}

run() {
  tools
  "$PY" "$BENCH_SRC/bench.py" check >/dev/null # a broken scenario file fails here, before anything is built
  build
  trap cleanup EXIT
  snapshot
  cluster_start
  scenarios
}

case "${1:-run}" in
  run) run ;;
  stop) api_stop; redis_stop; cluster_stop ;;
  report) "$PY" "$BENCH_SRC/bench.py" report ;; # re-renders the report of the last run (e.g. after editing bench/notes.md)
  check) "$PY" "$BENCH_SRC/bench.py" check ;;
  # Re-runs scenarios against the running bench cluster with the binaries already built (for iterating).
  again) trap cleanup EXIT; [ -x "$SPG_CONFIG" ] || snapshot; cluster_start; scenarios ;;
  # bench.py's calls: one service at a time; the run's cleanup stops whatever is left.
  service)
    case "${2:-}:${3:-}" in
      start:redis) redis_start ;;
      stop:redis) redis_stop ;;
      start:api) api_start "${4:?sync}" "${5:?pool size}" "${6:?database}" ;;
      stop:api) api_stop ;;
      *) echo "usage: $0 service start|stop redis | api SYNC POOL DATABASE" >&2; exit 2 ;;
    esac ;;
  *) echo "usage: $0 [run | stop | report | again | check | service ...]" >&2; exit 2 ;;
esac
