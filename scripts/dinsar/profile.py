"""A profile through a product: values sampled along a straight line between two points.

For exploring the products (``examples/04_explore_products.ipynb``): e.g. the LOS displacement
across a deforming area. Samples take the value of the pixel they fall in; outside the grid or
on nodata they are NaN. Distances are along the ground (spherical Earth), in kilometres.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DinsarError

log = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Profile:
    """Samples along a line: lon, lat, distance from the start (km), value (NaN: no data)."""

    raster: Path
    lon: np.ndarray
    lat: np.ndarray
    distance_km: np.ndarray
    values: np.ndarray
    units: str

    def plot(self, ax: Any = None, label: str | None = None) -> Any:
        """Draw the profile (matplotlib); returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3))
        ax.plot(self.distance_km, self.values, label=label or self.raster.stem)
        ax.set_xlabel("distance along the profile (km)")
        ax.set_ylabel(f"{self.raster.stem} ({self.units})" if self.units else self.raster.stem)
        ax.grid(alpha=0.3)
        return ax


def _distance_km(lon0: float, lat0: float, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    p0, p1 = math.radians(lat0), np.radians(lat)
    dp, dl = p1 - p0, np.radians(lon - lon0)
    a = np.sin(dp / 2) ** 2 + math.cos(p0) * np.cos(p1) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


def sample_profile(
    raster: str | Path,
    start: tuple[float, float],
    end: tuple[float, float],
    samples: int = 200,
    band: int = 1,
) -> Profile:
    """Sample ``raster`` (EPSG:4326, e.g. a product COG) from ``start`` to ``end``, each a
    (lon, lat) pair, at ``samples`` evenly spaced points."""
    import rasterio

    path = Path(raster)
    if samples < 2:
        raise DinsarError(f"a profile needs at least 2 samples, got {samples}")
    if not path.is_file():
        raise DinsarError(f"{path} not found; give the path of a product, e.g. "
                          "<workspace>/products/<pair>/los_displacement.tif")  # fmt: skip
    lon = np.linspace(start[0], end[0], samples)
    lat = np.linspace(start[1], end[1], samples)
    with rasterio.open(path) as ds:
        data = ds.read(band, masked=True).astype("float64").filled(np.nan)
        rows, cols = rasterio.transform.rowcol(ds.transform, lon, lat)
        units = (ds.units[band - 1] or "") if ds.units else ""
    rows, cols = np.asarray(rows), np.asarray(cols)
    inside = (rows >= 0) & (rows < data.shape[0]) & (cols >= 0) & (cols < data.shape[1])
    values = np.full(samples, np.nan)
    values[inside] = data[rows[inside], cols[inside]]
    if not inside.any():
        log.warning("the profile %s -> %s lies outside %s", start, end, path)
    return Profile(path, lon, lat, _distance_km(start[0], start[1], lon, lat), values, units)
