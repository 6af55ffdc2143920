# The two commands: `make demo` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export DAGSTER_HOME ?= $(CURDIR)/var/dagster

.PHONY: setup demo test test-fast lint types validate format ui bench screenshots clean

$(STAMP): pyproject.toml
	@echo "setting up $(VENV): the engine and the versions pyproject.toml pins (Dagster, pandas, Great"
	@echo "Expectations, SQLAlchemy, the database drivers, the test tools); minutes the first time, then seconds"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup ## set up, create the demo estate if missing, run today's daily job
	$(BIN)/retention demo

test: lint types validate ## set up and run everything: lint, import contracts, types, definitions, all tests
	$(BIN)/pytest -n 2 --dist loadgroup -q tests

test-fast: setup ## the unit tests only: no database servers, no Dagster runs, under a minute
	$(BIN)/pytest -n 2 -q tests/unit

lint: setup ## ruff (lint and format) and the import contracts of pyproject.toml
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

types: setup ## mypy over the whole project, tests and benchmarks included
	$(BIN)/mypy

validate: setup ## Dagster loads the definitions
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster definitions validate -w workspace.yaml

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

ui: setup ## the Dagster UI on the same local instance as `make demo`
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev -w workspace.yaml

BENCH_SIZES ?= 100000
screenshots: setup ## the README's pictures of the Dagster UI (needs Chromium on the PATH)
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	$(BIN)/python docs/screenshots.py

bench: setup ## the benchmarks at a modest size (they print figures; BENCH_SIZES="100000 1000000" for more)
	$(BIN)/python benchmarks/anonymizer_benchmark.py
	$(BIN)/python benchmarks/generate_estate.py --people 20000 --out-dir var/bench-estate
	$(BIN)/python benchmarks/apply_benchmark.py --sizes $(BENCH_SIZES)
	$(BIN)/python benchmarks/daily_run_benchmark.py --people 2000
	$(BIN)/python benchmarks/dagster_overhead_benchmark.py --people 2000 --days 3 --direct-days 2
	$(BIN)/python benchmarks/erasure_benchmark.py --sizes $(BENCH_SIZES)

clean:
	rm -rf var
