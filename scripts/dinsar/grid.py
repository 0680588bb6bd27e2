"""A north-up longitude/latitude raster grid: the one description every raster of ours uses.

Held as GDAL's geotransform (the outer corner of the first pixel, then the steps) and the size,
so that a grid read from a file writes back bit for bit. ISCE names a grid by its first
*sample* (``startingvalue``); ``first_lon``/``first_lat`` give that, half a step inside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import DinsarError

Transform = tuple[float, float, float, float, float, float]


class GridError(DinsarError):
    """A raster is not on a north-up longitude/latitude grid."""


@dataclass(frozen=True)
class Grid:
    transform: Transform  # GDAL order: west, dlon, 0, north, 0, dlat (< 0)
    width: int
    length: int

    @classmethod
    def from_transform(cls, transform: Any, width: int, length: int) -> Grid:
        """From a GDAL tuple or a rasterio Affine (corner convention)."""
        values = transform.to_gdal() if hasattr(transform, "to_gdal") else tuple(transform)
        c, a, b, f, d, e = (float(v) for v in values)
        if b != 0 or d != 0 or e >= 0 or a <= 0:
            raise GridError(f"the grid is rotated or not north-up ({values})")
        return cls((c, a, 0.0, f, 0.0, e), int(width), int(length))

    @classmethod
    def from_first_sample(cls, first_lon: float, delta_lon: float, first_lat: float,
                          delta_lat: float, width: int, length: int) -> Grid:  # fmt: skip
        return cls.from_transform(
            (first_lon - delta_lon / 2, delta_lon, 0.0, first_lat - delta_lat / 2, 0.0, delta_lat),
            width,
            length,
        )

    @property
    def delta_lon(self) -> float:
        return self.transform[1]

    @property
    def delta_lat(self) -> float:
        return self.transform[5]

    @property
    def first_lon(self) -> float:
        """Longitude of the first sample (ISCE's startingvalue of coordinate1)."""
        return self.transform[0] + self.delta_lon / 2

    @property
    def first_lat(self) -> float:
        return self.transform[3] + self.delta_lat / 2

    @property
    def last_lon(self) -> float:
        return self.first_lon + (self.width - 1) * self.delta_lon

    @property
    def last_lat(self) -> float:
        return self.first_lat + (self.length - 1) * self.delta_lat

    def sample_bounds(self) -> tuple[float, float, float, float]:
        """[W, S, E, N] of the sample positions (what can be interpolated within)."""
        return (self.first_lon, self.last_lat, self.last_lon, self.first_lat)

    def bounds(self) -> tuple[float, float, float, float]:
        """[W, S, E, N] of the pixels' outer edges."""
        west, north = self.transform[0], self.transform[3]
        return (west, north + self.length * self.delta_lat, west + self.width * self.delta_lon,
                north)  # fmt: skip

    def coarsen(self, k: int) -> Grid:
        """The grid of k x k block means: the same corner, k times the step, whole blocks only."""
        c, a, _, f, _, e = self.transform
        return Grid((c, a * k, 0.0, f, 0.0, e * k), self.width // k, self.length // k)

    def same_as(self, other: Grid, atol: float = 1e-9) -> bool:
        return (self.width, self.length) == (other.width, other.length) and all(
            abs(x - y) <= atol for x, y in zip(self.transform, other.transform, strict=True)
        )


# ------------------------------------------------------------------------------------------------
# The track grid: every pair of a track on one lattice and one extent
# ------------------------------------------------------------------------------------------------

# How far (in pixels) a grid may sit from the lattice and still count as on it: float noise in
# ISCE's XML, never a real offset (the smallest real one, a DEM resampled by a factor, is 1/10).
ALIGN_TOLERANCE_PX = 1e-4


class GridMisalignedError(GridError):
    """A pair's grid does not sit on the track grid's lattice (posting or a fraction of a pixel)."""


def track_grid(lattice: Grid, bounds_wsen: tuple[float, float, float, float] | list[float],
               margin: float = 0.0) -> Grid:  # fmt: skip
    """The track grid: the pixels of ``lattice`` that cover ``bounds_wsen`` [W, S, E, N] plus
    ``margin`` degrees (clipped to valid longitudes and latitudes).

    Same CRS, posting and alignment as the lattice (the track's geocoding DEM, whose samples
    topsApp's geocode writes); the extent is snapped outwards to whole pixels, so a pixel that
    the area touches is in.
    """
    west, south, east, north = (float(v) for v in bounds_wsen)
    west, south = max(-180.0, west - margin), max(-90.0, south - margin)
    east, north = min(180.0, east + margin), min(90.0, north + margin)
    if not (west < east and south < north):
        raise GridError(f"the area [W, S, E, N] {list(bounds_wsen)} is empty")
    x0, dx, _, y0, _, dy = lattice.transform
    eps = ALIGN_TOLERANCE_PX
    col0 = math.floor((west - x0) / dx + eps)
    col1 = math.ceil((east - x0) / dx - eps)
    row0 = math.floor((y0 - north) / -dy + eps)
    row1 = math.ceil((y0 - south) / -dy - eps)
    return Grid((x0 + col0 * dx, dx, 0.0, y0 + row0 * dy, 0.0, dy), col1 - col0, row1 - row0)


@dataclass(frozen=True)
class Overlap:
    """Where a grid (the source) lands on an aligned grid (the target), in whole pixels.

    Source row ``r`` is target row ``r + row_offset`` (likewise columns); ``rows``/``cols`` are
    the overlapping target rows and columns, as [start, stop) (empty when they do not meet).
    """

    row_offset: int
    col_offset: int
    rows: tuple[int, int]
    cols: tuple[int, int]

    @property
    def empty(self) -> bool:
        return self.rows[0] >= self.rows[1] or self.cols[0] >= self.cols[1]

    def is_identity(self, source: Grid, target: Grid) -> bool:
        """The source is the target: same origin and size."""
        return (self.row_offset, self.col_offset) == (0, 0) and (source.width, source.length) == (
            target.width, target.length)  # fmt: skip

    def window(self, row0: int, rows: int) -> tuple[int, int, int]:
        """For target rows [row0, row0 + rows): (first of them the source covers, the source's
        row there, how many rows); the count is 0 when the source covers none."""
        first, stop = max(row0, self.rows[0]), min(row0 + rows, self.rows[1])
        if first >= stop:
            return 0, 0, 0
        return first - row0, first - self.row_offset, stop - first


def _whole(value: float, what: str, source: Grid, target: Grid) -> int:
    whole = round(value)
    if abs(value - whole) > ALIGN_TOLERANCE_PX:
        raise GridMisalignedError(
            f"the pair's grid is {abs(value - whole):.4f} of a pixel off the track grid's "
            f"lattice in {what} (at {value:+.4f} pixels; pair {source.transform}, track "
            f"{target.transform}); a fraction of a pixel would need "
            "resampling, which the export refuses: geocode the pair again onto the track's "
            "geocoding DEM (rerun its topsApp geocode step)"
        )
    return int(whole)


def overlap(source: Grid, target: Grid) -> Overlap:
    """The whole-pixel placement of ``source`` on ``target``; refuses grids that are not aligned
    (another posting, or an origin a fraction of a pixel off the target's lattice)."""
    for axis, a, b, size in (("longitude", source.delta_lon, target.delta_lon, target.width),
                             ("latitude", source.delta_lat, target.delta_lat, target.length)):  # fmt: skip
        # the posting must agree to within the tolerance across the whole target
        if abs(a - b) * max(size, 1) > ALIGN_TOLERANCE_PX * abs(b):
            raise GridMisalignedError(
                f"the pair's {axis} posting {a!r} differs from the track grid's {b!r}; the export "
                "does not resample: geocode the pair onto the track's geocoding DEM"
            )
    col = _whole((source.transform[0] - target.transform[0]) / target.delta_lon, "longitude",
                 source, target)  # fmt: skip
    row = _whole((source.transform[3] - target.transform[3]) / target.delta_lat, "latitude",
                 source, target)  # fmt: skip
    rows = (max(0, row), min(target.length, row + source.length))
    cols = (max(0, col), min(target.width, col + source.width))
    return Overlap(row, col, rows, cols)
