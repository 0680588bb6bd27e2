"""Rule `download_burst`: one burst's TIFF into the shared burst cache, resumable, checked whole."""

from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.burst_staging import fetch
from dinsar.config import validate_config


def main(snakemake):
    folder = Path(snakemake.output.tiff).parent
    fetch(snakemake.params.inventory, 0, folder, validate_config(snakemake.config),
          snakemake.log[0], granule=snakemake.wildcards.burst)  # fmt: skip


if "snakemake" not in globals():
    snakemake = mock_snakemake(
        "download_burst",
        configfiles=["config/roi.yaml"],
        burst="S1_372326_IW3_20180628T151555_VV_4673-BURST",
    )
run(main, snakemake)
