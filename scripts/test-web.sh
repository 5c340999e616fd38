#!/usr/bin/env bash
# `make test-web`: the web kit's type check, unit tests and build, then (against the private cluster) the
# check that its generated types match the API's /openapi.json and the browser tests in chromium.
source "$(dirname "$0")/env.sh"
cd "$ROOT/web"
log "web: lint (tsc)"
npm run --silent lint
log "web: unit tests"
npm test --silent
log "web: build"
npm run --silent build
cd "$ROOT"
log "web: generated types and browser tests (chromium)"
cargo test -p aiquota-tests --test integration -- --test-threads=1 web::
