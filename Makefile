# Rapid Response: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
ENV_FILE := .env.local
# Load the generated development keys (never committed) into every command.
WITH_ENV := set -a; [ -f $(ENV_FILE) ] && . ./$(ENV_FILE); set +a;

.DEFAULT_GOAL := help
.PHONY: help run test check lint format typecheck migrations-check translations-check \
        translations lock install demo clean bench bench-quick serve load security

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 22

$(VENV)/.installed: requirements/dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.lock
	touch $@

install: $(VENV)/.installed ## create the virtual environment from the lock file

$(ENV_FILE): | $(VENV)/.installed
	$(PY) -m core.devkeys > $(ENV_FILE).tmp && mv $(ENV_FILE).tmp $(ENV_FILE)
	@echo "Wrote development keys to $(ENV_FILE) (untracked)."

run: $(VENV)/.installed $(ENV_FILE) ## start the product with demo data on http://127.0.0.1:8000 (SQLite)
	@# Development key files written before the proof-of-work key existed get one.
	@grep -q '^RR_ALTCHA_HMAC_KEY=' $(ENV_FILE) || $(PY) -m core.devkeys | grep '^RR_ALTCHA_HMAC_KEY=' >> $(ENV_FILE)
	$(WITH_ENV) export DEBUG=1 RR_NETWORK_NAME="$${RR_NETWORK_NAME:-Bahía Rapid Response (demo)}"; \
	$(PY) manage.py migrate --no-input && \
	$(PY) manage.py load_demo_data && \
	$(PY) manage.py run_local --host 127.0.0.1 --port 8000

serve: $(VENV)/.installed ## production profile: checks, migrations, WEB web + WORKERS task workers (PostgreSQL, Redis)
	$(PY) -m core.serve --migrate --collectstatic --web $(or $(WEB),2) --workers $(or $(WORKERS),2) \
	  --host $(or $(HOST),127.0.0.1) --port $(or $(PORT),8000)

load: $(VENV)/.installed ## a minute of locust on loopback against `core.serve` on a fresh PostgreSQL database
	$(PY) tests/load/run.py --seconds $(or $(LOAD_SECONDS),60) --users $(or $(LOAD_USERS),40)

test: $(VENV)/.installed ## run the whole test suite
	$(BIN)/pytest -q

lint: $(VENV)/.installed ## ruff, format check, mypy, migrations and translations checks
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(MAKE) --no-print-directory migrations-check translations-check

security: $(VENV)/.installed ## bandit, semgrep's Django rules (.semgrep/), pip-audit on the production lock
	$(BIN)/bandit -c pyproject.toml -r . -ll -q
	$(BIN)/semgrep scan --config .semgrep/django.yml --error --metrics=off --disable-version-check --quiet .
	.ci/pip-audit requirements/base.lock

migrations-check: $(VENV)/.installed
	DJANGO_SETTINGS_MODULE=rapidresponse.test_settings $(PY) manage.py makemigrations --check --dry-run

translations-check: $(VENV)/.installed ## fail when a .po file is stale, incomplete, or its .mo is not compiled
	DJANGO_SETTINGS_MODULE=rapidresponse.test_settings $(PY) -m core.i18ncheck

translations: $(VENV)/.installed ## regenerate and compile the .po files after changing strings
	DJANGO_SETTINGS_MODULE=rapidresponse.test_settings $(PY) -m core.i18ncheck --write

check: lint test ## everything CI checks

bench: $(VENV)/.installed ## benchmarks B1-B8 (and the voice hotline) as ratios to floors of the same run (SQLite; DATABASE_URL for PostgreSQL)
	$(PY) bench/run.py

bench-quick: $(VENV)/.installed ## the benchmarks at smaller sizes (CI prints it as a report)
	$(PY) bench/run.py --quick

format: $(VENV)/.installed ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(VENV)/.installed
	$(BIN)/mypy .

lock: ## re-resolve requirements/*.lock from pyproject.toml
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras -c requirements/constraints.txt -o requirements/base.lock pyproject.toml
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --extra dev -c requirements/base.lock -o requirements/dev.lock pyproject.toml

clean: ## remove the virtual environment and local databases
	rm -rf $(VENV) var/
