# `make run` and `make test` work on a fresh clone: they create .venv and install what they need.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench install clean

run: $(STAMP) .env
	$(BIN)/omnihub migrate --noinput
	$(BIN)/omnihub collectstatic --noinput --verbosity 0
	$(BIN)/omnihub ensure_admin
	$(BIN)/omnihub serve

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# e.g. make bench BENCH_ARGS=--quick; see bench/README.md.
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

install: $(STAMP)

# Python >= 3.12 only: an older interpreter would quietly get an older Django.
$(STAMP): pyproject.toml
	@python=""; for candidate in python3.12 python3.13 python3.14 python3; do \
	  if command -v $$candidate >/dev/null 2>&1 && \
	     $$candidate -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	    python=$$candidate; break; fi; done; \
	if [ -z "$$python" ]; then \
	  echo "error: Omnihub needs Python >= 3.12; found: $$(python3 --version 2>&1 || echo none)" >&2; \
	  exit 1; fi; \
	if [ ! -x $(BIN)/python ] || ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
	  rm -rf $(VENV); echo "creating $(VENV) with $$($$python --version)"; $$python -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

.env: | $(STAMP)
	$(BIN)/python -m omnihub.envfile .env.example .env

clean:
	rm -rf $(VENV) staticfiles
