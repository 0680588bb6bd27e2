"""Incidence and azimuth angles of the line of sight (``los.rdr``, geocoded)."""

from __future__ import annotations

import numpy as np

from .context import ExportContext
from .isce_input import valid_two_band
from .spec import ProductSpec, with_nodata

INCIDENCE_ANGLE = "incidence_angle.tif"
AZIMUTH_ANGLE = "azimuth_angle.tif"

INCIDENCE_DEFINITION = (
    "incidence angle at the target, degrees from the local vertical (ISCE los.rdr band 1)"
)
AZIMUTH_DEFINITION = (
    "azimuth of the target-to-satellite line of sight, degrees from north, anticlockwise "
    "(positive towards west; ISCE los.rdr band 2). Ground-to-satellite unit vector ENU = "
    "(-sin(inc)*sin(az), sin(inc)*cos(az), cos(inc))"
)

INCIDENCE_ANGLE_SPEC = ProductSpec(
    "incidence_angle", INCIDENCE_ANGLE, "float32", "deg", INCIDENCE_DEFINITION, "AVERAGE",
    source_band=1,
)  # fmt: skip
AZIMUTH_ANGLE_SPEC = ProductSpec(
    "azimuth_angle", AZIMUTH_ANGLE, "float32", "deg", AZIMUTH_DEFINITION, "NEAREST",
    source_band=2,
)  # fmt: skip


def angles_window(bands: np.ndarray, row0: int, ctx: ExportContext) -> dict[str, np.ndarray]:
    incidence, azimuth = bands[0], bands[1]
    valid = valid_two_band(incidence, azimuth)
    return {"incidence_angle": with_nodata(incidence, valid),
            "azimuth_angle": with_nodata(azimuth, valid)}  # fmt: skip
