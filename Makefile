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
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/provisiond serve

# Real peers and tools the tests use (Debian packages): a test fails, never skips, without them.
# command:package pairs; missing ones are installed in one apt-get, as root.
TEST_TOOLS := tftp:tftp-hpa atftp:atftp curl:curl faketime:faketime sipp:sip-tester dnsmasq:dnsmasq \
	dhcpd:isc-dhcp-server kea-dhcp4:kea-dhcp4-server systemd-analyze:systemd \
	chromium:chromium chromedriver:chromium-driver

debian-test-deps:
	@missing=""; for pair in $(TEST_TOOLS); do \
		command -v $${pair%%:*} >/dev/null || [ -x /usr/sbin/$${pair%%:*} ] || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			policy=/usr/sbin/policy-rc.d; made=""; \
			if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy; chmod +x $$policy; made=1; fi; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
			status=$$?; [ -n "$$made" ] && rm -f $$policy; [ $$status = 0 ] || exit $$status; \
		else \
			echo "install the Debian packages:$$missing"; exit 1; \
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
