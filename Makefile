# Two commands do all set-up: `make run` and `make test`. Each creates .venv from
# requirements.txt on first use (and again whenever requirements.txt changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: run test test-fast test-mkl lint clean-data chromium

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m pipeline serve

test: $(STAMP) chromium
	$(PY) -m pytest

# Day-to-day: everything but the tests marked slow (consumers, browser, hour-long audio), ~2 min.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# The tests that run the bundled Whisper model, on CTranslate2's Intel MKL int8 backend. Intel
# CPUs use MKL by default and other CPUs another backend (CT2_USE_MKL=0 picks that one on
# Intel too); the words heard differ slightly, and the tests must hold on both.
test-mkl: $(STAMP)
	CT2_USE_MKL=1 $(PY) -m pytest -m model

# The browser tests drive Debian's chromium through Playwright (no browser download).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

lint: $(STAMP)
	$(PY) -m ruff check .

clean-data:
	rm -rf data
