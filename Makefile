# Every target installs what it needs: a fresh clone runs `make demo` or `make test` as is.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# checkov pins versions that clash with the runtime's, so it lives in a venv of its own.
TOOLS_VENV := .venv-tools
STAMP := $(VENV)/.installed-stamp
TOOLS_STAMP := $(TOOLS_VENV)/.installed-stamp

.PHONY: venv tools browser up down demo test test-unit lint bench clean tfvars audio-fixtures screenshot

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

tools: $(TOOLS_STAMP)

$(TOOLS_STAMP):
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet 'checkov>=3,<4'
	touch $@

# The dashboard's tests drive Debian's Chromium (tests/e2e/browser.py); installed here when missing (as root).
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q chromium chromium-driver || { apt-get update -q && apt-get install -y -q chromium chromium-driver; }; }

up: venv
	$(PY) -m stack up

down: venv
	$(PY) -m stack down

# KEEP=1: the stack stays up after the demo, its dashboard open to a browser; `make down` stops it.
demo: venv
	$(PY) -m stack demo $(if $(filter 1,$(KEEP)),--keep)

test: venv tools browser
	$(PY) -m pytest

# docs/dashboard.png, taken by the dashboard's browser test on the data it makes (README shows it).
screenshot: venv browser
	STT_DASHBOARD_SCREENSHOT=$(CURDIR)/docs/dashboard.png $(PY) -m pytest -q tests/e2e/test_dashboard.py

test-unit: venv
	$(PY) -m pytest tests/unit

# Terraform's copy of shared/topology.py: run after changing the topology, ENV_NAMES or the dependencies.
tfvars: venv
	$(PY) -m stack.tfvars

# The speech clips tests/fixtures/audio/ holds (committed; tests never regenerate them). Needs espeak-ng.
audio-fixtures: venv
	$(PY) tests/fixtures/audio/generate.py

lint: venv
	$(PY) -m ruff check shared functions stack tests bench sttdata_cli
	$(PY) -m mypy shared functions stack sttdata_cli

bench: venv
	$(PY) bench/stack_startup.py
	$(PY) bench/push_path.py
	$(PY) bench/ingestion.py
	$(PY) bench/imports.py
	$(PY) bench/metrics_path.py
	$(PY) bench/dataset_build.py
	$(PY) bench/snapshot_build.py
	$(PY) bench/dataset_reads.py
	$(PY) bench/aggregate_export.py
	$(PY) bench/augment.py

clean: down
	rm -rf .local
