"""Rule `burst_metadata`: a slice's burst-extractor metadata for one polarization, once."""

from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.burst_staging import burst_targets, find_burst
from dinsar.config import validate_config
from dinsar.credentials import earthdata_session
from dinsar.download import download


def main(snakemake):
    cfg = validate_config(snakemake.config)
    w = snakemake.wildcards
    burst = find_burst(snakemake.params.inventory, source=w.slice, polarization=w.pol)
    _, xml = burst_targets(burst, Path(snakemake.output.xml).parent)
    session = earthdata_session(cfg.download.edl_host, cfg.network.ca_bundle)
    with open(snakemake.log[0], "a", encoding="utf-8") as progress:
        download(xml, session, cfg.network, cfg.download, progress)


if "snakemake" not in globals():
    snakemake = mock_snakemake(
        "burst_metadata",
        configfiles=["config/roi.yaml"],
        slice="S1B_IW_SLC__1SDV_20180628T151541_20180628T151608_011575_015476_4673",
        pol="VV",
    )
run(main, snakemake)
