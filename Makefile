# Two entry points, as the README promises: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

.PHONY: install install-test demo test lint
install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q -e ".[test]"

demo: install
	$(BIN)/wayline demo

lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# The PostgreSQL tests use this database; they are skipped (with the reason shown) where it is unreachable.
WAYLINE_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
export WAYLINE_TEST_POSTGRES_URL

test: lint
	$(BIN)/pytest
