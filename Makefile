# The two commands of the README: `make demo` and `make test`. Both install what is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Debian 12's own interpreter (3.11.2), the oldest the project supports: `make test` runs the
# unit, backup and architecture tests under it as well.
DEBIAN_PYTHON ?= /usr/bin/python3.11
OLDEST        := .venv-debian-python

.PHONY: demo test lint unit system-deps venv test-oldest-python benchmarks screenshots soak clean

system-deps:
	@bash scripts/install-system-deps.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

$(OLDEST)/.installed-stamp: pyproject.toml
	$(DEBIAN_PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/pip install -q --upgrade pip
	$(OLDEST)/bin/pip install -q -e '.[dev]'
	@touch $@

demo: system-deps venv
	$(BIN)/managed dev up

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: system-deps venv lint
	$(BIN)/pytest -n 2 --dist loadgroup --durations=25
	$(MAKE) --no-print-directory test-oldest-python

test-oldest-python: system-deps $(OLDEST)/.installed-stamp
	$(OLDEST)/bin/python --version
	$(OLDEST)/bin/pytest -n 2 -m "not slow" tests/unit tests/backup tests/architecture

benchmarks: system-deps venv
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The fault-injection soak (docs/reliability.md): SECONDS of faults and work, then the checkers.
# SEED=N reproduces a run's faults and workload; a short run is part of `make test`.
SECONDS ?= 600
SEED    ?=
soak: system-deps venv
	$(BIN)/python tests/soak/soak.py --seconds $(SECONDS) $(if $(SEED),--seed $(SEED))

screenshots: system-deps venv
	$(BIN)/python tests/console/screenshots.py --out docs/screenshots

clean:
	rm -rf $(VENV) $(OLDEST) .managed-dev .mypy_cache .pytest_cache .ruff_cache
