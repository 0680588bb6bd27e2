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
    DemSpec,
    build_dem,
    write_manifest,
)
from dinsar.download import Policy
from dinsar.net import pin_ca_bundle


def main(snakemake):
    cfg = validate_config(snakemake.config)
    extent = snakemake.params.extent
    spec = DemSpec(
        track=snakemake.wildcards.track,
        bounds=tuple(extent["bounds"]),
        source=cfg.dem.source,
        file=cfg.dem.file,
        file_vertical_datum=cfg.dem.file_vertical_datum,
        geocode_resample=cfg.dem.geocode_resample,
        product_spacing_m=extent["product_spacing_m"],
    )
    out_dir = Path(snakemake.output.dem).parent
    assert Path(snakemake.output.dem).name == DEM_NAME
    assert Path(snakemake.output.geocode).name == GEOCODE_DEM_NAME
    session = None
    if not spec.file:
        if spec.source in ZIPPED_DATASETS:  # SRTM/NASADEM tiles are behind Earthdata Login
            session = earthdata_session(cfg.download.edl_host, cfg.network.ca_bundle)
        else:
            session = pin_ca_bundle(requests.Session(), cfg.network.ca_bundle)
    with open(snakemake.log[0], "a", encoding="utf-8") as progress:
        manifest = build_dem(
            spec,
            out_dir,
            cfg.cache_dir("dem_tiles") / spec.source,
            session,
            Policy.from_config(cfg),
            cfg.dem.tiles_url,
            cfg.dem.geoid,
            cfg.network.ca_bundle,
            progress,
        )
    manifest["requirement"] = extent
    write_manifest(Path(snakemake.output.manifest), manifest)


if "snakemake" not in globals():
    snakemake = mock_snakemake("dem", configfiles=["config/roi.yaml"], track="13_DESC")
run(main, snakemake)
