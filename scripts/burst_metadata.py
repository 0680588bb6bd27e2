"""Rule `burst_metadata`: a slice's burst-extractor metadata for one polarization, once."""

from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.burst_staging import fetch
from dinsar.config import validate_config


def main(snakemake):
    w = snakemake.wildcards
    fetch(snakemake.params.inventory, 1, Path(snakemake.output.xml).parent,
          validate_config(snakemake.config), snakemake.log[0], source=w.slice,
          polarization=w.pol)  # fmt: skip


if "snakemake" not in globals():
    snakemake = mock_snakemake(
        "burst_metadata",
        configfiles=["config/roi.yaml"],
        slice="S1B_IW_SLC__1SDV_20180628T151541_20180628T151608_011575_015476_4673",
        pol="VV",
    )
run(main, snakemake)
