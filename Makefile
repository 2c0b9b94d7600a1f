# bakery: `make demo` bakes and tests web, promotes it and rolls the local group onto it, and shows a broken bake refused; `make test` runs the whole suite.
# Both set everything up first (Debian packages, a venv, the package) and work offline
# apart from Debian's and PyPI's mirrors.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := packer qemu-system-x86 qemu-utils mmdebstrap e2fsprogs openssh-client git procps haproxy graphviz chromium
STAMP := $(VENV)/.installed

.PHONY: help setup system-packages venv demo test test-fast lint bench clean

help:
	@echo "make demo   bake and test web on QEMU, promote it to testing, roll web-local onto it; a broken bake is refused"
	@echo "make test   set up and run the whole test suite (unit, integration, e2e)"
	@echo "make lint   ruff, mypy --strict and the import contracts (lint-imports)"
	@echo "make bench  benchmarks (bake overhead against raw Packer, plan, rollout API calls, verify and audit verify)"
	@echo "make test-unit  the unit tier alone: pure Python, on every core, under a minute"
	@echo "make test-fast  the unit and integration tiers (no QEMU)"

setup: system-packages $(STAMP)

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: setup
	$(BIN)/python scripts/demo.py

# The e2e tier (QEMU under TCG: minutes of CPU) runs in the foreground while the unit and
# integration tiers (mostly waiting on moto, the fake GCE server and Packer) run beside it, at a
# lower CPU priority: the e2e tier is the longer, and the others fill its waits; their report
# follows the e2e one, and the target fails when either process does.
# The report's browser test keeps its screenshots here (a CI job can upload the directory).
test: export BAKERY_REPORT_SCREENSHOTS ?= $(CURDIR)/test-artifacts/report
test: setup
	@fast_log=$$(mktemp); \
	nice -n 5 $(BIN)/pytest --ignore=tests/e2e --durations=10 >"$$fast_log" 2>&1 & fast=$$!; \
	trap 'kill $$fast 2>/dev/null; rm -f "$$fast_log"' EXIT; \
	$(BIN)/pytest tests/e2e --durations=10; e2e_status=$$?; \
	wait $$fast; fast_status=$$?; \
	echo "=== unit, integration and toy-kind tests (run beside the e2e tier) ==="; cat "$$fast_log"; \
	echo "=== exit status: unit+integration $$fast_status, e2e $$e2e_status ==="; \
	[ $$fast_status -eq 0 ] && [ $$e2e_status -eq 0 ]

.PHONY: test-unit
test-unit: setup
	$(BIN)/pytest -n auto tests/unit

test-fast: test-unit
	$(BIN)/pytest tests/integration tests/toykind

lint: setup
	$(BIN)/ruff check bakery tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python bench/run.py
	$(BIN)/python bench/plan_bench.py
	$(BIN)/python bench/rollout_bench.py
	$(BIN)/python bench/trust_bench.py

clean:
	rm -rf $(VENV) .bakery .pytest_cache .mypy_cache .ruff_cache
