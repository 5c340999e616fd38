# aiquota: the two commands are `make run` and `make test`; everything else is a step they use.
SHELL := /bin/bash
PG_CONFIG ?= $(or $(AIQUOTA_PGBIN),/usr/lib/postgresql/15/bin)/pg_config
# release for `make run`/`make install`; `make test` installs the debug build it has just compiled anyway.
EXT_BUILD ?= --release
PGRX_TEST_DATA := $(CURDIR)/.data/pgrx-test

.PHONY: run db db-stop install setup setup-web lint test test-fast test-unit test-pg test-isolation test-regress test-upgrade test-integration test-fuzz test-faults test-web web-types psql clean

run: db ## install what is missing, build, start the private cluster and stay up (Ctrl-C stops it)
	@scripts/run.sh

db: setup ## the private cluster with the latest build installed; idempotent
	@PG_CONFIG=$(PG_CONFIG) scripts/install-ext.sh $(EXT_BUILD)
	@scripts/db.sh start

db-stop: ## stop the private cluster
	@scripts/db.sh stop

install: setup ## install the extension into the PostgreSQL 15 that PG_CONFIG names
	@PG_CONFIG=$(PG_CONFIG) scripts/install-ext.sh --release

setup: ## Debian packages, cargo-pgrx, pgrx init (each only when missing)
	@scripts/setup.sh

psql: ## a psql session on the development database
	@source scripts/env.sh && psql_db -d $$DBNAME

lint: setup ## formatting and clippy, warnings are errors
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

test: setup lint bench-check test-pg test-isolation test-regress test-upgrade test-integration test-fuzz test-faults test-web ## every test suite
	@echo "all aiquota tests passed"

test-fast: setup lint bench-check test-pg test-isolation test-regress test-integration ## the inner loop: everything but the upgrade, fuzz, fault and browser tiers
	@echo "the fast tiers passed (make test runs them all)"

test-pg: setup ## unit tests and #[pg_test]s inside a throwaway PostgreSQL managed by pgrx
	@mkdir -p $(PGRX_TEST_DATA) && if [ "$$(id -u)" = 0 ]; then chown postgres $(PGRX_TEST_DATA); fi
	cd extension && cargo pgrx test pg15 $$( [ "$$(id -u)" = 0 ] && echo --runas postgres ) --pgdata $(PGRX_TEST_DATA)

test-isolation: ## PostgreSQL isolation specs against the private cluster
	@$(MAKE) --no-print-directory db EXT_BUILD=
	@scripts/isolation.sh

test-regress: ## golden SQL tests of quota.* (pg_regress) and the docs' SQL examples, against the private cluster
	@$(MAKE) --no-print-directory db EXT_BUILD=
	@scripts/regress.sh

test-upgrade: ## every earlier version updated with ALTER EXTENSION aiquota UPDATE equals a fresh install of this one
	@$(MAKE) --no-print-directory db EXT_BUILD=
	@scripts/upgrade-test.sh

test-integration: ## concurrency and invariant tests with real sessions against the private cluster
	@$(MAKE) --no-print-directory db EXT_BUILD=
	@scripts/py-env.sh
	@scripts/node-env.sh
	cargo test -p aiquota-tests -- --test-threads=1 --skip web:: --skip fuzz::

test-fuzz: ## schemathesis over /openapi.json (user and admin token) against the real API on a fresh database: no 5xx, no schema violation; AIQUOTA_FUZZ_EXAMPLES per operation (default 50)
	@$(MAKE) --no-print-directory db EXT_BUILD=
	@scripts/py-env.sh
	cargo test -p aiquota-tests --test integration -- --test-threads=1 fuzz::

setup-web: ## node, npm, Debian's chromium and web/node_modules (npm ci), each only when missing
	@scripts/setup-web.sh

test-web: setup-web ## the web kit: tsc, unit tests, build, generated types vs /openapi.json, browser tests in chromium
	@$(MAKE) --no-print-directory db EXT_BUILD=
	@scripts/test-web.sh

web-types: setup-web ## regenerate web/src/generated/openapi.ts from the API's OpenAPI document
	cargo run -q -p aiquota-api -- openapi > web/.openapi.json
	cd web && node scripts/gen-types.mjs .openapi.json && rm -f .openapi.json

test-faults: ## kill -9, restarts, a stall, a locked user, two API instances and read-only mode, on a cluster of its own (port AIQUOTA_PGPORT+1)
	@$(MAKE) --no-print-directory db EXT_BUILD=
	@scripts/faults.sh run

clean: db-stop
	@scripts/faults.sh stop
	rm -rf .data target

.PHONY: bench bench-check
bench: ## benchmarks (bench/scenarios/*.toml) on a separate bench cluster (port $AIQUOTA_BENCH_PGPORT, default 55442); writes docs/benchmarks.md and bench/results.json. BENCH_QUICK=1 for a ~3 min run. Not part of `make test`.
	@scripts/bench.sh run

bench-check: ## the benchmark's files without a cluster: scenario files valid, runner tests, docs/benchmarks.md rendered from bench/results.json (1 s)
	@scripts/bench.sh check >/dev/null
	@python3 -B -m unittest discover -s bench/tests
