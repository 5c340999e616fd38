#!/usr/bin/env bash
# Installs what the web kit (web/) needs, skipping whatever is already there: node and npm, Debian's chromium
# for the browser tests (skipped with --no-browser, as `make run` does), and web/node_modules from the
# committed lockfile (`npm ci`, again only when the lockfile is newer than the install).
source "$(dirname "$0")/env.sh"

need=()
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ "${1:-}" != "--no-browser" ] && [ ! -x /usr/bin/chromium ]; then need+=(chromium); fi
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

stamp="$ROOT/web/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$ROOT/web/package-lock.json" -nt "$stamp" ]; then
  log "npm ci (web/)"
  (cd "$ROOT/web" && npm ci --no-audit --no-fund --loglevel=error)
fi
