# Quick start:  make demo  (run the whole workflow on the built-in demo trial)
#               make test  (run the test suite)
# Both create a virtualenv in .venv with the pinned packages of pyproject.toml on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# every core of this machine (snakemake --cores all): more jobs at once than cores made the demo slower
# (README, quick start). `make demo CORES=4` to choose.
CORES ?= all

.PHONY: demo demo-small test test-slow lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

# the small test configuration (.test: 12 files of 5,000 events) and its report
demo-small: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --directory .test
	$(BIN)/snakemake --directory .test --report $(CURDIR)/.test/results/report.html

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/snakemake --lint

clean:
	rm -rf results logs resources .snakemake .test/results .test/logs .test/resources .test/.snakemake
