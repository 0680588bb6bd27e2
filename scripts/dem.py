"""Rule `dem`: the track's ISCE DEM and geocoding DEM (+ .xml/.vrt) and their manifest.

Over the extent the `dem_extent` checkpoint found (the bursts topsApp will process).
"""

from pathlib import Path

import requests

from _helpers import mock_snakemake, run
from dinsar.config import validate_config
from dinsar.credentials import earthdata_session
from dinsar.dem import (
    DEM_NAME,
    GEOCODE_DEM_NAME,
    ZIPPED_DATASETS,
    build_dem,
)
from dinsar.net import pin_ca_bundle
from dinsar.records import DemExtent


def main(snakemake):
    cfg = validate_config(snakemake.config)
    extent = DemExtent(**snakemake.params.extent)
    out_dir = Path(snakemake.output.dem).parent
    assert Path(snakemake.output.dem).name == DEM_NAME
    assert Path(snakemake.output.geocode).name == GEOCODE_DEM_NAME
    session = None
    if not cfg.dem.file:
        if cfg.dem.source in ZIPPED_DATASETS:  # SRTM/NASADEM tiles are behind Earthdata Login
            session = earthdata_session(cfg.download.edl_host, cfg.network.ca_bundle)
        else:
            session = pin_ca_bundle(requests.Session(), cfg.network.ca_bundle)
    with open(snakemake.log[0], "a", encoding="utf-8") as progress:
        manifest = build_dem(
            cfg.dem,
            snakemake.wildcards.track,
            extent.bounds,
            out_dir,
            cfg.cache_dir("dem_tiles") / cfg.dem.source,
            session,
            cfg.network,
            extent.product_spacing_m,
            progress,
        )
    manifest.requirement = extent
    manifest.write(snakemake.output.manifest)


if "snakemake" not in globals():
    snakemake = mock_snakemake("dem", configfiles=["config/roi.yaml"], track="13_DESC")
run(main, snakemake)
