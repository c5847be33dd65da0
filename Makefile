# Two commands do all set-up: `make run` and `make test`. Each creates .venv from
# requirements.txt on first use (and again whenever requirements.txt changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: run test test-fast test-backends lint clean-data system-packages

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m pipeline serve

test: $(STAMP) system-packages
	$(PY) -m pytest

# Day-to-day: everything but the tests marked slow (consumers, browser, hour-long audio), ~2 min.
test-fast: $(STAMP) system-packages
	$(PY) -m pytest -m "not slow"

# The tests that run the bundled Whisper model, again on two other CTranslate2 int8 backends: Intel
# MKL (what Intel CPUs use by default), and the non-MKL backend with its generic kernels (no
# AVX: the most different maths any CPU gets). The words heard differ slightly; the tests must hold.
test-backends: $(STAMP) system-packages
	CT2_USE_MKL=1 $(PY) -m pytest -m model
	CT2_USE_MKL=0 CT2_FORCE_CPU_ISA=GENERIC $(PY) -m pytest -m model

# What the tests need from Debian, installed when missing: chromium (the browser tests drive it
# through Playwright; no browser download), espeak-ng (generated test speech) and postgresql (the
# tests start throwaway servers; Debian keeps its server binaries off PATH, so look for them where
# tests/pg_server.py does).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SYSTEM_PACKAGES := chromium espeak-ng
POSTGRES_BINARIES := /usr/lib/postgresql/*/bin/postgres
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	ls $(POSTGRES_BINARIES) >/dev/null 2>&1 || command -v postgres >/dev/null || missing="$$missing postgresql"; \
	[ -z "$$missing" ] || { $(SUDO) apt-get update && $(SUDO) apt-get install -y $$missing; }

lint: $(STAMP)
	$(PY) -m ruff check .

clean-data:
	rm -rf data
