# rewardkit: set-up is two commands.
#
#   make demo   build the CLI and run the whole job against the offline sandbox
#   make test   every test suite, then clippy and rustfmt
#
# Needs only a Rust toolchain (plus Python 3.11 and Node 20 once the bindings land).

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
# The Python and Node bindings are the next step; when they land they add
# `test-python` and `test-node` here (see their targets below).
SUITES := test-rust

# For the coming Python suite (pyo3 + maturin, pytest) and Node suite (napi-rs, node:test).
PYTHON ?= python3
VENV ?= .venv
NPM ?= npm
NODE ?= node

.PHONY: help build demo test test-rust lint clippy fmt fmt-check clean

help:
	@echo "make demo       build the CLI and run examples/demo.sh against the sandbox"
	@echo "make test       $(SUITES), then clippy and rustfmt --check"
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

# test-python:   $(PYTHON) -m venv $(VENV), install maturin and pytest into it,
#                `maturin develop`, then `$(VENV)/bin/pytest tests/python`.
# test-node:     `$(NPM) ci`, build the napi addon, then `$(NODE) --test tests/node`.

lint: clippy fmt-check

clippy:
	$(CARGO) clippy --workspace --all-features --all-targets -- -D warnings

fmt-check:
	$(CARGO) fmt --all -- --check

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
