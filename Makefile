# Two commands matter: `make run` and `make test`. Both bootstrap .venv on their own.
# Everything else is listed by `make help`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PY     := $(BIN)/python
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv lock packages run dev serve worker test test-fast test-e2e test-cov lint format \
        check-architecture db-ensure db-create db-info db-migrate migrate-safe migrate-status \
        settings-docs bench clean clean-dry pre-commit-run node-peers js-sdk test-js sdk-static

help: ## list the targets
	@grep -E '^[a-z0-9 -]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 26

# The exact versions (with hashes) come from requirements-dev.lock; the project itself and
# the Python SDK (clients/python, import name `realtime_client`) are installed editable on
# top, without resolving anything again.
$(STAMP): pyproject.toml requirements-dev.lock clients/python/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the locked dependencies into $(VENV) (the first time takes a few minutes)"
	$(PY) -m pip install --progress-bar on -r requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip install --quiet --no-deps -e clients/python
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install the locked dependencies and the project

LOCK_ARGS := --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
             --no-emit-find-links
lock: venv ## re-resolve requirements.lock and requirements-dev.lock from pyproject.toml
	$(BIN)/pip-compile $(LOCK_ARGS) --output-file=requirements.lock pyproject.toml
	$(BIN)/pip-compile $(LOCK_ARGS) --extra=dev --output-file=requirements-dev.lock pyproject.toml

run: venv ## create the database if missing, migrate, start server(s) + worker(s) (PORT, WEB_CONCURRENCY)
	$(PY) -m server run

dev: venv ## like run, restarting on code changes, with DEBUG logs
	DEBUG=true $(BIN)/watchfiles --filter python '$(PY) -m server run' server handlers storage workers signaling

serve: venv ## start only the server
	$(PY) -m server serve

worker: venv ## start only the worker
	$(PY) -m workers

# The Debian packages the tests need (chromium, nginx, coturn, redis-server, nodejs/npm; see
# tests/install-packages): installed here when we may (root and apt-get), otherwise the run
# stops at once with the command to run.
packages:
	@./tests/install-packages

# The native WebRTC test peers (tests/peers: libdatachannel through node-datachannel, and
# werift, the pure TypeScript stack; the exact versions in its package-lock.json), installed
# again when that lock file changes. npm warns EBADENGINE: werift 0.25 declares Node 22 and
# runs on Node 20.
PEERS := tests/peers
node-peers: $(PEERS)/node_modules/.package-lock.json ## install the native WebRTC test peers (npm ci)

$(PEERS)/node_modules/.package-lock.json: $(PEERS)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "The WebRTC tests need Node.js 20+ and npm. Install with:  sudo apt-get install -y nodejs npm" >&2; \
	  exit 1; }
	npm ci --prefix $(PEERS) --no-audit --no-fund
	@touch $@

# The TypeScript client SDK (clients/js: typescript and @types/node, the exact versions in its
# package-lock.json), installed again when that lock file changes and built (tsc -> dist/)
# when a source changes.
JS_SDK := clients/js
js-sdk: $(JS_SDK)/dist/index.js ## install and build the TypeScript SDK (npm ci, npm run build)

$(JS_SDK)/node_modules/.package-lock.json: $(JS_SDK)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "The TypeScript SDK needs Node.js 20+ and npm. Install with:  sudo apt-get install -y nodejs npm" >&2; \
	  exit 1; }
	npm ci --prefix $(JS_SDK) --no-audit --no-fund
	@touch $@

$(JS_SDK)/dist/index.js: $(JS_SDK)/node_modules/.package-lock.json $(JS_SDK)/tsconfig.json $(wildcard $(JS_SDK)/src/*.ts)
	npm run build --prefix $(JS_SDK)
	@touch $@

sdk-static: js-sdk ## rebuild server/static/sdk (the SDK's ES modules the pages load, committed) from clients/js/src
	npm run build:static --prefix $(JS_SDK)

test-js: venv js-sdk ## the TypeScript SDK's tests against a real server (node --test, Chromium)
	$(BIN)/pytest tests/e2e/test_js_sdk.py $(PYTEST_ARGS)

test: venv packages node-peers js-sdk ## run every test (real services, Chromium, nginx, coturn, native peers)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: venv node-peers ## unit and integration tests, without processes, browsers or broker restarts
	$(BIN)/pytest -m "not e2e and not slow and not disruptive" $(PYTEST_ARGS)

test-e2e: venv packages node-peers js-sdk ## only the tests that start processes or a browser
	$(BIN)/pytest -m e2e $(PYTEST_ARGS)

test-cov: venv packages node-peers js-sdk ## every test, with a coverage report (fails under 80%)
	$(BIN)/pytest --cov --cov-report=term --cov-report=html $(PYTEST_ARGS)

lint: venv ## ruff, formatting check, mypy strict, architecture contracts, generated docs
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(PY) -m server settings-docs --check
	@if command -v npm >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory js-sdk && npm run --silent check:static --prefix $(JS_SDK); \
	else echo "npm is missing: server/static/sdk not compared with a fresh build of clients/js"; fi

format: venv ## format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check-architecture: venv ## the import contracts of setup.cfg
	$(BIN)/lint-imports

pre-commit-run: venv ## run the pre-commit hooks on every file
	$(BIN)/pre-commit run --all-files

db-ensure: venv ## create the database if it is missing
	$(PY) -m server db ensure

db-create: venv ## create the database (fails if it exists)
	$(PY) -m server db create

db-info: venv ## show the server, database and migration revision
	$(PY) -m server db info

db-migrate migrate-safe: venv ## ensure the database exists, then migrate to head
	$(PY) -m server db migrate

migrate-status: venv ## current revision and pending migrations
	$(PY) -m server db status

settings-docs: venv ## regenerate docs/CONFIGURATION.md and .env.example from Settings
	$(PY) -m server settings-docs --write

bench: venv ## run the benchmarks and print a table (see docs/BENCHMARKS.md)
	@command -v wrk >/dev/null 2>&1 || ./bench/install-wrk || \
	  echo "note: wrk is not installed; the closed-loop HTTP scenarios use aiohttp's client (more CPU on the shared cores)"
	$(PY) -m bench $(BENCH_ARGS)

CLEAN_FIND := find . -path ./.venv -prune -o -path ./.git -prune -o \( -name __pycache__ \
    -o -name .pytest_cache -o -name .mypy_cache -o -name .ruff_cache -o -name htmlcov \
    -o -name .coverage -o -name 'coverage.xml' -o -name '*.egg-info' -o -name '.import_linter_cache' \
    \) -prune

clean-dry: ## show what clean would delete
	@$(CLEAN_FIND) -print

clean: ## delete caches and reports (never .venv, sources or .env)
	@$(CLEAN_FIND) -exec rm -rf {} + -print
