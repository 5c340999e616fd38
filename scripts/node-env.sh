#!/usr/bin/env bash
# The Node test clients (tests/copilotkit: the real CopilotKit runtime) installed from the committed
# package-lock.json with `npm ci`. Idempotent and fast: it reinstalls only when the lock file changed.
set -euo pipefail
cd "$(dirname "$0")/../tests/copilotkit"
stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -d node_modules ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    source ../../scripts/env.sh
    log "installing Debian packages nodejs npm"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
echo "node test clients installed in tests/copilotkit/node_modules"
