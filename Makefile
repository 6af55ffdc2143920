# The two commands: `make demo` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export DAGSTER_HOME ?= $(CURDIR)/var/dagster

.PHONY: setup demo test lint format ui validate bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup ## set up, create the demo estate if missing, run today's daily job
	$(BIN)/retention demo

test: setup ## set up and run the whole test suite (SQLite, PostgreSQL, MariaDB)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster definitions validate -w workspace.yaml
	$(BIN)/pytest -n 2 --dist loadgroup -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

validate: setup
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster definitions validate -w workspace.yaml

ui: setup ## the Dagster UI on the same local instance as `make demo`
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev -w workspace.yaml

bench: setup
	$(BIN)/python benchmarks/plan_benchmark.py

clean:
	rm -rf var
