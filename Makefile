# Everything runs from the project's own virtualenv, created on first use, so that
# `make test` works on a fresh clone with nothing but python3 installed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Only the folders that exist: git does not keep empty ones, and ruff fails on a missing path.
LINT_PATHS := $(wildcard src tests bench tools)

ARGS ?=
PYTEST_ARGS ?=

.DEFAULT_GOAL := check
.PHONY: run demo test lint check format screenshots bench clean distclean lock

# Every tool and library the tests ran with, pinned (pip-compile output): a clean clone installs exactly these.
LOCK   := requirements-dev.txt

# Reinstall whenever pyproject.toml or the lock changes (new dependency, new entry point, new pin).
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PYTHON) tools/check_lock.py pyproject.toml $(LOCK)
	$(BIN)/python -m pip install -r $(LOCK)
	$(BIN)/python -m pip install --no-deps -e .
	touch $@

# After changing a dependency in pyproject.toml: pin everything again (needs the package index), then commit the lock.
lock:
	test -x $(VENV)-lock/bin/pip-compile || ($(PYTHON) -m venv $(VENV)-lock && $(VENV)-lock/bin/pip install pip-tools)
	$(VENV)-lock/bin/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file $(LOCK) pyproject.toml

run: $(STAMP)
	$(BIN)/socktui $(ARGS)

# A private dockerd with one broken socket of every kind; everything is removed on exit. Needs root.
demo: $(STAMP)
	$(BIN)/socktui demo

test: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy
	$(BIN)/mypy tests/reliability/conftest.py
	$(BIN)/lint-imports

check: lint test

format: $(STAMP)
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

screenshots: $(STAMP)
	$(BIN)/python tools/screenshots.py

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Keeps the virtualenv: rebuilding it needs the package index. `make distclean` removes it too.
clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist snapshot_report.html bench/_work
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(VENV)-lock
