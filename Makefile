# Two commands do all set-up: `make run` and `make test`. Each creates .venv from
# requirements.txt on first use (and again whenever requirements.txt changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: run test lint clean-data chromium

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m pipeline serve

test: $(STAMP) chromium
	$(PY) -m pytest

# The browser tests drive Debian's chromium through Playwright (no browser download).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

lint: $(STAMP)
	$(PY) -m ruff check .

clean-data:
	rm -rf data
