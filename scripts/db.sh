#!/usr/bin/env bash
# The private development cluster under .data/pg on 127.0.0.1:$PGPORT.
# Usage: scripts/db.sh start | stop | status | url | api-url
source "$(dirname "$0")/env.sh"

ext_script() { echo "$("$PG_CONFIG" --sharedir)/extension/aiquota--$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml").sql"; }

start() {
  mkdir -p "$DATA_DIR"
  if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
    log "initialising the private cluster in $PGDATA_DIR (owner: $RUNAS)"
    mkdir -p "$PGDATA_DIR" "$DATA_DIR/run"
    [ "$(id -u)" = 0 ] && chown "$RUNAS" "$PGDATA_DIR" "$DATA_DIR/run"
    chmod 700 "$PGDATA_DIR"
    as_pg "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$PGDATA_DIR/postgresql.conf" <<CONF
# aiquota development cluster: loopback only, trust auth (see pg_hba.conf).
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$DATA_DIR/run'
max_connections = 300
max_prepared_transactions = 8
shared_buffers = 256MB
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
CONF
    cat >"$PGDATA_DIR/pg_hba.conf" <<HBA
local all all trust
host  all all 127.0.0.1/32 trust
HBA
  fi
  # A cluster made before the setting existed gets it too (the isolation spec creation_turn prepares a
  # transaction), with a restart when it is running.
  if ! grep -q '^max_prepared_transactions' "$PGDATA_DIR/postgresql.conf"; then
    echo "max_prepared_transactions = 8" >>"$PGDATA_DIR/postgresql.conf"
    if as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
      log "restarting PostgreSQL for max_prepared_transactions"
      as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -m fast -w -t 60 restart >/dev/null
    fi
  fi
  if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
    log "starting PostgreSQL on $PGHOST:$PGPORT"
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w -t 60 start >/dev/null
  fi
  psql_db -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'" | grep -q 1 ||
    psql_db -d postgres -c "CREATE DATABASE $DBNAME"

  # Same version but a new build of the script: a development database is recreated so it matches the code.
  local script sum installed
  script="$(ext_script)"
  sum="$(sha256sum "$script" | cut -d' ' -f1)"
  installed="$(psql_db -d "$DBNAME" -tAc "SELECT extversion FROM pg_extension WHERE extname = 'aiquota'")"
  if [ -z "$installed" ]; then
    psql_db -d "$DBNAME" -c "CREATE EXTENSION aiquota"
  elif [ "$(cat "$DATA_DIR/aiquota.sql.sha256" 2>/dev/null)" != "$sum" ]; then
    # An update only when there is a path from the installed version to the new default one; otherwise (same
    # version, new build) the development database is recreated so it matches the code.
    if psql_db -d "$DBNAME" -tAc "SELECT 1 FROM pg_extension_update_paths('aiquota') WHERE source = '$installed' AND target = (SELECT default_version FROM pg_available_extensions WHERE name = 'aiquota') AND path IS NOT NULL" | grep -q 1; then
      psql_db -d "$DBNAME" -c "ALTER EXTENSION aiquota UPDATE"
    else
      log "the extension's SQL changed without a version bump: recreating it in the development database"
      psql_db -d "$DBNAME" -c "DROP EXTENSION aiquota CASCADE" -c "CREATE EXTENSION aiquota"
    fi
  fi
  echo "$sum" >"$DATA_DIR/aiquota.sql.sha256"
  # The HTTP API's login role (needs the quota_api/quota_admin roles the extension creates).
  psql_db -d "$DBNAME" -c "SET client_min_messages = warning" -f "$ROOT/scripts/api-role.sql"
  log "database ready: psql -h $PGHOST -p $PGPORT -U postgres $DBNAME"
}

stop() {
  if [ -f "$PGDATA_DIR/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null
    log "stopped the private cluster"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status ;;
  url) echo "postgres://postgres@$PGHOST:$PGPORT/$DBNAME" ;;
  api-url) echo "postgres://aiquota_api@$PGHOST:$PGPORT/$DBNAME" ;;
  *) echo "usage: $0 start|stop|status|url|api-url" >&2; exit 2 ;;
esac
