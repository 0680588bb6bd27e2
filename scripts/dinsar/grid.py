"""A north-up longitude/latitude raster grid: the one description every raster of ours uses.

Held as GDAL's geotransform (the outer corner of the first pixel, then the steps) and the size,
so that a grid read from a file writes back bit for bit. ISCE names a grid by its first
*sample* (``startingvalue``); ``first_lon``/``first_lat`` give that, half a step inside.
"""

from __future__ import annotations

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
