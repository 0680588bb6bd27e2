"""Radar geometry of the double: the merged multilooked grid, lat/lon of its pixels, geocoding.

The annotation's geolocation grid (lat/lon/incidence at azimuth time x slant-range time) stands in
for ISCE's rdr2geo/geo2rdr. The merged grid spans the selected bursts of all swaths in azimuth time
(one line per azimuthTimeInterval) and slant range (one sample per range pixel), multilooked by
the configured looks, as ISCE's mergebursts does. Geocoding inverts the grid per swath (affine
start, Newton steps) and samples the nearest radar pixel, on Geozero's output grid.

Synthetic signal (environment, so tests can set it): a Gaussian line-of-sight range increase
    DINSAR_DOUBLE_DEFO_LAT, DINSAR_DOUBLE_DEFO_LON   centre (default: centre of the ROI)
    DINSAR_DOUBLE_DEFO_AMP_M                          peak range increase, m (default 0.02)
    DINSAR_DOUBLE_DEFO_RATE_M_PER_YEAR                if set: peak = rate * (t_sec - t_ref)
    DINSAR_DOUBLE_DEFO_SIGMA_KM                       Gaussian sigma, km (default 1.5)
with ISCE's phase sign: interferogram = reference * conj(secondary), so the phase is
+4*pi/lambda * (range increase); positive unwrapped phase = motion away from the satellite.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

EARTH_RADIUS_M = 6371000.0
C = 299792458.0


def _interp_grid(swath: dict[str, Any], rows: np.ndarray, cols: np.ndarray, key: str) -> np.ndarray:
    """Bilinear value of a grid field at fractional (row, col)."""
    values = np.asarray(swath[key])
    r0 = np.clip(np.floor(rows).astype(int), 0, values.shape[0] - 2)
    c0 = np.clip(np.floor(cols).astype(int), 0, values.shape[1] - 2)
    fr = rows - r0
    fc = cols - c0
    return (
        values[r0, c0] * (1 - fr) * (1 - fc)
        + values[r0 + 1, c0] * fr * (1 - fc)
        + values[r0, c0 + 1] * (1 - fr) * fc
        + values[r0 + 1, c0 + 1] * fr * fc
    )


def _frac(axis: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Fractional index of value on a monotonic axis (linear, extrapolated)."""
    axis = np.asarray(axis, dtype=float)
    idx = np.arange(len(axis), dtype=float)
    out = np.interp(value, axis, idx)
    lo = value < axis[0]
    hi = value > axis[-1]
    out = np.where(lo, (value - axis[0]) / (axis[1] - axis[0]), out)
    return np.where(hi, len(axis) - 1 + (value - axis[-1]) / (axis[-1] - axis[-2]), out)


def radar_grid(swaths: list[dict[str, Any]], az_looks: int, rg_looks: int) -> dict[str, Any]:
    """The merged multilooked radar grid spanning the selected bursts of all swaths."""
    dt = swaths[0]["azimuth_time_interval"]
    dr = swaths[0]["range_pixel_size"]
    t0 = min(s["t_start"] for s in swaths)
    t1 = max(s["t_stop"] for s in swaths)
    r0 = min(s["near_range"] for s in swaths)
    r1 = max(s["far_range"] for s in swaths)
    full_length = int(round((t1 - t0) / dt)) + 1
    full_width = int(round((r1 - r0) / dr)) + 1
    return {
        "t0": t0, "r0": r0, "dt": dt, "dr": dr, "az_looks": az_looks, "rg_looks": rg_looks,
        "full_length": full_length, "full_width": full_width,
        "length": full_length // az_looks, "width": full_width // rg_looks,
    }  # fmt: skip


def _weights(frac: np.ndarray, n: int) -> np.ndarray:
    """Linear-interpolation matrix (len(frac) x n) for fractional indices on an axis of n."""
    i0 = np.clip(np.floor(frac).astype(int), 0, n - 2)
    w = frac - i0
    out = np.zeros((len(frac), n))
    rows = np.arange(len(frac))
    out[rows, i0] = 1 - w
    out[rows, i0 + 1] = w
    return out


def pixel_geometry(grid: dict[str, Any], swaths: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """lat, lon, incidence, LOS azimuth and a valid mask for every multilooked pixel.

    Grid rows depend only on azimuth time and columns only on slant range, so the bilinear
    interpolation of each grid field is separable: Wrows @ field @ Wcols.T.
    """
    length, width = grid["length"], grid["width"]
    al, rl = grid["az_looks"], grid["rg_looks"]
    times = grid["t0"] + (np.arange(length) * al + (al - 1) / 2) * grid["dt"]
    ranges = grid["r0"] + (np.arange(width) * rl + (rl - 1) / 2) * grid["dr"]
    out = {k: np.zeros((length, width)) for k in ("lat", "lon", "inc", "az")}
    valid = np.zeros((length, width), dtype=bool)
    for swath in swaths:  # near swath first; overlaps keep the nearer swath, as ISCE merges
        rows_ok = (times >= swath["t_start"]) & (times <= swath["t_stop"])
        cols_ok = (ranges >= swath["near_range"]) & (ranges <= swath["far_range"])
        inside = rows_ok[:, None] & cols_ok[None, :] & ~valid
        if not inside.any():
            continue
        n_rows, n_cols = np.asarray(swath["lat"]).shape
        w_r = _weights(_frac(swath["time"], times), n_rows)
        w_c = _weights(_frac(swath["tau"], 2 * ranges / C), n_cols)
        w_c_near = _weights(_frac(swath["tau"], 2 * ranges / C) - 1, n_cols)
        fields = {k: w_r @ np.asarray(swath[k]) @ w_c.T for k in ("lat", "lon", "inc")}
        lat_b = w_r @ np.asarray(swath["lat"]) @ w_c_near.T
        lon_b = w_r @ np.asarray(swath["lon"]) @ w_c_near.T
        fields["az"] = _azimuth(fields["lat"], fields["lon"], lat_b, lon_b)
        for key, values in fields.items():
            out[key][inside] = values[inside]
        valid |= inside
    out["valid"] = valid
    return out


def _azimuth(lat_a: np.ndarray, lon_a: np.ndarray, lat_b: np.ndarray, lon_b: np.ndarray
             ) -> np.ndarray:  # fmt: skip
    """Azimuth of the target->satellite direction, degrees anticlockwise from north.

    On the ground the satellite lies towards near range (b, one grid column nearer than a).
    ENU of that direction is (-sin az, cos az) (topozero's convention), so az = atan2(-E, N).
    """
    east = (lon_b - lon_a) * np.cos(np.radians(lat_a))
    north = lat_b - lat_a
    return np.degrees(np.arctan2(-east, north))


def locate(swath: dict[str, Any], lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional grid (row, col) of lat/lon points: affine start, then Newton steps."""
    g_lat = np.asarray(swath["lat"])
    g_lon = np.asarray(swath["lon"])
    rr, cc = np.meshgrid(np.arange(g_lat.shape[0]), np.arange(g_lat.shape[1]), indexing="ij")
    design = np.column_stack([g_lat.ravel(), g_lon.ravel(), np.ones(g_lat.size)])
    coef_r = np.linalg.lstsq(design, rr.ravel(), rcond=None)[0]
    coef_c = np.linalg.lstsq(design, cc.ravel(), rcond=None)[0]
    pts = np.column_stack([lat, lon, np.ones(len(lat))])
    rows = pts @ coef_r
    cols = pts @ coef_c
    for _ in range(3):
        f_lat = _interp_grid(swath, rows, cols, "lat") - lat
        f_lon = _interp_grid(swath, rows, cols, "lon") - lon
        eps = 1e-3
        a = (_interp_grid(swath, rows + eps, cols, "lat") - lat - f_lat) / eps
        b = (_interp_grid(swath, rows, cols + eps, "lat") - lat - f_lat) / eps
        c = (_interp_grid(swath, rows + eps, cols, "lon") - lon - f_lon) / eps
        d = (_interp_grid(swath, rows, cols + eps, "lon") - lon - f_lon) / eps
        det = a * d - b * c
        det = np.where(np.abs(det) < 1e-15, 1e-15, det)
        rows = rows - (d * f_lat - b * f_lon) / det
        cols = cols - (-c * f_lat + a * f_lon) / det
    return rows, cols


def geo_to_radar(grid: dict[str, Any], swaths: list[dict[str, Any]], lat: np.ndarray,
                 lon: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Multilooked (line, sample) of lat/lon points, and whether they fall on the radar grid."""
    line = np.zeros(lat.shape, dtype=int)
    sample = np.zeros(lat.shape, dtype=int)
    valid = np.zeros(lat.shape, dtype=bool)
    for swath in swaths:
        todo = ~valid
        if not todo.any():
            break
        rows, cols = locate(swath, lat[todo], lon[todo])
        times = np.interp(rows, np.arange(len(swath["time"])), swath["time"])
        taus = np.interp(cols, np.arange(len(swath["tau"])), swath["tau"])
        ranges = taus * C / 2
        ok = (
            (rows >= 0) & (rows <= len(swath["time"]) - 1) & (cols >= 0) & (cols <= len(swath["tau"]) - 1)
            & (times >= swath["t_start"]) & (times <= swath["t_stop"])
            & (ranges >= swath["near_range"]) & (ranges <= swath["far_range"])
        )  # fmt: skip
        i = np.floor((times - grid["t0"]) / grid["dt"] / grid["az_looks"]).astype(int)
        j = np.floor((ranges - grid["r0"]) / grid["dr"] / grid["rg_looks"]).astype(int)
        ok &= (i >= 0) & (i < grid["length"]) & (j >= 0) & (j < grid["width"])
        idx = np.flatnonzero(todo)
        line[idx[ok]] = i[ok]
        sample[idx[ok]] = j[ok]
        valid[idx[ok]] = True
    return line, sample, valid


def geozero_grid(bbox: list[float], dem: dict[str, Any]) -> dict[str, Any]:
    """Geozero's output grid: DEM posting, indices truncated as the Fortran code does."""
    south, north, west, east = bbox
    d2r = math.pi / 180.0
    lat0, dlat = dem["lat0"], dem["dlat"]
    lon0, dlon = dem["lon0"], dem["dlon"]
    min_lat_idx = int((south * d2r - lat0 * d2r) / (dlat * d2r) + 1)
    min_lon_idx = int((west * d2r - lon0 * d2r) / (dlon * d2r))
    max_lat_idx = int((north * d2r - lat0 * d2r) / (dlat * d2r))
    max_lon_idx = int((east * d2r - lon0 * d2r) / (dlon * d2r) + 1)
    return {
        "length": min_lat_idx - max_lat_idx,
        "width": max_lon_idx - min_lon_idx,
        "row0": max_lat_idx,
        "col0": min_lon_idx,
        "first_lat": lat0 + max_lat_idx * dlat,
        "first_lon": lon0 + min_lon_idx * dlon,
        "dlat": dlat,
        "dlon": dlon,
    }


def deformation(lat: np.ndarray, lon: np.ndarray, roi: list[float], years: float) -> np.ndarray:
    """Line-of-sight range increase (m) of the synthetic Gaussian bump."""
    env = {k: v for k, v in os.environ.items() if v.strip()}  # empty = unset
    lat_c = float(env.get("DINSAR_DOUBLE_DEFO_LAT", (roi[0] + roi[1]) / 2))
    lon_c = float(env.get("DINSAR_DOUBLE_DEFO_LON", (roi[2] + roi[3]) / 2))
    sigma = float(env.get("DINSAR_DOUBLE_DEFO_SIGMA_KM", 1.5)) * 1000.0
    if "DINSAR_DOUBLE_DEFO_RATE_M_PER_YEAR" in env:
        amp = float(env["DINSAR_DOUBLE_DEFO_RATE_M_PER_YEAR"]) * years
    else:
        amp = float(env.get("DINSAR_DOUBLE_DEFO_AMP_M", 0.02))
    north = np.radians(lat - lat_c) * EARTH_RADIUS_M
    east = np.radians(lon - lon_c) * EARTH_RADIUS_M * math.cos(math.radians(lat_c))
    return amp * np.exp(-0.5 * (north**2 + east**2) / sigma**2)


def box_mean(data: np.ndarray, size: int) -> np.ndarray:
    """Moving average over size x size pixels (edges average the available pixels)."""
    pad = size // 2

    def box_sum(values: np.ndarray) -> np.ndarray:
        # double precision: an integral image of float32 loses the small differences
        wide = values.astype(np.complex128 if np.iscomplexobj(values) else np.float64)
        padded = np.pad(wide, ((pad + 1, pad), (pad + 1, pad)))
        integral = padded.cumsum(axis=0).cumsum(axis=1)
        return (integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size]
                + integral[:-size, :-size])  # fmt: skip

    counts = box_sum(np.ones(data.shape))
    return box_sum(data) / np.maximum(counts, 1)


def unwrap_2d(phase: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Itoh integration: down the first valid column, then along each row (smooth fields)."""
    out = np.where(valid, phase, 0.0)
    rows = np.unwrap(out, axis=1)
    column = np.unwrap(rows[:, 0])
    rows += (column - rows[:, 0])[:, None]
    return np.where(valid, rows, 0.0)
