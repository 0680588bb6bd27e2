"""What every figure shares: headless matplotlib, decimated reads of the COGs, colour limits,
the map frame with the area outline, and saving.

Every figure reads decimated data: a COG is read at the resolution of the picture, which GDAL
serves from the file's overviews, so memory is bounded by the PNG size, not the raster size.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: clusters and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from shapely.geometry import MultiPolygon, Polygon  # noqa: E402

from ..atomic import write_figure  # noqa: E402
from ..products import ProductError  # noqa: E402

Roi = Polygon | MultiPolygon | None

QUICKLOOK_PIXELS = 1200  # longest side of the data drawn in a pair quicklook

# Colour limits of displacement: at least this percentile of |d| (the spread of the scene,
# isolated unwrapping errors ignored), and never below the peak of a local signal: a percentile
# alone clipped a 2.4 cm bump covering 0.2 % of a real scene at 1.5 cm.
ROBUST_PERCENTILE = 99.5
# A pixel belongs to a smooth signal (and its |d| may set the limit) when it differs from the
# median of its 3 x 3 neighbourhood by at most this fraction of that median; isolated spikes and
# pixel-to-pixel noise do not.
SMOOTH_TOLERANCE = 0.25
NO_DATA_COLOUR = "0.85"  # the axes' background, seen through the transparent no-data pixels


@dataclass
class Decimated:
    data: np.ndarray  # float32, NaN = no data
    extent: tuple[float, float, float, float]  # (west, east, south, north) for imshow
    centre_lat: float
    full_shape: tuple[int, int]


def read_decimated(path: str | Path, max_pixels: int = QUICKLOOK_PIXELS,
                   resampling: str = "average") -> Decimated:  # fmt: skip
    """The first band at most ``max_pixels`` on its longest side (served from overviews)."""
    import rasterio
    from rasterio.enums import Resampling

    path = Path(path)
    if not path.is_file():
        raise ProductError(f"{path} is missing; export the pair first (dinsar export)")
    with rasterio.Env(GDAL_CACHEMAX=64 * 2**20), rasterio.open(path) as src:  # bytes
        scale = max(src.width, src.height) / max_pixels
        if scale > 1:
            shape = (max(1, round(src.height / scale)), max(1, round(src.width / scale)))
        else:
            shape = (src.height, src.width)
        # No masked=True: rasterio would derive the mask from the full-resolution band, which
        # decompresses every tile. The float products' nodata is NaN, so the data carry it.
        data = src.read(1, out_shape=shape, resampling=Resampling[resampling]).astype(np.float32)
        if src.nodata is not None and not math.isnan(src.nodata):
            data[data == src.nodata] = np.nan
        west, south, east, north = src.bounds
        return Decimated(data, (west, east, south, north), (south + north) / 2, (src.height, src.width))


def robust_symmetric_limit(values: npt.ArrayLike, percentile: float = 98.0) -> float:
    """Symmetric colour limit: the given percentile of |values| (NaN ignored); > 0 always."""
    flat = np.abs(np.asarray(values, dtype=np.float64).ravel())
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 1.0
    limit = float(np.percentile(flat, percentile))
    if limit <= 0:
        limit = float(flat.max())
    return limit if limit > 0 else 1.0


def neighbourhood_median(values: np.ndarray) -> np.ndarray:
    """The median of each pixel's 3 x 3 neighbourhood (NaN ignored; edges padded with NaN)."""
    padded = np.pad(np.asarray(values, dtype=np.float64), 1, constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3)).reshape(*values.shape, 9)
    with warnings.catch_warnings():  # all-NaN neighbourhoods are NaN, as they should be
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(windows, axis=-1)


def peak_keeping_limit(values: npt.ArrayLike, percentile: float = ROBUST_PERCENTILE) -> float:
    """Symmetric colour limit that never saturates a smooth local peak.

    The larger of the ``percentile`` of |values| and the largest |value| of a pixel that agrees
    with its 3 x 3 neighbourhood (within SMOOTH_TOLERANCE of the neighbourhood's median). The
    top of any signal smooth at the pixel scale is such a pixel, so it sets the limit itself,
    however few pixels the signal covers; a lone spike (an unwrapping error) is not.
    """
    data = np.asarray(values, dtype=np.float64)
    limit = robust_symmetric_limit(data, percentile)
    if data.ndim != 2 or not np.isfinite(data).any():
        return limit
    median = neighbourhood_median(data)
    smooth = np.isfinite(data) & (np.abs(data - median) <= SMOOTH_TOLERANCE * np.abs(median))
    if smooth.any():
        limit = max(limit, float(np.abs(data[smooth]).max()))
    return limit


def displacement_units(limit_m: float) -> tuple[float, str]:
    """Scale and unit for a colour scale: mm below 1 cm, cm up to 1 m, else m."""
    if limit_m < 0.01:
        return 1000.0, "mm"
    if limit_m < 1.0:
        return 100.0, "cm"
    return 1.0, "m"


def displacement_scale(*images: npt.ArrayLike) -> tuple[float, float, str]:
    """(limit in m, scale, unit) of one symmetric displacement colour scale for these maps."""
    limit = max((peak_keeping_limit(image) for image in images), default=1.0)
    return (limit, *displacement_units(limit))


def colormap(name: str) -> Any:
    """A colour map whose no-data (NaN) pixels are transparent."""
    return plt.get_cmap(name).with_extremes(bad=(0, 0, 0, 0))


def displacement_label(unit: str) -> str:
    return f"LOS displacement [{unit}]  (+ towards the satellite)"


def roi_outline(ax: Any, roi: Roi) -> None:
    if roi is None:
        return
    polygons = roi.geoms if isinstance(roi, MultiPolygon) else [roi]
    for index, poly in enumerate(polygons):
        x, y = poly.exterior.xy
        ax.plot(x, y, color="black", lw=1.6, label="ROI" if index == 0 else None)
        ax.plot(x, y, color="white", lw=0.7, ls="--")


def frame(ax: Any, image: Decimated, roi: Roi) -> None:
    """Longitude/latitude axes at the true aspect, the area outline, no data in light grey."""
    ax.set_xlabel("longitude [deg]")
    ax.set_ylabel("latitude [deg]")
    ax.set_aspect(1 / max(0.1, math.cos(math.radians(image.centre_lat))))
    roi_outline(ax, roi)
    west, east, south, north = image.extent
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_facecolor(NO_DATA_COLOUR)
    ax.grid(alpha=0.25, lw=0.5)


def save(fig: Any, out_path: str | Path) -> Path:
    """Write the figure (atomically) and release it."""
    try:
        return write_figure(fig, out_path)
    finally:
        plt.close(fig)
