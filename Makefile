# provisiond: the two set-up commands of the README, and their parts.
#   make run    create .venv, install, serve on SQLite with unprivileged ports
#   make test   create .venv, install with test tools, lint, type-check, run every test
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest debian-test-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,fast]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/provisiond serve

# Real TFTP clients for the tests (Debian packages); installed when missing, as root.
debian-test-deps:
	@if ! command -v tftp >/dev/null || ! command -v atftp >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tftp-hpa atftp; \
		else \
			echo "install the Debian packages tftp-hpa and atftp (sudo apt-get install tftp-hpa atftp)"; exit 1; \
		fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) debian-test-deps
	$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
