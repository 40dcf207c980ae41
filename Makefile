# cxlab — the two commands: `make report` and `make test` (see README.md).
# Each target creates .venv with pip when it is missing; nothing else needs to be installed first.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := data/demo
DEMO_SPEC := $(DEMO)/study.yaml
CUSTOMERS ?= 20000
SEED ?= 2026
JOBS ?= 2

.PHONY: report test lab demo env system-deps clean-reports benchmark help

help:
	@echo "make report   build the demo study, run every notebook, write HTML under reports/"
	@echo "make test     the whole test suite (pytest on cxlab, nbval on notebooks, browser checks)"
	@echo "make lab      JupyterLab on notebooks/"
	@echo "make demo     (re)build the demo study in $(DEMO)/"

env: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "cxlab needs Python 3.11, found " + sys.version' \
	  || { echo "Set PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

# System packages for the checks that need them: R + survival (reference values are re-computed;
# the stored ones are used without R) and Debian's Chromium (browser tests). Best effort: needs
# root and Debian's package index; skipped quietly elsewhere.
system-deps:
	@if { ! command -v Rscript >/dev/null || ! command -v chromium >/dev/null; } && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing r-base-core r-cran-survival chromium (apt)"; \
	  apt-get update -qq >/dev/null 2>&1; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq r-base-core r-cran-survival chromium >/dev/null 2>&1 \
	    || echo "warning: apt-get could not install R/Chromium; tests fall back to stored reference values"; \
	fi

$(DEMO_SPEC): cxlab/synth.py | $(STAMP)
	$(BIN)/cxlab demo --customers $(CUSTOMERS) --seed $(SEED) --out $(DEMO)

demo: $(STAMP)
	$(BIN)/cxlab demo --customers $(CUSTOMERS) --seed $(SEED) --out $(DEMO)

report: $(STAMP) $(DEMO_SPEC)
	$(BIN)/cxlab run runs/demo.yaml --jobs $(JOBS)

test: $(STAMP) system-deps $(DEMO_SPEC)
	$(BIN)/python -m pytest tests --nbval-lax notebooks -p no:cacheprovider

lab: $(STAMP) $(DEMO_SPEC)
	$(BIN)/jupyter lab notebooks/

benchmark: $(STAMP)
	$(BIN)/python benchmarks/bench_panel.py

clean-reports:
	rm -rf reports/*/ reports/latest
