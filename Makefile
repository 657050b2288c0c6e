# rewardkit: set-up is two commands.
#
#   make demo   build the CLI and run the whole job against the offline sandbox
#   make test   every test suite, then clippy and rustfmt
#
# Needs a Rust toolchain, Python 3.9+ with venv and pip (test-python installs the rest into
# .venv), and Node 20 for test-node.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

CARGO ?= cargo

# The demo builds the CLI in the debug profile. From a clean target on a 2-core machine a
# debug build took 1 min 15 s and a release build (thin LTO) 2 min; the debug artifacts are
# also the ones `make test` reuses, and the demo sends a handful of requests, where
# optimization does not show. `make demo PROFILE=release` builds optimized instead.
PROFILE ?= debug
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
REWARDKIT := $(TARGET_DIR)/$(PROFILE)/rewardkit
ifeq ($(PROFILE),release)
  PROFILE_FLAG := --release
else ifeq ($(PROFILE),debug)
  PROFILE_FLAG :=
else
  PROFILE_FLAG := --profile $(PROFILE)
endif

# Test suites `make test` runs, in this order, before the linters.
SUITES := test-rust test-python test-node

# Tools of the Python suite (pyo3 + maturin, pytest) and the Node suite (napi-rs, node:test).
PYTHON ?= python3
VENV ?= .venv
NPM ?= npm
NODE ?= node

.PHONY: help build demo test test-rust test-python bench-python test-node bench-node lint clippy fmt fmt-check clean

help:
	@echo "make demo       build the CLI and run examples/demo.sh against the sandbox"
	@echo "make test       $(SUITES), then clippy and rustfmt --check"
	@echo "make test-python  pip install . into $(VENV), then pytest, mypy --strict and ruff"
	@echo "make bench-python the Python benchmarks (bench/python_overhead.py, bench/bulk_award.py)"
	@echo "make test-node  npm ci, build the Node addon (release), node --test, tsc --strict"
	@echo "make bench-node the Node benchmarks (bench/node_overhead.mjs, bench/bulk_award.mjs)"
	@echo "make lint       clippy (warnings are errors) and rustfmt --check"
	@echo "make fmt        format every Rust file"
	@echo "make build      build the rewardkit CLI ($(PROFILE)): $(REWARDKIT)"

build:
	$(CARGO) build -p rewardkit-cli $(PROFILE_FLAG)

demo: build
	REWARDKIT="$(REWARDKIT)" bash examples/demo.sh

test:
	@for suite in $(SUITES) lint; do $(MAKE) $$suite || exit 1; done

test-rust:
	$(CARGO) test --all-features

# The Python package: `pip install .` builds the release wheel (maturin, from pyproject.toml)
# into $(VENV), then pytest against the sandbox, mypy --strict on the examples, and ruff.
# Everything it needs is installed here, into $(VENV).
PIP := $(VENV)/bin/python -m pip
# pandas and tqdm: tests/python/test_bulk.py reads a DataFrame and draws a progress bar.
PY_TOOLS := "maturin>=1.16,<2" "pytest>=8,<10" "mypy>=1.10,<3" "ruff>=0.6,<1" "pandas>=2,<3" "tqdm>=4,<5"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

test-python: $(VENV)/bin/python
	$(PIP) install -q --disable-pip-version-check --no-input $(PY_TOOLS)
	$(PIP) install -q --disable-pip-version-check --no-input .
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/python
	$(VENV)/bin/mypy --strict --cache-dir=/dev/null examples/python
	$(VENV)/bin/ruff check --no-cache bindings/python/python tests/python examples/python bench

# The Python benchmarks' peers (requests, httpx, pydantic, aiohttp, pandas) go into the same
# $(VENV); not run by `make test`. bench/bulk_award.py runs the sandbox as a separate process
# (the release CLI). See bench/README.md.
bench-python: $(VENV)/bin/python
	$(PIP) install -q --disable-pip-version-check --no-input "requests>=2,<3" "httpx>=0.27,<1" "pydantic>=2,<3" \
		"aiohttp>=3.9,<4" "pandas>=2,<3"
	$(PIP) install -q --disable-pip-version-check --no-input .
	$(CARGO) build --release -p rewardkit-cli
	$(VENV)/bin/python bench/python_overhead.py
	$(VENV)/bin/python bench/bulk_award.py --sandbox $(TARGET_DIR)/release/rewardkit

# The Node package: `npm ci` installs @napi-rs/cli and TypeScript from package-lock.json,
# `npm run build` builds the release addon into bindings/node (napi build; release because the
# benchmark needs it and it adds only about two minutes on two cores), then node:test against
# the sandbox and `tsc --strict` on the TypeScript example.
NPM_CI := $(NPM) ci --no-audit --no-fund --loglevel=error

test-node:
	$(NPM_CI)
	$(NPM) run build
	$(NODE) --test tests/node/
	$(NPM) exec --no -- tsc --strict --noEmit -p examples/node

# Not run by `make test`. See bench/README.md. bulk_award.mjs runs the sandbox as a process of
# its own: the release CLI.
bench-node:
	$(NPM_CI)
	$(NPM) run build
	$(CARGO) build --release -p rewardkit-cli
	$(NODE) bench/node_overhead.mjs
	$(NODE) bench/bulk_award.mjs

lint: clippy fmt-check

clippy:
	$(CARGO) clippy --workspace --all-features --all-targets -- -D warnings

fmt-check:
	$(CARGO) fmt --all -- --check

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
