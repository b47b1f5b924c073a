# Set-up and checks of airflow-provider-billbee. Everything runs from a repo-local
# virtualenv (.venv) and a repo-local, git-ignored AIRFLOW_HOME (.airflow).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__TEST_CONNECTION := Enabled
# The example shop database of billbee_sync_customers_sql (created by the DAG if missing).
export AIRFLOW_CONN_BILLBEE_EXAMPLE_SHOP := {"conn_type": "sqlite", "host": "$(AIRFLOW_HOME)/billbee-example-shop.sqlite"}

SANDBOX_PORT ?= 8765

.PHONY: install demo test test-ui test-cluster test-quick lint typecheck pytest soak bench airflow sandbox audit clean

install: $(STAMP)

# Pinned set: constraints.txt is the lock (apache-airflow 3.3.2 and everything below it).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	# The editable build leaves an egg-info here; with the repo on sys.path (python -c, pytest)
	# Airflow would find the provider's plugin entry point twice.
	rm -rf airflow_provider_billbee.egg-info
	touch $(STAMP)

$(AIRFLOW_HOME)/airflow.db: $(STAMP)
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log
	# One slot per Billbee account: imports of one account never run side by side.
	$(BIN)/airflow pools set billbee_api 1 "Billbee API: one slot per account" > /dev/null

## demo: sandbox + billbee_create_customer + billbee_import_customers end to end
demo: $(AIRFLOW_HOME)/airflow.db
	$(BIN)/python -m billbee_provider.sandbox.demo --port $(SANDBOX_PORT)

## test: lint, type check and every test, the browser tests last (the command CI runs)
test: lint typecheck pytest test-ui

lint: $(STAMP)
	$(BIN)/ruff check billbee_provider dags tests
	$(BIN)/ruff format --check billbee_provider dags tests

typecheck: $(STAMP)
	$(BIN)/mypy

# Two processes (this machine and CI have 2 cores); a file's tests stay on one of them.
# The browser tests run on their own afterwards (test-ui): they start Airflow and chromium.
pytest: $(STAMP)
	$(BIN)/pytest -q -n 2 --dist loadfile --ignore=tests/ui --ignore=tests/cluster

## test-ui: the Airflow UI in a real browser (tests/ui: Airflow's four parts + headless chromium,
## one process, ~3-4 minutes); skipped with the reason without /usr/bin/chromium, unless
## BILLBEE_UI_TESTS=required (CI), which makes that a failure. Screenshots: tests/ui/artifacts/
test-ui: $(STAMP)
	$(BIN)/pytest -q -rs tests/ui

## test-cluster: the provider on a CeleryExecutor deployment (tests/cluster, docs/cluster.md):
## PostgreSQL, Redis, moto S3, the sandbox, Airflow and two Celery workers that share no disk;
## installs what is missing (apt-get, .venv-cluster), ~4 minutes
test-cluster: $(STAMP)
	@start=$$(date +%s); \
	pg_bin=$$(bash tests/cluster/setup.sh) && \
	BILLBEE_CLUSTER_TESTS=1 BILLBEE_CLUSTER_PG_BIN="$$pg_bin" $(BIN)/pytest -q -rs tests/cluster; \
	status=$$?; echo "make test-cluster: $$(( $$(date +%s) - start )) s wall time"; exit $$status

## test-quick: the tests not marked slow (no Airflow CLI runs, fault matrix or kills), ~1-2 minutes
test-quick: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

## soak: 2,000 customers through every fault, SIGKILLs included (0 duplicates, 0 lost), then
## the property-based tests with the long hypothesis profile
soak: $(STAMP)
	$(BIN)/python -m tests.reliability.soak
	HYPOTHESIS_PROFILE=soak $(BIN)/pytest -q -m hypothesis

## bench: the benchmarks of docs/performance.md (not part of make test; < 20 minutes): tables on
## stdout, one JSON line each appended to tests/benchmarks/results.jsonl
bench: $(STAMP)
	@start=$$(date +%s); \
	$(BIN)/python -m tests.benchmarks.run; \
	status=$$?; echo "make bench: $$(( $$(date +%s) - start )) s wall time"; exit $$status

## airflow: airflow standalone (UI on http://localhost:8080) with this provider and dags/
# standalone starts its components as bare `airflow`: the venv's bin must be on PATH. The
# Billbee tab's Test request is allowed here: this UI is for trying things with the sandbox.
airflow: $(AIRFLOW_HOME)/airflow.db
	@echo "Airflow UI: http://localhost:8080 (user admin; the password is printed below and kept in"
	@echo "$(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated)"
	PATH="$(CURDIR)/$(BIN):$$PATH" AIRFLOW__BILLBEE__ALLOW_TEST_REQUESTS=True $(BIN)/airflow standalone

## sandbox: the local Billbee API emulator on port $(SANDBOX_PORT)
sandbox: $(STAMP)
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/billbee-sandbox --port $(SANDBOX_PORT) --db $(AIRFLOW_HOME)/billbee-sandbox.sqlite

## audit: known vulnerabilities of the locked set (needs PyPI's JSON API or OSV; see docs/security.md)
audit:
	$(PYTHON) -m venv .venv-audit
	.venv-audit/bin/pip install --quiet pip-audit==2.10.1
	.venv-audit/bin/pip-audit -r constraints.txt --no-deps --disable-pip --progress-spinner off

clean:
	rm -rf $(VENV) .venv-audit $(AIRFLOW_HOME) .mypy_cache .ruff_cache .pytest_cache
