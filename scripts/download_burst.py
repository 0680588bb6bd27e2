"""Rule `download_burst`: one burst's TIFF into the shared burst cache, resumable, checked whole."""

from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.burst_staging import burst_targets, find_burst
from dinsar.config import validate_config
from dinsar.credentials import earthdata_session
from dinsar.download import download


def main(snakemake):
    cfg = validate_config(snakemake.config)
    burst = find_burst(snakemake.params.inventory, granule=snakemake.wildcards.burst)
    tiff, _ = burst_targets(burst, Path(snakemake.output.tiff).parent)
    session = earthdata_session(cfg.download.edl_host, cfg.network.ca_bundle)
    with open(snakemake.log[0], "a", encoding="utf-8") as progress:
        download(tiff, session, cfg.network, cfg.download, progress)


if "snakemake" not in globals():
    snakemake = mock_snakemake(
        "download_burst",
        configfiles=["config/roi.yaml"],
        burst="S1_372326_IW3_20180628T151555_VV_4673-BURST",
    )
run(main, snakemake)
