# Roost: set-up, checks, tests and the Paho interoperability run (GNU make).
# On a fresh Debian 12 machine with Python 3.11, `make run` and `make test` are all it takes.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Re-install into the venv only when pyproject.toml changes.
STAMP := $(VENV)/.roost-installed
EXTRAS ?= test,fast

# Extra arguments: `make run ROOST_ARGS="--port 1884"`, `make test PYTEST_ARGS="-k codec"`.
ROOST_ARGS ?=
PYTEST_ARGS ?=
INTEROP_ARGS ?=

# The Eclipse Paho interoperability suite: fetched, never committed (gitignored).
PAHO_REPO ?= https://github.com/eclipse/paho.mqtt.testing.git
PAHO_REF ?= 9d7bb80bb8b9d9cfc0b52f8cb4c1916401281103
PAHO_DIR ?= paho.mqtt.testing
PAHO_SUITE := $(PAHO_DIR)/interoperability

# What ruff looks at (a directory that does not exist yet is skipped).
LINT_PATHS := $(wildcard src tests scripts fuzz bench examples)

# apt-get runs as root: directly when we are root, else through sudo if there is one.
SUDO := $(shell [ "$$(id -u)" = 0 ] || ! command -v sudo >/dev/null 2>&1 || echo sudo)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

# Steps touch the same venv and dpkg lock: never run them in parallel.
.NOTPARALLEL:
.DEFAULT_GOAL := help
.PHONY: help venv run deps-system stop-system-mosquitto check format test \
	paho-suite interop interop-mosquitto api-fuzz clean

help:
	@echo "make run                start Roost on localhost:1883 (Ctrl-C to stop)"
	@echo "make test               system packages, venv, checks, then the test suite"
	@echo "make check              ruff lint, ruff format --check, mypy --strict"
	@echo "make format             apply ruff format and ruff's safe fixes"
	@echo "make venv               create $(VENV) and install Roost with [$(EXTRAS)]"
	@echo "make deps-system        apt-get install mosquitto-clients and mosquitto if missing"
	@echo "make interop            Paho interoperability suite against a Roost started for it"
	@echo "make interop-mosquitto  the same suite against Debian's mosquitto, for comparison"
	@echo "make bench              Roost (1 and 2 workers) vs mosquitto (and amqtt), ~17 min; table in docs/performance.md"
	@echo "make bench-quick        the same, one short run per cell (~4 min)"
	@echo "make bench-streams      device -> stream -> consumer throughput (part of make bench)"
	@echo "make api-fuzz           schemathesis against the HTTP API's OpenAPI document (~2 min)"
	@echo "make clean              remove the venv, caches and build output (keeps ./data)"

# --- Python environment -------------------------------------------------------------------

$(BIN)/python:
	@if ! $(PYTHON) -m venv $(VENV); then \
		echo "'$(PYTHON) -m venv' failed: installing python3-venv"; \
		rm -rf $(VENV); \
		$(APT_GET) update && $(APT_GET) install -y --no-install-recommends python3-venv; \
		$(PYTHON) -m venv $(VENV); \
	fi

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[$(EXTRAS)]'
	@touch $@

venv: $(STAMP)

# --- Running --------------------------------------------------------------------------------

run: $(STAMP)
	$(BIN)/roost serve $(ROOST_ARGS)

# --- System packages (Debian) ---------------------------------------------------------------

deps-system:
	@if command -v mosquitto_pub >/dev/null 2>&1; then \
		echo "mosquitto-clients: already installed"; \
	else \
		$(APT_GET) update && \
		$(APT_GET) install -y --no-install-recommends mosquitto-clients mosquitto && \
		$(MAKE) --no-print-directory stop-system-mosquitto; \
	fi

# The mosquitto package may start a system service on port 1883: Roost needs that port,
# and the tests and benchmarks start their own mosquitto when they want one.
stop-system-mosquitto:
	@echo "stopping the system mosquitto service, if any"
	@$(SUDO) systemctl disable --now mosquitto >/dev/null 2>&1 || \
		$(SUDO) service mosquitto stop >/dev/null 2>&1 || \
		$(SUDO) pkill -x mosquitto >/dev/null 2>&1 || true

# --- Checks and tests -----------------------------------------------------------------------

check: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

test: deps-system $(STAMP)
	$(MAKE) --no-print-directory check
	$(BIN)/pytest $(PYTEST_ARGS)

# --- Eclipse Paho interoperability suite ----------------------------------------------------

$(PAHO_SUITE)/client_test5.py:
	git clone --quiet $(PAHO_REPO) $(PAHO_DIR)
	git -C $(PAHO_DIR) -c advice.detachedHead=false checkout --quiet $(PAHO_REF)

paho-suite: $(PAHO_SUITE)/client_test5.py

interop: $(STAMP) paho-suite
	$(BIN)/python scripts/paho_interop.py --suite $(PAHO_SUITE) --start-roost $(INTEROP_ARGS)

interop-mosquitto: $(STAMP) paho-suite
	$(BIN)/python scripts/paho_interop.py --suite $(PAHO_SUITE) --start-mosquitto $(INTEROP_ARGS)

# --- Housekeeping ---------------------------------------------------------------------------

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache \
		.hypothesis .coverage htmlcov
	find src tests scripts -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true

# --- Benchmark: Roost vs Debian's mosquitto and amqtt (bench/, docs/performance.md) ---------

BENCH_ARGS ?=
# amqtt, the second reference broker, in a venv of its own (it brings its own dependencies;
# never into $(VENV)). Gitignored; if it cannot be created the bench runs without amqtt.
AMQTT_VENV ?= .venv-amqtt
AMQTT_SPEC ?= amqtt==0.12.1

.PHONY: bench bench-quick bench-amqtt bench-streams

bench-amqtt:
	@if [ -x $(AMQTT_VENV)/bin/amqtt ]; then \
		echo "amqtt: $(AMQTT_VENV) already set up"; \
	elif $(PYTHON) -m venv $(AMQTT_VENV) && \
		$(AMQTT_VENV)/bin/python -m pip install --disable-pip-version-check -q '$(AMQTT_SPEC)'; then \
		echo "amqtt: installed into $(AMQTT_VENV)"; \
	else \
		echo "amqtt: could not set up $(AMQTT_VENV); the bench runs without amqtt"; \
		rm -rf $(AMQTT_VENV); \
	fi

# The full run (about 17 minutes): results in bench/results/latest.*, table in docs/performance.md.
bench: deps-system $(STAMP) bench-amqtt
	BENCH_AMQTT=$(abspath $(AMQTT_VENV))/bin/amqtt $(BIN)/python -m bench.run --update-docs $(BENCH_ARGS)
	$(MAKE) --no-print-directory bench-streams

# Device -> stream -> consumer throughput (docs/streams.md), about 10 s.
bench-streams: $(STAMP)
	$(BIN)/python bench/streams_bench.py --messages 20000 --devices 4 --consumers 2

# schemathesis against the HTTP API's own OpenAPI document (a venv of its own, gitignored).
SCHEMATHESIS_VENV ?= .venv-schemathesis
api-fuzz: $(STAMP)
	@[ -x $(SCHEMATHESIS_VENV)/bin/schemathesis ] || { $(PYTHON) -m venv $(SCHEMATHESIS_VENV) && \
		$(SCHEMATHESIS_VENV)/bin/pip install --disable-pip-version-check -q 'schemathesis>=4,<5'; }
	$(BIN)/python scripts/api_fuzz.py --schemathesis $(SCHEMATHESIS_VENV)/bin/schemathesis

# One run per short cell (about 4 minutes): results in bench/results/quick.*.
bench-quick: deps-system $(STAMP) bench-amqtt
	BENCH_AMQTT=$(abspath $(AMQTT_VENV))/bin/amqtt $(BIN)/python -m bench.run --quick $(BENCH_ARGS)
