"""Rule `download_slc`: one SAFE zip into the shared SLC cache, resumable and md5-verified."""

from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.config import validate_config
from dinsar.credentials import earthdata_session
from dinsar.download import DownloadError, Target, download
from dinsar.inventory import load_saved_search, validate_granule


def main(snakemake):
    cfg = validate_config(snakemake.config)
    granule = validate_granule(snakemake.wildcards.granule)
    scene = next(
        (s for s in load_saved_search(snakemake.params.inventory) if s.granule == granule), None
    )
    if scene is None:
        raise DownloadError(
            f"{granule} is not in {snakemake.params.inventory}; the inventory changed: "
            "rerun the plan"
        )
    session = earthdata_session(cfg.download.edl_host, cfg.network.ca_bundle)
    target = Target(scene.url, Path(snakemake.output.zip), scene.bytes, scene.md5, granule)
    # the progress bar goes into this job's log, one line per download.progress_seconds
    with open(snakemake.log[0], "a", encoding="utf-8") as progress:
        download(target, session, cfg.network, cfg.download, progress)


if "snakemake" not in globals():
    snakemake = mock_snakemake(
        "download_slc",
        configfiles=["config/roi.yaml"],
        granule="S1A_IW_SLC__1SDV_20161007T141928_20161007T141956_013385_0155BE_46C1",
    )
run(main, snakemake)
