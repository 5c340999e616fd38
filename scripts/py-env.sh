#!/usr/bin/env bash
# The Python test clients' virtualenv (.data/py) with tests/python/requirements.txt installed. Idempotent and
# fast: it reinstalls only when the requirements file changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.data/py
req=tests/python/requirements.txt
stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    exit 0
fi
if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
    source scripts/env.sh
    log "installing Debian package python3-venv"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --requirement "$req"
echo "$want" > "$stamp"
echo "python test clients installed in $venv"
