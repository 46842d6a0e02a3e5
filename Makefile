SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two installs: what running needs (make run), and the dev extra on top (tests, lint,
# code generation, benchmarks).
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
BUF := npx --yes @bufbuild/buf@1.75.0
# What `make breaking` compares the protos against (a buf input).
BREAKING_AGAINST ?= .git\#branch=main

.PHONY: help install install-run run test test-fast gen gen-check lint breaking bench openapi clean

help:
	@echo "make run        install what running needs, create a demo key, serve on SQLite"
	@echo "                (gRPC :50051, HTTP :8080, inbound SMTP :2525)"
	@echo "make test       install with the dev extra and run the tests"
	@echo "make test-fast  the tests without the slow end-to-end scenarios"
	@echo "make install    install into .venv with the dev extra (install-run: without)"
	@echo "make gen        regenerate clients/python from proto/"
	@echo "make gen-check  fail when the committed stubs differ from proto/"
	@echo "make lint       ruff, mypy, buf lint"
	@echo "make breaking   buf breaking against \$$BREAKING_AGAINST"
	@echo "make openapi    regenerate openapi.json from rest/openapi.py"
	@echo "make bench      benchmarks (printed as JSON)"

install: $(DEV_STAMP)

install-run: $(RUN_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The client distribution (clients/python) is installed editable in the same command, so
# pip resolves the server's mailpool-client==0.1.0 to it instead of an index.
$(RUN_STAMP): pyproject.toml clients/python/pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e ./clients/python -e .
	touch $@

$(DEV_STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e ./clients/python -e '.[dev]'
	touch $@

run: install-run
	$(BIN)/mailpool demo
	$(BIN)/mailpool serve

# Test processes (pytest-xdist): one per core by default.
TEST_WORKERS ?= auto

test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# The developer's loop: everything but the end-to-end scenarios marked slow (fuzzing,
# replicas, the bench smoke run, the 20,000-event stall, CLI runs of many commands);
# .ci/run runs them all.
test-fast: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow"

# protoc prints nothing on success; its errors (a bad .proto, a missing plugin) show.
gen: install
	PYTHON=$(BIN)/python scripts/gen.sh clients/python

gen-check: install
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	PYTHON=$(BIN)/python scripts/gen.sh "$$tmp"; \
	{ diff -r -x __pycache__ "$$tmp/mailpool" clients/python/mailpool \
	  && diff "$$tmp/mailpool_client/reasons.py" clients/python/mailpool_client/reasons.py; } \
	  || { echo "stubs are stale: run make gen and commit" >&2; exit 1; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BUF) lint

breaking:
	scripts/buf-breaking.sh '$(BREAKING_AGAINST)'

openapi: install
	$(BIN)/python -c 'import json; from mailpool_server.rest.openapi import document; \
	  open("openapi.json", "w").write(json.dumps(document(), indent=2) + "\n")'

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mailpool .pytest_cache .mypy_cache .ruff_cache
