#!/usr/bin/env bash
# Builds the extension and installs it into the PostgreSQL that PG_CONFIG names.
# Usage: scripts/install-ext.sh [--release]
source "$(dirname "$0")/env.sh"
args=(--pg-config "$PG_CONFIG")
[ "${1:-}" = "--release" ] && args+=(--release)
# As a normal user the files go into root-owned directories: pgrx copies them with sudo.
[ "$(id -u)" = 0 ] || args+=(--sudo)
log "installing the aiquota extension into $("$PG_CONFIG" --sharedir)"
cd "$ROOT/extension" && cargo pgrx install "${args[@]}" >/dev/null
# Upgrade scripts (aiquota--<from>--<to>.sql) and the frozen install scripts of earlier versions
# (aiquota--<version>.sql) are plain SQL kept in sql/; they sit beside the script pgrx generates.
# The current version's install script is always the generated one: a frozen script never replaces it.
current="aiquota--$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml").sql"
shopt -s nullglob
for script in "$ROOT"/sql/aiquota--*.sql; do
  [ "$(basename "$script")" = "$current" ] && continue
  as_root install -m 644 "$script" "$("$PG_CONFIG" --sharedir)/extension/"
done
