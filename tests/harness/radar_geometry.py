"""Radar geometry from an orbit, for the test harness: zero-Doppler radar -> ground positions.

The real stack (real_stack.py) places its injected deformation on the ground with it, and the
tests check the library's annotation-grid geometry (dinsar.bursts) against it. ISCE's
``BurstSLC.getBbox`` maps a burst's corners the same way, at heights -500 m and 9000 m.

The orbit is interpolated like ISCE does (cubic Hermite on positions and velocities, the
``hermite`` method of ``Orbit.interpolateOrbit``); targets solve the range and zero-Doppler
equations on the WGS84 ellipsoid raised by the target height. Sentinel-1 looks right.
Pure numpy; every array argument broadcasts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

WGS84_A = 6378137.0
WGS84_E2 = 0.0066943799901413165
WGS84_B = WGS84_A * np.sqrt(1 - WGS84_E2)
# ISCE's BurstSLC.getBbox: the heights at which a burst's corners are mapped for cropping
ISCE_CROP_HEIGHTS = (-500.0, 9000.0)


@dataclass(frozen=True)
class Orbit:
    """State vectors in an Earth-fixed frame: times in seconds after ``epoch``."""

    epoch: dt.datetime
    times: np.ndarray  # (n,)
    positions: np.ndarray  # (n, 3) metres
    velocities: np.ndarray  # (n, 3) m/s

    @classmethod
    def from_vectors(cls, vectors: Sequence[tuple[dt.datetime, Sequence[float], Sequence[float]]]
                     ) -> Orbit:  # fmt: skip
        """From (time, position, velocity) tuples, in any order."""
        ordered = sorted(vectors, key=lambda v: v[0])
        if len(ordered) < 2:
            raise ValueError("an orbit needs at least two state vectors")
        epoch = ordered[0][0]
        return cls(
            epoch=epoch,
            times=np.array([(v[0] - epoch).total_seconds() for v in ordered]),
            positions=np.array([v[1] for v in ordered], dtype=float),
            velocities=np.array([v[2] for v in ordered], dtype=float),
        )

    def seconds(self, when: dt.datetime) -> float:
        return (when - self.epoch).total_seconds()

    def covers(self, start: dt.datetime, stop: dt.datetime) -> bool:
        return self.times[0] <= self.seconds(start) and self.seconds(stop) <= self.times[-1]

    def state(self, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Position and velocity at ``t`` seconds after the epoch: arrays of shape t.shape + (3,)."""
        t = np.asarray(t, dtype=float)
        index = np.clip(np.searchsorted(self.times, t) - 1, 0, len(self.times) - 2)
        t0, t1 = self.times[index], self.times[index + 1]
        h = (t1 - t0)[..., None]
        s = ((t - t0) / (t1 - t0))[..., None]
        p0, p1 = self.positions[index], self.positions[index + 1]
        v0, v1 = self.velocities[index] * h, self.velocities[index + 1] * h
        s2, s3 = s * s, s * s * s
        position = (
            (2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * v0
            + (-2 * s3 + 3 * s2) * p1 + (s3 - s2) * v1
        )  # fmt: skip
        velocity = (
            (6 * s2 - 6 * s) * p0 + (3 * s2 - 4 * s + 1) * v0
            + (-6 * s2 + 6 * s) * p1 + (3 * s2 - 2 * s) * v1
        ) / h  # fmt: skip
        return position, velocity


def ecef_to_llh(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geodetic latitude, longitude (degrees) and ellipsoidal height (m) of ECEF points (..., 3)."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    lon = np.arctan2(y, x)
    p = np.hypot(x, y)
    ep2 = WGS84_E2 / (1 - WGS84_E2)
    theta = np.arctan2(z * WGS84_A, p * WGS84_B)
    lat = np.arctan2(
        z + ep2 * WGS84_B * np.sin(theta) ** 3, p - WGS84_E2 * WGS84_A * np.cos(theta) ** 3
    )
    n = WGS84_A / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
    height = p / np.cos(lat) - n
    return np.degrees(lat), np.degrees(lon), height


def llh_to_ecef(lat: np.ndarray, lon: np.ndarray, height: np.ndarray) -> np.ndarray:
    lat, lon = np.radians(lat), np.radians(lon)
    n = WGS84_A / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
    return np.stack(
        [
            (n + height) * np.cos(lat) * np.cos(lon),
            (n + height) * np.cos(lat) * np.sin(lon),
            (n * (1 - WGS84_E2) + height) * np.sin(lat),
        ],
        axis=-1,
    )


def rdr2geo(orbit: Orbit, t: np.ndarray | float, slant_range: np.ndarray | float,
            height: np.ndarray | float = 0.0, right_looking: bool = True,
            iterations: int = 12) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Latitude and longitude (degrees) of the zero-Doppler target at ``slant_range`` metres
    from the satellite at ``t`` seconds after the orbit's epoch, ``height`` m above WGS84.

    The target lies in the plane through the satellite perpendicular to its velocity; the look
    angle from nadir is found by Newton steps on the target's geodetic height.
    """
    t, slant_range, height = np.broadcast_arrays(
        np.asarray(t, float), np.asarray(slant_range, float), np.asarray(height, float)
    )
    position, velocity = orbit.state(t)
    along = velocity / np.linalg.norm(velocity, axis=-1, keepdims=True)
    # "down" within the zero-Doppler plane, and the look side across it
    down = -position / np.linalg.norm(position, axis=-1, keepdims=True)
    down = down - np.sum(down * along, axis=-1, keepdims=True) * along
    down /= np.linalg.norm(down, axis=-1, keepdims=True)
    side = np.cross(along, -down)  # right of the flight direction
    if not right_looking:
        side = -side
    r = slant_range[..., None]

    def target(angle: np.ndarray) -> np.ndarray:
        a = angle[..., None]
        return position + r * (np.cos(a) * down + np.sin(a) * side)

    sat_height = ecef_to_llh(position)[2]
    # first guess: flat Earth below the satellite
    angle = np.arccos(np.clip((sat_height - height) / slant_range, -1.0, 1.0))
    for _ in range(iterations):
        h0 = ecef_to_llh(target(angle))[2]
        step = 1e-6
        slope = (ecef_to_llh(target(angle + step))[2] - h0) / step
        change = (height - h0) / np.where(np.abs(slope) < 1e-3, 1e-3, slope)
        angle = angle + change
        if np.all(np.abs(change) < 1e-10):
            break
    lat, lon, _ = ecef_to_llh(target(angle))
    return lat, lon


def crop_box(orbit: Orbit, first_line: dt.datetime, last_line: dt.datetime, near_range: float,
             far_range: float, heights: Sequence[float] = ISCE_CROP_HEIGHTS
             ) -> tuple[float, float, float, float]:  # fmt: skip
    """[W, S, E, N] of a burst's corners at ``heights``: ISCE's ``getBbox`` (its crop test)."""
    times = np.array([orbit.seconds(first_line), orbit.seconds(last_line)])
    t, rng, h = np.meshgrid(times, [near_range, far_range], list(heights), indexing="ij")
    lat, lon = rdr2geo(orbit, t, rng, h)
    return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())


def boxes_overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    """Two [W, S, E, N] boxes overlap with a non-zero area (ISCE's ``crop`` test, strict)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
