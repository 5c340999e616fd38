#!/usr/bin/env bash
# Installs what building and testing aiquota needs, skipping whatever is already there.
source "$(dirname "$0")/env.sh"

need_pkgs=()
for pkg in postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo pkg-config; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$pkg")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_pkgs[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if ! cargo pgrx --version 2>/dev/null | grep -q " ${PGRX_VERSION}\$"; then
  log "installing cargo-pgrx ${PGRX_VERSION} (about 10 minutes on 2 cores, once)"
  cargo install cargo-pgrx --version "${PGRX_VERSION}" --locked
fi

# Point pgrx at the system PostgreSQL 15 (the default `cargo pgrx init` would download sources).
if ! grep -q "pg${PG_MAJOR}" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
  log "cargo pgrx init --pg${PG_MAJOR} ${PG_CONFIG}"
  cargo pgrx init --pg${PG_MAJOR} "$PG_CONFIG" >/dev/null
fi
