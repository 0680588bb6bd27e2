"""Checkpoint `dem_extent`: where the track's DEM must reach, from the annotations in the zips.

The bursts topsApp keeps for the ROI on every used date (dinsar.bursts, ISCE's crop), at the
heights they can have (a `dem.file`'s own range, else ISCE's -500..9000 m), the geocoding box
and dem.buffer; and the multilooked pixel spacing the geocoded products follow.
"""

import logging

from _helpers import mock_snakemake, run
from dinsar.bursts import ISCE_CROP_HEIGHTS
from dinsar.config import validate_config
from dinsar.dem import dem_requirement, file_height_range, multilooked_spacing
from dinsar.records import DemExtent
from dinsar.roi import parse_roi
from dinsar.safe import read_safe

log = logging.getLogger("dinsar.dem_extent")


def main(snakemake):
    cfg = validate_config(snakemake.config)
    track = snakemake.wildcards.track
    roi = parse_roi(cfg.roi)
    pol = cfg.search.polarization.lower()
    dates = [[read_safe(z, pol) for z in zips] for zips in snakemake.params.dates.values()]

    def requirement(heights):
        return dem_requirement(
            dates, roi, swaths=cfg.isce.swaths, buffer=cfg.dem.buffer,
            geocode_margin=cfg.isce.geocode_margin, heights=heights, what=f"track {track}",
        )  # fmt: skip

    heights = ISCE_CROP_HEIGHTS
    if cfg.dem.file:
        # the file's own heights place the bursts where topo will map them
        heights = file_height_range(cfg.dem.file, requirement(ISCE_CROP_HEIGHTS)) or heights
    bounds = requirement(heights)
    swaths = [sw for safes in dates for safe in safes for sw in safe.swaths.values()]
    spacing = multilooked_spacing(swaths, cfg.isce.range_looks, cfg.isce.azimuth_looks)
    log.info("the DEM of track %s must cover %s: the bursts topsApp keeps on %d date(s) at "
             "heights %.0f..%.0f m, the geocoding box and dem.buffer %.3f deg; multilooked "
             "pixels %.0f m", track, bounds, len(dates), heights[0], heights[-1],
             cfg.dem.buffer, spacing)  # fmt: skip
    DemExtent(bounds=list(bounds), heights_m=list(heights), dates=len(dates),
              product_spacing_m=spacing).write(snakemake.output.extent)  # fmt: skip


if "snakemake" not in globals():
    snakemake = mock_snakemake("dem_extent", configfiles=["config/roi.yaml"], track="13_DESC")
run(main, snakemake)
