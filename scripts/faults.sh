#!/usr/bin/env bash
# The fault suite's own PostgreSQL cluster (.data/faults on 127.0.0.1:$((PGPORT + 1))), which the suite kills,
# restarts, freezes and makes read-only; the development cluster is never touched.
# Usage: scripts/faults.sh run            set up the cluster, run the integration tests' faults:: module, stop the cluster
#        scripts/faults.sh start|stop     the cluster
#        scripts/faults.sh kill9          kill -9 the postmaster and every backend (start brings it back)
#        scripts/faults.sh restart-fast | restart-immediate
#        scripts/faults.sh freeze | thaw  SIGSTOP / SIGCONT the postmaster and every backend
source "$(dirname "$0")/env.sh"
# The suite runs its tests with AIQUOTA_PGPORT set to this port, so the port is passed down as well.
FAULT_PORT="${AIQUOTA_FAULTS_PORT:-$((PGPORT + 1))}"
FAULT_DATA="$DATA_DIR/faults/pg"
FAULT_RUN="$DATA_DIR/faults/run"

ctl() { as_pg "$PGBIN/pg_ctl" -D "$FAULT_DATA" "$@"; }
fpsql() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -U postgres -h "$PGHOST" -p "$FAULT_PORT" "$@"; }
postmaster() { head -1 "$FAULT_DATA/postmaster.pid" 2>/dev/null || true; }
# The postmaster and its children, by pid (never by name: other clusters run on this machine).
cluster_pids() {
  local pm; pm="$(postmaster)"
  [ -n "$pm" ] && kill -0 "$pm" 2>/dev/null || return 0
  echo "$pm"; pgrep -P "$pm" || true
}

any_alive() { for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }

start() {
  if [ ! -f "$FAULT_DATA/PG_VERSION" ]; then
    log "initialising the fault cluster in $FAULT_DATA"
    mkdir -p "$FAULT_DATA" "$FAULT_RUN"
    [ "$(id -u)" = 0 ] && chown "$RUNAS" "$FAULT_DATA" "$FAULT_RUN"
    chmod 700 "$FAULT_DATA"
    as_pg "$PGBIN/initdb" -D "$FAULT_DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$FAULT_DATA/postgresql.conf" <<CONF
# aiquota fault-suite cluster: loopback only, trust auth; killed and restarted on purpose.
listen_addresses = '127.0.0.1'
port = $FAULT_PORT
unix_socket_directories = '$FAULT_RUN'
max_connections = 200
shared_buffers = 64MB
restart_after_crash = on
log_min_messages = warning
CONF
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$FAULT_DATA/pg_hba.conf"
  fi
  ctl status >/dev/null 2>&1 || ctl -l "$FAULT_DATA/server.log" -w -t 60 start >/dev/null
  wait_ready
}

wait_ready() {
  for _ in $(seq 1 600); do
    fpsql -d postgres -tAc "SELECT 1" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "the fault cluster did not come back" >&2; return 1
}

thaw() { local pids; pids="$(cluster_pids)"; [ -z "$pids" ] || kill -CONT $pids; }

# Thawed first: a run that failed during a freeze must not leave a stopped cluster behind.
stop() {
  [ -f "$FAULT_DATA/PG_VERSION" ] || return 0
  thaw
  if ctl status >/dev/null 2>&1; then ctl -m immediate -w stop >/dev/null; fi
}

run() {
  start
  log "fault suite on 127.0.0.1:$FAULT_PORT"
  local rc=0
  AIQUOTA_PGPORT="$FAULT_PORT" AIQUOTA_FAULTS_PORT="$FAULT_PORT" AIQUOTA_FAULTS="$ROOT/scripts/faults.sh" \
    timeout 900 cargo test -p aiquota-tests --test integration -- --ignored --test-threads=1 --nocapture faults:: || rc=$?
  stop
  return $rc
}

case "${1:-}" in
  run) run ;;
  start) start ;;
  stop) stop ;;
  kill9)
    pids="$(cluster_pids)"
    [ -n "$pids" ] && kill -9 $pids
    for _ in $(seq 1 100); do any_alive $pids || break; sleep 0.05; done
    # Every process of the cluster is gone: the lock file is stale, and start need not wonder about it.
    rm -f "$FAULT_DATA/postmaster.pid" ;;
  restart-fast) ctl -m fast -w -t 60 restart -l "$FAULT_DATA/server.log" >/dev/null; wait_ready ;;
  restart-immediate) ctl -m immediate -w -t 60 restart -l "$FAULT_DATA/server.log" >/dev/null; wait_ready ;;
  freeze) pids="$(cluster_pids)"; [ -n "$pids" ] && kill -STOP $pids ;;
  thaw) thaw ;;
  *) echo "usage: $0 run|start|stop|kill9|restart-fast|restart-immediate|freeze|thaw" >&2; exit 2 ;;
esac
