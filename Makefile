# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config/roi.yaml
CORES  ?= 12
STAMP  := $(VENV)/.installed

.PHONY: run plan stage test test-fast lint clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG)

plan: $(STAMP)
	$(BIN)/snakemake --cores 1 --configfile $(CONFIG) plan

stage: $(STAMP)
	$(BIN)/snakemake --cores 4 --configfile $(CONFIG) stage

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow and not slurm'

lint: $(STAMP)
	$(BIN)/ruff check scripts tests benchmarks
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint --configfile config/roi.yaml

clean-venv:
	rm -rf $(VENV)
