#!/usr/bin/env bash
# Foreground process of `make run` (the cluster is already up): builds and starts the HTTP API, prints how to
# call it with a freshly minted token, and on Ctrl-C stops the API (gracefully) and then the cluster.
source "$(dirname "$0")/env.sh"

export AIQUOTA_DATABASE_URL="${AIQUOTA_DATABASE_URL:-$("$ROOT/scripts/db.sh" api-url)}"
export AIQUOTA_LISTEN="${AIQUOTA_LISTEN:-127.0.0.1:8080}"
if [ -z "${AIQUOTA_JWT_SECRET:-}" ] && [ -z "${AIQUOTA_JWKS_URL:-}" ]; then
  export AIQUOTA_JWT_SECRET="aiquota-dev-secret-do-not-use-in-production"
  printf '\033[1;31m%s\033[0m\n' \
    "!! AIQUOTA_JWT_SECRET is not set: using the PUBLIC development secret \"$AIQUOTA_JWT_SECRET\"." \
    "!! Anyone can mint tokens for it. Set AIQUOTA_JWT_SECRET (or AIQUOTA_JWKS_URL) for anything but local development." >&2
fi

# The demo page, the admin key for the dashboard and the local Razorpay stand-in (development only).
DEMO=""
if "$ROOT/scripts/setup-web.sh" --no-browser && (cd "$ROOT/web" && npm run --silent build >/dev/null); then
  export AIQUOTA_DEMO_DIR="${AIQUOTA_DEMO_DIR:-$ROOT/web/dist/demo}"
  DEMO=1
else
  log "the web kit did not build: no demo page"
fi
ADMIN_KEY=""
if [ -z "${AIQUOTA_ADMIN_KEYS:-}" ]; then
  ADMIN_KEY="aq_admin_dev_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  export AIQUOTA_ADMIN_KEYS="$(printf %s "$ADMIN_KEY" | sha256sum | cut -d' ' -f1)"
fi
STANDIN_PID=""
if [ -n "$DEMO" ] && [ -z "${AIQUOTA_RAZORPAY_KEY_ID:-}" ]; then
  STANDIN_PORT="${AIQUOTA_STANDIN_PORT:-8090}"
  export AIQUOTA_RAZORPAY_KEY_ID=rzp_test_standin
  export AIQUOTA_RAZORPAY_KEY_SECRET="standin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
  export AIQUOTA_RAZORPAY_API_BASE="http://127.0.0.1:$STANDIN_PORT"
  export AIQUOTA_PUBLIC_URL="${AIQUOTA_PUBLIC_URL:-http://$AIQUOTA_LISTEN}"
  node "$ROOT/web/scripts/razorpay-standin.mjs" "$STANDIN_PORT" >/dev/null &
  STANDIN_PID=$!
fi

log "building the API (release)"
(cd "$ROOT" && cargo build --release -q -p aiquota-api)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/aiquota-api"

"$BIN" &
API_PID=$!
stop_all() {
  trap - INT TERM
  echo
  kill -TERM "$API_PID" 2>/dev/null || true
  wait "$API_PID" 2>/dev/null || true
  [ -z "$STANDIN_PID" ] || kill "$STANDIN_PID" 2>/dev/null || true
  "$ROOT/scripts/db.sh" stop
  exit 0
}
trap stop_all INT TERM

URL="http://$AIQUOTA_LISTEN"
for _ in $(seq 1 100); do
  curl -fsS "$URL/healthz" >/dev/null 2>&1 && break
  kill -0 "$API_PID" 2>/dev/null || { [ -z "$STANDIN_PID" ] || kill "$STANDIN_PID"; "$ROOT/scripts/db.sh" stop; exit 1; }
  sleep 0.1
done

if [ -n "${AIQUOTA_JWT_SECRET:-}" ]; then
  TOKEN="$("$BIN" token --sub alice --ttl 86400)"
  ADMIN="$("$BIN" token --sub ops --role service_role --ttl 86400)"
  cat <<TXT

aiquota is running.
  API:      $URL   (OpenAPI: $URL/openapi.json, metrics: $URL/metrics)
  psql:     psql -h $PGHOST -p $PGPORT -U postgres $DBNAME

  Tokens (valid 24 h; mint more with: $BIN token --sub USER [--role service_role]):
    export TOKEN=$TOKEN
    export ADMIN=$ADMIN

  In a browser:
TXT
  [ -z "$DEMO" ] || echo "    Demo page (alice's meter, live): $URL/demo/#token=$TOKEN"
  [ -z "$STANDIN_PID" ] || echo "    Upgrades pay on the local Razorpay stand-in at $AIQUOTA_RAZORPAY_API_BASE (no money moves)"
  if [ -n "$ADMIN_KEY" ]; then
    echo "    Admin dashboard: $URL/admin/   sign in with the admin key $ADMIN_KEY"
  else
    echo "    Admin dashboard: $URL/admin/   sign in with one of your AIQUOTA_ADMIN_KEYS or the ADMIN token"
  fi
  cat <<TXT

  Try:
    curl -s $URL/v1/quota -H "Authorization: Bearer \$TOKEN"
    curl -s -X POST $URL/v1/quota/consume -H "Authorization: Bearer \$TOKEN" \\
         -H 'Content-Type: application/json' -d '{"meter":"ai_requests","amount":1}'
    curl -sN $URL/v1/quota/events -H "Authorization: Bearer \$TOKEN"
    curl -s -X PUT $URL/v1/admin/users/alice/plan -H "Authorization: Bearer \$ADMIN" \\
         -H 'Content-Type: application/json' -d '{"plan":"pro"}'

Press Ctrl-C to stop the API and the cluster.
TXT
else
  printf '\naiquota is running at %s (tokens come from your JWKS issuer). Ctrl-C stops it.\n' "$URL"
fi
wait "$API_PID"
# The API exited by itself (not Ctrl-C): stop the stand-in and the cluster too.
[ -z "$STANDIN_PID" ] || kill "$STANDIN_PID" 2>/dev/null || true
"$ROOT/scripts/db.sh" stop
