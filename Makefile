# The two commands of the README: `make demo` and `make test`. Both install what is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint unit system-deps venv benchmarks screenshots clean

system-deps:
	@bash scripts/install-system-deps.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: system-deps venv
	$(BIN)/managed dev up

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: system-deps venv lint
	$(BIN)/pytest -n 2 --dist loadgroup

benchmarks: system-deps venv
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

screenshots: system-deps venv
	$(BIN)/python tests/console/screenshots.py --out docs/screenshots

clean:
	rm -rf $(VENV) .managed-dev .mypy_cache .pytest_cache .ruff_cache
