# Shared settings for aiquota's scripts; sourced, never run.
# Versions and ports are stated once here (the pgrx version is read from extension/Cargo.toml).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_MAJOR=15
# AIQUOTA_PGBIN: another (relocated) PostgreSQL 15, so that two checkouts never install over each other.
PGBIN="${AIQUOTA_PGBIN:-/usr/lib/postgresql/${PG_MAJOR}/bin}"
PG_CONFIG="${PG_CONFIG:-${PGBIN}/pg_config}"
[ -x "$PG_CONFIG" ] || PG_CONFIG="$(command -v pg_config || echo /usr/bin/pg_config)"
PGRX_VERSION="$(sed -n 's/^pgrx = "=\(.*\)"/\1/p' "$ROOT/extension/Cargo.toml")"
DATA_DIR="$ROOT/.data"
PGDATA_DIR="$DATA_DIR/pg"
PGPORT="${AIQUOTA_PGPORT:-55432}"
PGHOST=127.0.0.1
DBNAME="${AIQUOTA_DB:-aiquota}"
export PGHOST PGPORT

# PostgreSQL refuses to run as root: when root, the cluster belongs to the unprivileged `postgres` user.
if [ "$(id -u)" = 0 ]; then RUNAS=postgres; else RUNAS="$(id -un)"; fi
as_pg() {
  if [ "$(id -un)" = "$RUNAS" ]; then "$@"; else sudo -u "$RUNAS" -- "$@"; fi
}
# Commands that need root on a developer laptop (apt-get, copying into PostgreSQL's directories).
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}
psql_db() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -U postgres -h "$PGHOST" -p "$PGPORT" "$@"; }
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
