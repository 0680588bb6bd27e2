"""Rule `search`: find the scenes (ASF or a saved search) and write the inventory."""

from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.config import validate_config
from dinsar.search import run_search


def main(snakemake):
    cfg = validate_config(snakemake.config)
    # no usable date: the plan never runs, so the search draws its coverage figure
    run_search(cfg, Path(snakemake.output.scenes), Path(snakemake.output.dates),
               Path(snakemake.params.coverage))  # fmt: skip


if "snakemake" not in globals():
    snakemake = mock_snakemake("search", configfiles=["config/roi.yaml"])
run(main, snakemake)
