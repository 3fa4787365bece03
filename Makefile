# The README's two commands. Each creates .venv when missing and installs what it needs.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
# This machine's pip config lists index folders that do not exist; hide that noise only.
LINT_DIRS := $(wildcard rl_provider tests tools dags bench)
QUIET_PIP := 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }

.PHONY: test demo lint typecheck pytest install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip $(QUIET_PIP)

# torch==2.13.0 first: it is the local CPU wheel; an unpinned torch pulls gigabytes of CUDA.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0 $(QUIET_PIP)
	$(BIN)/pip install --quiet -e '.[rllib,plot,sagemaker,dev]' $(QUIET_PIP)
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -q

test: lint typecheck pytest

# Train, evaluate, deploy-if-better and smoke-test CartPole with the example DAG, all locally.
# State (Airflow's SQLite database, jobs, models, endpoints) lives in .airflow/ (git-ignored);
# $(BIN) goes first on PATH because Airflow starts helper processes by name.
demo: install
	@export AIRFLOW_HOME="$(CURDIR)/.airflow" RL_PROVIDER_HOME="$(CURDIR)/.airflow/rl_provider" \
		AIRFLOW__CORE__DAGS_FOLDER="$(CURDIR)/dags" AIRFLOW__CORE__LOAD_EXAMPLES=False \
		PATH="$(CURDIR)/$(BIN):$$PATH" && \
	mkdir -p .airflow && \
	echo "Migrating Airflow's database in .airflow/ (log: .airflow/db-migrate.log)" && \
	{ airflow db migrate > .airflow/db-migrate.log 2>&1 || { tail -n 30 .airflow/db-migrate.log; exit 1; }; } && \
	echo "Running rl_cartpole_retrain (train -> evaluate -> deploy if better -> smoke test)" && \
	airflow dags test rl_cartpole_retrain && \
	echo && python tools/demo_summary.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
