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
TEST_WORKERS ?= 2

.PHONY: report test lab demo env system-deps fresh-check clean-reports benchmark help

help:
	@echo "make report   build the demo study, run every notebook, write HTML under reports/"
	@echo "make test     the whole test suite (pytest on cxlab, nbval on notebooks, browser checks)"
	@echo "make lab      JupyterLab on notebooks/"
	@echo "make demo     (re)build the demo study in $(DEMO)/"
	@echo "make system-deps   install the Debian packages the tests use (R + packages, Chromium; as root)"
	@echo "make fresh-check   CI from nothing: fresh clone + fresh venv in a temp folder, then make test"

env: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "cxlab needs Python 3.11, found " + sys.version' \
	  || { echo "Set PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,warehouse,spark]"
	@touch $(STAMP)

# Debian packages the tests use, one word each (adding one is one word): R and every R package a
# script under tests/reference loads (survival, jsonlite, psych, and GPArotation for psych::omega),
# Debian's Chromium (browser checks), python3-venv (`python -m venv` on a bare Debian python),
# postgresql (the server tests/test_sources.py starts in a temporary folder).
SYSTEM_PACKAGES := r-base-core r-cran-survival r-cran-jsonlite r-cran-psych r-cran-gparotation chromium python3-venv postgresql
APT_LOG := /tmp/cxlab-system-deps.log

# Checks each package with dpkg; runs apt-get (update + install) only when one is missing and we
# are root on Debian. Prints one line: what it installed, what is missing and why, or that all
# were present. An apt failure prints the tail of apt's output (the tests then fall back to the
# stored R outputs and skip the browser checks, and say so in their summary).
system-deps:
	@missing=""; \
	for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	missing="$${missing# }"; \
	if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "system-deps: not a Debian system (no dpkg/apt-get): not installing $(SYSTEM_PACKAGES); install R, its packages and Chromium yourself"; \
	elif [ -z "$$missing" ]; then \
	  echo "system-deps: all present ($(SYSTEM_PACKAGES))"; \
	elif [ "$$(id -u)" != 0 ]; then \
	  echo "system-deps: MISSING $$missing (not root: run 'sudo make system-deps' to install them)"; \
	elif { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; } >$(APT_LOG) 2>&1; then \
	  echo "system-deps: installed $$missing (apt-get; log in $(APT_LOG))"; \
	else \
	  echo "system-deps: FAILED to install $$missing; last lines of $(APT_LOG):"; \
	  tail -n 15 $(APT_LOG) | sed 's/^/  apt: /'; \
	fi

$(DEMO_SPEC): cxlab/data/synth.py | $(STAMP)
	$(BIN)/cxlab demo --customers $(CUSTOMERS) --seed $(SEED) --out $(DEMO)

demo: $(STAMP)
	$(BIN)/cxlab demo --customers $(CUSTOMERS) --seed $(SEED) --out $(DEMO)

report: $(STAMP) $(DEMO_SPEC)
	$(BIN)/cxlab run runs/demo.yaml --jobs $(JOBS)

# The test files run on TEST_WORKERS pytest-xdist workers (0: in one process), a file to a worker
# (--dist loadfile: a module's shared fixtures, such as one cxlab run checked by several tests,
# are built once; a notebook's cells stay together for nbval). Much of the suite waits on kernels,
# JVMs and servers it starts, so two workers on two cores took the suite from 27-29 min to 12.5 min.
# pytest's -ra summary lists every skip with its reason; tests/conftest.py adds a "cxlab checks"
# section (R references re-computed or compared with stored outputs, skips by reason).
test: system-deps $(STAMP) $(DEMO_SPEC)
	$(BIN)/python -m pytest tests --nbval-lax notebooks -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

# CI from nothing (a fresh clone of HEAD and a fresh venv in a temporary folder); heavy.
fresh-check:
	.ci/fresh-clone-check

lab: $(STAMP) $(DEMO_SPEC)
	$(BIN)/jupyter lab notebooks/

benchmark: $(STAMP)
	$(BIN)/python benchmarks/bench_panel.py

clean-reports:
	rm -rf reports/*/ reports/latest
