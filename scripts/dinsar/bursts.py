"""Where a swath's bursts lie on the ground, and which of them topsApp keeps for an area.

Everything comes from the annotation's geolocation grid, which gives latitude, longitude,
height, incidence angle and slant-range time at nodes of azimuth time x range pixel; no orbit
and no ISCE are needed. Positions are interpolated in *azimuth time*, not in line number: a
swath's TIFF stacks its bursts line after line, but consecutive bursts overlap in time by
about 0.3 s (2 km), so a grid row at a burst boundary is the next burst's first line.

ISCE's crop. ``Sentinel1.crop`` keeps a burst when its bounding box overlaps the region of
interest; the box is that of the burst's four corners mapped at heights -500 m and 9000 m
(``BurstSLC.getBbox``). A target higher above the ellipsoid at the same slant range lies
further from the satellite's ground track: at 9000 m about 13 km further in ground range. So
ISCE often keeps one burst more than the footprints meet, and those bursts are what topo
maps, what the DEM must cover and what the pair's disk and memory scale with.

Moving a point to another height keeps its azimuth time and slant range: on the sphere of the
local Earth radius, the triangle Earth centre - satellite - target gives the ground angle for
any target height (the satellite's radius follows from the grid's own height and incidence),
and the ellipsoid's normal leans poleward of that sphere's radius (geodetic minus geocentric
latitude). Checked against an orbit-based zero-Doppler solution
(tests/harness/radar_geometry.py): within 10 m at every corner and height.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely import affinity

SPEED_OF_LIGHT = 299792458.0
WGS84_A = 6378137.0
WGS84_E2 = 0.0066943799901413165
# ISCE's BurstSLC.getBbox: the heights at which a burst's corners are mapped for its crop
ISCE_CROP_HEIGHTS = (-500.0, 9000.0)

Box = tuple[float, float, float, float]  # [W, S, E, N]


@dataclass(frozen=True)
class GeolocationGrid:
    """The annotation's grid: rows by azimuth time (seconds after ``epoch``), columns by pixel."""

    epoch: dt.datetime
    times: np.ndarray  # (rows,)
    pixels: np.ndarray  # (cols,)
    lat: np.ndarray  # (rows, cols), degrees
    lon: np.ndarray
    height: np.ndarray  # metres above the ellipsoid
    incidence: np.ndarray  # degrees from the vertical
    slant_range_time: np.ndarray  # two-way, seconds

    @classmethod
    def from_points(cls, points: Iterable[tuple[int, dt.datetime, float, float, float, float,
                                                float, float]]) -> GeolocationGrid:  # fmt: skip
        """From (line, azimuth time, pixel, lat, lon, height, incidence, slant-range time) per
        node; a row's time is the mean of its nodes' (they differ by microseconds)."""
        nodes = list(points)
        if len(nodes) < 4:
            raise ValueError("annotation has no usable geolocation grid")
        epoch = min(n[1] for n in nodes)
        rows: dict[int, list[tuple[float, ...]]] = {}
        for line, time, pixel, *values in nodes:
            rows.setdefault(line, []).append(((time - epoch).total_seconds(), pixel, *values))
        pixels = sorted({n[2] for n in nodes})
        times, table = [], []
        for _line, row in sorted(rows.items()):
            row.sort(key=lambda r: r[1])
            if [r[1] for r in row] != pixels:
                raise ValueError("the geolocation grid is not regular (rows of other pixels)")
            times.append(sum(r[0] for r in row) / len(row))
            table.append([r[2:] for r in row])
        if len(times) < 2:
            raise ValueError("annotation has no usable geolocation grid")
        order = np.argsort(times)
        values = np.array(table, dtype=float)[order]  # (rows, cols, 5)
        return cls(epoch, np.array(times)[order], np.array(pixels, dtype=float),
                   *np.moveaxis(values, 2, 0))  # fmt: skip

    def seconds(self, when: dt.datetime) -> float:
        return (when - self.epoch).total_seconds()

    def sample(self, t: float, pixel: float) -> dict[str, float]:
        """Every grid quantity at azimuth time ``t`` (s after epoch) and ``pixel``: linear in
        time (extrapolated beyond the first and last row), then linear in pixel."""
        i = int(np.clip(np.searchsorted(self.times, t) - 1, 0, len(self.times) - 2))
        w = (t - self.times[i]) / (self.times[i + 1] - self.times[i])
        out = {}
        for name in ("lat", "lon", "height", "incidence", "slant_range_time"):
            grid = getattr(self, name)
            row = (1 - w) * grid[i] + w * grid[i + 1]
            out[name] = float(np.interp(pixel, self.pixels, row))
        return out

    def position(self, t: float, pixel: float, height: float) -> tuple[float, float]:
        """(lat, lon) of the target at azimuth time ``t``, ``pixel`` and ``height`` metres."""
        node = self.sample(t, pixel)
        shift = ground_shift(node["lat"], node["height"], height, node["incidence"],
                             node["slant_range_time"] * SPEED_OF_LIGHT / 2)  # fmt: skip
        # away from the ground track: the direction of increasing pixel on the ground
        step = max(1.0, (self.pixels[-1] - self.pixels[0]) / 100)
        ahead = self.sample(t, pixel + step) if pixel + step <= self.pixels[-1] else None
        behind = self.sample(t, pixel - step) if ahead is None else node
        first, second = (node, ahead) if ahead is not None else (behind, node)
        north, east = _metres(second["lat"] - first["lat"], second["lon"] - first["lon"],
                              node["lat"])  # fmt: skip
        norm = math.hypot(north, east)
        # heights are along the ellipsoid's normal, which leans poleward of the sphere's radius
        # by the difference of geodetic and geocentric latitude: move the point back by as much
        phi = math.radians(node["lat"])
        lean = phi - math.atan((1 - WGS84_E2) * math.tan(phi))
        north_shift = shift * north / norm - (height - node["height"]) * lean
        lat = node["lat"] + north_shift / _metres_per_degree(node["lat"])[0]
        lon = node["lon"] + shift * east / norm / _metres_per_degree(node["lat"])[1]
        return lat, lon


def ground_shift(lat: float, grid_height: float, height: float, incidence_deg: float,
                 slant_range: float) -> float:  # fmt: skip
    """Ground distance (m, positive away from the track) that moves a target from ``grid_height``
    to ``height`` at the same azimuth time and slant range."""
    radius = _earth_radius(lat)
    r0 = radius + grid_height
    theta = math.radians(incidence_deg)
    r_sat = math.sqrt(r0 * r0 + slant_range * slant_range + 2 * r0 * slant_range * math.cos(theta))

    def angle(r_target: float) -> float:
        cos = (r_sat**2 + r_target**2 - slant_range**2) / (2 * r_sat * r_target)
        return math.acos(max(-1.0, min(1.0, cos)))

    return radius * (angle(radius + height) - angle(r0))


def _earth_radius(lat: float) -> float:
    """Gaussian mean radius of curvature of WGS84 at ``lat``."""
    s2 = math.sin(math.radians(lat)) ** 2
    meridian = WGS84_A * (1 - WGS84_E2) / (1 - WGS84_E2 * s2) ** 1.5
    normal = WGS84_A / math.sqrt(1 - WGS84_E2 * s2)
    return math.sqrt(meridian * normal)


def _metres_per_degree(lat: float) -> tuple[float, float]:
    s2 = math.sin(math.radians(lat)) ** 2
    meridian = WGS84_A * (1 - WGS84_E2) / (1 - WGS84_E2 * s2) ** 1.5
    normal = WGS84_A / math.sqrt(1 - WGS84_E2 * s2)
    return math.radians(1) * meridian, math.radians(1) * normal * math.cos(math.radians(lat))


def _metres(dlat: float, dlon: float, lat: float) -> tuple[float, float]:
    per_lat, per_lon = _metres_per_degree(lat)
    return dlat * per_lat, dlon * per_lon


# --- bursts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BurstGeometry:
    """What places one burst: its first and last line times and its first and last pixel."""

    first_line: dt.datetime
    last_line: dt.datetime
    first_pixel: float
    last_pixel: float

    def corners(self, grid: GeolocationGrid, height: float | None = None
                ) -> list[tuple[float, float]]:  # fmt: skip
        """(lon, lat) ring: first line near -> far, last line far -> near; at ``height`` metres,
        or at the grid's own heights (the annotation's footprint) when None."""
        ring = []
        for when, pixels in ((self.first_line, (self.first_pixel, self.last_pixel)),
                             (self.last_line, (self.last_pixel, self.first_pixel))):  # fmt: skip
            t = grid.seconds(when)
            for pixel in pixels:
                if height is None:
                    node = grid.sample(t, pixel)
                    ring.append((node["lon"], node["lat"]))
                else:
                    lat, lon = grid.position(t, pixel, height)
                    ring.append((lon, lat))
        return ring

    def box(self, grid: GeolocationGrid, heights: Sequence[float]) -> Box:
        """[W, S, E, N] of the corners at every height in ``heights``."""
        points = [p for h in heights for p in self.corners(grid, h)]
        lons = [p[0] for p in points]
        lats = [p[1] for p in points]
        return min(lons), min(lats), max(lons), max(lats)


def boxes_overlap(a: Box, b: Box) -> bool:
    """Both boxes [W, S, E, N] share an area (ISCE's crop test: touching is not enough)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def isce_keeps(burst: BurstGeometry, grid: GeolocationGrid, roi_box: Box) -> bool:
    """Whether topsApp's crop keeps this burst for a region of interest with bounds ``roi_box``."""
    return boxes_overlap(burst.box(grid, ISCE_CROP_HEIGHTS), roi_box)


# ISCE's crop keeps a burst when the box of its corners mapped at -500 m and 9000 m overlaps
# the area's box (isce_keeps). At the same slant range a target 9000 m up lies
# further from the track: about 9-16 km in ground range across IW (16 km at IW1's near range);
# at -500 m about 1 km nearer. From a record's footprint alone the box is that footprint moved
# along its range axis by those distances.
ISCE_FAR_SHIFT_M = 16_000.0
ISCE_NEAR_SHIFT_M = 1_000.0
M_PER_DEG = 111_200.0


def isce_box(footprint: Any, flight_direction: str) -> Box:
    """The box ISCE's crop tests for a burst, from the burst's footprint (upper estimate)."""
    lat = footprint.centroid.y
    m_lon = M_PER_DEG * math.cos(math.radians(lat))
    ring = list(footprint.minimum_rotated_rectangle.exterior.coords)[:4]
    edges = [((x2 - x1) * m_lon, (y2 - y1) * M_PER_DEG)
             for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True)]  # fmt: skip
    ex, ey = max(edges, key=lambda e: math.hypot(*e))  # a burst is longer in range
    norm = math.hypot(ex, ey)
    ux, uy = ex / norm, ey / norm
    # right-looking: far range is east of an ascending pass, west of a descending one
    if (ux > 0) != flight_direction.upper().startswith("A"):
        ux, uy = -ux, -uy
    moved = [footprint] + [
        affinity.translate(footprint, xoff=ux * d / m_lon, yoff=uy * d / M_PER_DEG)
        for d in (ISCE_FAR_SHIFT_M, -ISCE_NEAR_SHIFT_M)
    ]
    return shapely.union_all(moved).bounds


def isce_search_area(roi_bounds: Box) -> Box:
    """The box a burst search must cover so that every burst whose ISCE box meets the area's
    box is found: the area's box grown by the far shift on every side."""
    west, south, east, north = roi_bounds
    dlat = ISCE_FAR_SHIFT_M / M_PER_DEG
    dlon = dlat / max(math.cos(math.radians(max(abs(south), abs(north)))), 0.01)
    return (west - dlon, max(south - dlat, -90.0), east + dlon, min(north + dlat, 90.0))


def union_box(boxes: Iterable[Box]) -> Box | None:
    boxes = list(boxes)
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))  # fmt: skip
