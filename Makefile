# Nexus — two commands: `make run` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PG_BIN ?= /usr/lib/postgresql/15/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export PG_BIN

# Read DATABASE_URL (and the rest) from .env when present, so every target agrees with the app.
ifneq (,$(wildcard .env))
include .env
export
endif

.PHONY: help install install-dev postgres db migrate demo run serve stop backup backups restore test test-pgbouncer test-tools nodejs ts-client check postman psql pgcli createadmin outbox media-migrate bench-data bench soak clean

help:
	@echo "make run          install, start the local PostgreSQL, migrate, load demo data, serve on http://$(HOST):$(PORT)"
	@echo "make serve        serve only (production: WORKERS=n, defaults to the cores; refuses development defaults)"
	@echo "make test         install and run the test suite (its own PostgreSQL clusters)"
	@echo "make stop         stop the local PostgreSQL cluster"
	@echo "make backup       a base backup of the local cluster now (its WAL is archived all along; TYPE=incr|diff)"
	@echo "make backups      the local cluster's backups, and the moments make restore can reach"
	@echo "make restore TIME='2026-12-06 21:30:00+00'   the local cluster as it was then (TIME=latest: all archived)"
	@echo "make migrate      apply migrations (functions and policies are re-created every time)"
	@echo "make psql|pgcli   a shell on the database as the owner (the DBA's door)"
	@echo "make createadmin EMAIL=... PASSWORD=...   create an administrator"
	@echo "make outbox       the newest emails kept locally (no SMTP_HOST set); N=20 for more"
	@echo "make media-migrate   copy the local media folder into S3_BUCKET (MEDIA_STORAGE=s3); safe to run twice"
	@echo "make check        ruff (lint + format check) and mypy"
	@echo "make postman      the running API's OpenAPI document as a Postman collection (OPENAPI_URL= for another API)"
	@echo "make test-pgbouncer   the API and SQL tests through a PgBouncer in transaction pooling"
	@echo "make bench-data / make bench   the benchmark data set, and the benchmark"
	@echo "make bench-tracing   what tracing costs a request, off and on, through the app (a throwaway PostgreSQL, ~3 min)"
	@echo "make soak         the whole marketplace for SOAK_MINUTES (20) under faults, then its invariants (soak/; docs/soak.png)"

# What running needs (make run, serve, migrate); the test and developer tools come on top,
# only for the targets that use them (test, check, bench, pgcli).
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	$(PY) -m pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: $(VENV)/.installed postgres
install-dev: $(VENV)/.installed-dev postgres

# The PostgreSQL 15 server binaries, contrib (pgcrypto, btree_gist, pg_trgm, pg_stat_statements) and
# PostGIS, and pgBackRest, which archives the local cluster's WAL and backs it up (without it: no backups).
postgres:
	@if [ ! -x "$(PG_BIN)/initdb" ] || [ ! -f /usr/share/postgresql/15/extension/btree_gist.control ] \
	    || [ ! -f /usr/share/postgresql/15/extension/postgis.control ] \
	    || { [ -z "$(DATABASE_URL)" ] && [ ! -x /usr/bin/pgbackrest ]; }; then \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing PostgreSQL 15 server, contrib, PostGIS and pgBackRest with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib postgresql-15-postgis-3 pgbackrest >/dev/null; \
	  elif [ ! -x "$(PG_BIN)/initdb" ] || [ ! -f /usr/share/postgresql/15/extension/btree_gist.control ] \
	      || [ ! -f /usr/share/postgresql/15/extension/postgis.control ]; then \
	    echo "PostgreSQL 15 server, contrib or PostGIS is missing. Run: sudo apt-get install -y postgresql postgresql-contrib postgresql-15-postgis-3 pgbackrest"; exit 1; \
	  else \
	    echo "pgBackRest is missing: the local cluster archives no WAL and has no backups (sudo apt-get install -y pgbackrest)"; \
	  fi; \
	fi

# The local cluster, unless DATABASE_URL points elsewhere.
db: install
	@if [ -z "$(DATABASE_URL)" ]; then scripts/pg-local start; fi

# After migrating, the superuser's part of the local cluster (pg_stat_statements in schema extensions).
migrate: db
	$(PY) -m api.migrate
	@if [ -z "$(DATABASE_URL)" ]; then scripts/pg-local setup; fi

demo: migrate
	$(PY) -m api.demo

run: demo serve

# make run: the development server (NEXUS_ENV=development allows the development defaults).
run: export NEXUS_ENV ?= development
run: export PUBLIC_URL ?= http://$(HOST):$(PORT)
serve:
	@echo "API      http://$(HOST):$(PORT)/api/products/   (every path: http://$(HOST):$(PORT)/openapi.json)"
	@echo "Swagger  http://$(HOST):$(PORT)/swagger/"
	@echo "Admin    http://$(HOST):$(PORT)/admin/   (admin@nexus.local / nexus-admin-pass)"
	@echo "Health   http://$(HOST):$(PORT)/healthz  http://$(HOST):$(PORT)/readyz"
	@echo "Worker   payments, refunds, payouts; holds and stays every minute (python -m api.worker)"
	@$(PY) -m api.worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  $(PY) -m api.serve --host $(HOST) --port $(PORT) $(if $(WORKERS),--workers $(WORKERS))

stop:
	@scripts/pg-local stop

# Backups of the local cluster with pgBackRest (scripts/pg-backup; docs/operations.md). A server that
# DATABASE_URL names is backed up by whoever runs it (a provider's point-in-time recovery).
local-cluster-only = @if [ -n "$(DATABASE_URL)" ]; then \
	  echo "DATABASE_URL names another server: back it up where it runs (docs/operations.md, Backups and restore)"; exit 2; fi
backup:
	$(local-cluster-only)
	@scripts/pg-backup backup $(TYPE)

backups:
	$(local-cluster-only)
	@scripts/pg-backup info

restore:
	$(local-cluster-only)
	@test -n "$(TIME)" || { echo "usage: make restore TIME='2026-12-06 21:30:00+00' (or TIME=latest); make backups lists the backups"; exit 2; }
	@scripts/pg-backup restore "$(TIME)"

# What some tests drive, from Debian: Chromium (tests/browser), HAProxy (tests/api/test_scale_out.py),
# PgBouncer (make test-pgbouncer), Prometheus and promtool (tests/test_prometheus.py), pgBackRest
# (tests/test_backup.py). Without them those tests are skipped, saying why. A tool whose package is
# named otherwise: path:package.
TEST_TOOLS := /usr/bin/chromium /usr/sbin/haproxy /usr/sbin/pgbouncer /usr/bin/prometheus /usr/bin/promtool:prometheus /usr/bin/pgbackrest
test-tools:
	@missing=""; for t in $(TEST_TOOLS); do \
	  path=$${t%%:*}; package=$${t##*:}; package=$${package##*/}; \
	  [ -x $$path ] || case " $$missing " in *" $$package "*) ;; *) missing="$$missing $$package";; esac; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing for the tests with apt-get"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null 2>&1 \
	      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } \
	      || echo "could not install$$missing: the tests that need them will be skipped"; \
	  else \
	    echo "missing$$missing: those tests will be skipped (sudo apt-get install -y$$missing)"; \
	  fi; \
	fi

# Node.js and npm, for the TypeScript client check (tests/test_typescript_client.py) and make postman.
nodejs:
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Node.js and npm with apt-get"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null 2>&1 \
	      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; } \
	      || echo "could not install nodejs and npm: tests/test_typescript_client.py will be skipped"; \
	  else \
	    echo "Node.js or npm is missing: tests/test_typescript_client.py will be skipped (sudo apt-get install -y nodejs npm)"; \
	  fi; \
	fi

# The pinned openapi-typescript and typescript of clients/typescript (npm ci again when the lock changes).
TS_CLIENT := clients/typescript
$(TS_CLIENT)/node_modules/.installed: $(TS_CLIENT)/package.json $(TS_CLIENT)/package-lock.json
	npm ci --prefix $(TS_CLIENT) --no-audit --no-fund
	@touch $@

ts-client: nodejs
	@if command -v npm >/dev/null; then $(MAKE) -s --no-print-directory $(TS_CLIENT)/node_modules/.installed; fi

test: install-dev test-tools ts-client
	$(PY) -m pytest -q

# The same suite with the API and every client role connecting through PgBouncer (transaction pooling).
# Schemathesis's generated sweep (~90 s) runs in make test only: here every route's own tests go
# through PgBouncer, which is what this pass is for (CI: .ci/run runs both). Left out too, as
# nothing of theirs goes through PgBouncer or depends on pooling (~75 s, made room for the soak's
# CI run in make test): test_serve and test_sigterm (python -m api.serve straight to PostgreSQL),
# test_local_cluster (scripts/pg-local), test_catalog_plans (EXPLAINs: plans, not connections),
# test_logs (the log lines' shape and redaction); and (~2 min, room for the money edges' tests) the
# worker's jobs against third parties, whose SQL runs as the owner straight to PostgreSQL:
# test_reconciliation (providers' lists), test_rates_feed and test_calendar_sync (feeds),
# test_media_s3 (the bucket), test_tracing_otlp (the exporter).
PGBOUNCER_SKIP := tests/api/test_schemathesis.py tests/api/test_serve.py tests/api/test_sigterm.py \
	tests/sql/test_local_cluster.py tests/sql/test_catalog_plans.py tests/api/test_logs.py \
	tests/api/test_reconciliation.py tests/api/test_rates_feed.py tests/api/test_calendar_sync.py \
	tests/api/test_media_s3.py tests/api/test_tracing_otlp.py
test-pgbouncer: install-dev test-tools
	@[ -x /usr/sbin/pgbouncer ] || { echo "pgbouncer is missing: sudo apt-get install -y pgbouncer"; exit 1; }
	NEXUS_TEST_PGBOUNCER=1 $(PY) -m pytest -q -m "not slow" --ignore=tests/browser $(addprefix --ignore=,$(PGBOUNCER_SKIP)) tests/api tests/sql

# A Postman collection (v2.1) from the document the running API serves (make run first), written
# to clients/postman/nexus.postman_collection.json; Postman can also import the URL directly.
POSTMAN := clients/postman
OPENAPI_URL ?= http://$(HOST):$(PORT)/openapi.json
$(POSTMAN)/node_modules/.installed: $(POSTMAN)/package.json $(POSTMAN)/package-lock.json
	npm ci --prefix $(POSTMAN) --no-audit --no-fund
	@touch $@

postman: nodejs $(POSTMAN)/node_modules/.installed
	node $(POSTMAN)/collection.mjs $(OPENAPI_URL) $(POSTMAN)/nexus.postman_collection.json

check: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check api tests bench migrations soak
	$(VENV)/bin/ruff format --check api tests bench migrations soak
	$(VENV)/bin/mypy

psql: db
	$(PG_BIN)/psql "$$($(PY) -c 'from api.settings import settings; print(settings.database_url)')"

pgcli: db $(VENV)/.installed-dev
	$(VENV)/bin/pgcli "$$($(PY) -c 'from api.settings import settings; print(settings.database_url)')"

# Emails kept locally when no SMTP_HOST is set (the demo works offline).
outbox: db
	@$(PG_BIN)/psql -X -q "$$($(PY) -c 'from api.settings import settings; print(settings.database_url)')" -P pager=off \
	  -c "select created_at, to_address, subject, text_body from app_private.email_outbox order by id desc limit $${N:-10}"

media-migrate: migrate
	$(PY) -m api.storage migrate

createadmin: migrate
	@test -n "$(EMAIL)" -a -n "$(PASSWORD)" || { echo "usage: make createadmin EMAIL=admin@example.com PASSWORD=..."; exit 2; }
	@$(PY) -m api.createadmin "$(EMAIL)" "$(PASSWORD)"

clean: stop
	rm -rf "$$(readlink -f .pg)" .pg $(VENV) media $(TS_CLIENT)/node_modules $(POSTMAN)/node_modules

# --- benchmark (bench/) ---------------------------------------------------------------
bench-data: migrate
	$(PY) -m bench.data $(if $(FORCE),--force)

bench: install-dev
	@scripts/pg-local start
	@if ! command -v wrk >/dev/null; then \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing wrk with apt-get"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }; \
	  else \
	    echo "wrk is missing. Run: sudo apt-get install -y wrk"; exit 1; \
	  fi; \
	fi
	$(PY) -m bench.data
	$(PY) -m bench.run $(BENCH_ARGS)

# Traces off, on (to an OTLP receiver on loopback), 1 in 10, and to an endpoint that does not answer:
# µs per request through the ASGI app, interleaved (bench/tracing_cost.py; docs/operations.md).
.PHONY: bench-tracing
bench-tracing: install-dev
	$(PY) -m bench.tracing_cost $(BENCH_ARGS)

# --- soak (soak/) ---------------------------------------------------------------------
# The real stack (its own PostgreSQL with the 100k-listing bench data, PgBouncer in transaction pooling
# between it and api.serve with 2 workers, the job worker, the stand-ins) under a realistic mix and
# faults on a schedule; exits 1 on any violated invariant. SOAK_ARGS: e.g. --faults short, --scale 2,
# without --pgbouncer (the API straight to PostgreSQL) or without --bench-data for a quick one.
SOAK_MINUTES ?= 20
SOAK_ARGS ?= --bench-data --pgbouncer
.PHONY: soak
soak: install-dev test-tools
	$(PY) -m soak --minutes $(SOAK_MINUTES) --plot docs/soak.png $(SOAK_ARGS)
