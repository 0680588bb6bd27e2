# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config/roi.yaml
CORES  ?= 12
# more Snakemake options for run, plan and stage, e.g. ARGS="--directory /scratch/me -n"
ARGS   ?=
STAMP  := $(VENV)/.installed
GDAL_STAMP := $(VENV)/.gdal

.PHONY: run plan stage test test-fast test-real lint isce2 isce2-if-needed clean-isce2 clean-venv

# GDAL's Python bindings for the venv, built against the system's libgdal (PyPI's newest
# bindings refuse an older libgdal); installed before the package, since burst2safe (burst
# mode) requires them and pip would otherwise fetch the newest
$(GDAL_STAMP):
	@command -v gdal-config >/dev/null || bash envs/system-packages.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet numpy setuptools wheel
	$(BIN)/pip install --quiet --no-build-isolation "GDAL==$$(gdal-config --version)"
	touch $(GDAL_STAMP)

$(STAMP): pyproject.toml $(GDAL_STAMP)
	$(BIN)/pip install --quiet -e '.[test,timeseries]'
	touch $(STAMP)

# ISCE2 2.6.5 built from its source release, outside the clone (a second run does nothing)
isce2:
	bash envs/isce2/build.sh

# build ISCE2 only when no topsApp.py of ISCE2 >= 2.6.5 is found (isce.topsapp aside)
isce2-if-needed: $(STAMP)
	@$(BIN)/dinsar isce2 --need || bash envs/isce2/build.sh

clean-isce2:
	rm -rf "$$(bash envs/isce2/build.sh --prefix)"

# targets and options go before --configfile, which takes every word after it as a file
run: isce2-if-needed $(GDAL_STAMP)
	$(BIN)/snakemake --cores $(CORES) $(ARGS) --configfile $(CONFIG)

plan: $(STAMP)
	$(BIN)/snakemake plan --cores 1 $(ARGS) --configfile $(CONFIG)

stage: $(STAMP)
	$(BIN)/snakemake stage --cores 4 $(ARGS) --configfile $(CONFIG)

test: isce2-if-needed $(GDAL_STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow and not slurm and not real and not real_heavy'

# the real-topsApp proofs that need many more runs than CI affords (results: tests/REAL.md)
test-real: isce2-if-needed $(GDAL_STAMP)
	$(BIN)/python -m pytest -m 'real or real_heavy' -v

lint: $(STAMP)
	$(BIN)/ruff check scripts tests benchmarks
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint --configfile config/roi.yaml

clean-venv:
	rm -rf $(VENV)
