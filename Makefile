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

demo:
	@echo "make demo arrives with the Airflow provider (issue 5): nothing to run yet." >&2
	@exit 1

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
