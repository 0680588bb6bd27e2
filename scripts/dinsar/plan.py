"""The plan: tables of scenes and pairs, download volume, a disk-use and a CPU-time estimate.

The disk model uses the measured size of a real topsApp run (about 2 GB of intermediates per
burst and swath at full resolution; see ../README storage table) and the ROI's extent. The CPU
model is the rules' own calibration (dinsar.isce_run.cpu_seconds: CPU-seconds per burst of
each step group, measured with the real topsApp 2.6.5) for the bursts the ROI needs.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shapely.geometry import MultiPolygon, Polygon

from . import disk
from .atomic import atomic_path
from .burst_set import burst_label, full_slc_bytes
from .geometry import expected_cpu_ratio
from .grid import Grid
from .inventory import Burst
from .isce_run import GROUPS, cpu_seconds
from .pairs import PairError, timeseries_eligibility
from .stack import Stack

GB = 1e9
# about 2 GB per burst and swath (measured); isce_step checks the same figure before a pair
INTERMEDIATE_BYTES_PER_BURST = float(disk.INTERMEDIATE_BYTES_PER_BURST)
BURST_AZIMUTH_KM = 20.0  # IW burst length along track
SWATH_RANGE_KM = 80.0  # IW sub-swath width on ground
KM_PER_DEG = 111.2
PRODUCT_BYTES_PER_PAIR = 0.2 * GB


@dataclass(frozen=True)
class DiskEstimate:
    slc_bytes: int
    dem_bytes: int
    intermediate_bytes_per_pair: float
    product_bytes: float
    n_pairs: int

    def peak(self, concurrent_pairs: int, keep_all: bool) -> float:
        pairs_holding = self.n_pairs if keep_all else min(concurrent_pairs, self.n_pairs)
        return (
            self.slc_bytes
            + self.dem_bytes
            + self.product_bytes
            + pairs_holding * self.intermediate_bytes_per_pair
        )


def bursts_and_swaths(roi: Polygon | MultiPolygon) -> tuple[int, int]:
    """How many bursts per swath and swaths a pair processes for this ROI (upper estimate)."""
    west, south, east, north = roi.bounds
    lat_km = (north - south) * KM_PER_DEG
    lon_km = (east - west) * KM_PER_DEG * math.cos(math.radians((north + south) / 2))
    bursts = math.ceil(lat_km / BURST_AZIMUTH_KM) + 1
    swaths = min(3, math.ceil(lon_km / SWATH_RANGE_KM) + 1)
    return bursts, swaths


def dem_bytes(stack: Stack, buffer_deg: float) -> int:
    """Float32 GLO-30 DEM over the used footprints plus buffer, per track."""
    total = 0
    for track in stack.tracks:
        west, south, east, north = _union_bounds(stack, track)
        area_deg2 = (east - west + 2 * buffer_deg) * (north - south + 2 * buffer_deg)
        total += int(area_deg2 * 3600 * 3600 * 4)
    return total


def _union_bounds(stack: Stack, track: str) -> tuple[float, float, float, float]:
    bounds = [a.footprint.bounds for a in stack.used if a.track == track]
    return (
        min(b[0] for b in bounds),
        min(b[1] for b in bounds),
        max(b[2] for b in bounds),
        max(b[3] for b in bounds),
    )


def bursts_per_pair(stack: Stack, roi: Polygon | MultiPolygon) -> int:
    """Bursts a pair processes: in burst mode the chosen set (the largest of the tracks'), else
    the estimate from the area."""
    if stack.burst_mode:
        return max(len(a.scenes) for a in stack.used)
    return math.prod(bursts_and_swaths(roi))


def estimate_disk(stack: Stack, roi: Polygon | MultiPolygon, buffer_deg: float) -> DiskEstimate:
    return DiskEstimate(
        slc_bytes=stack.bytes_to_download(),
        dem_bytes=dem_bytes(stack, buffer_deg),
        intermediate_bytes_per_pair=bursts_per_pair(stack, roi) * INTERMEDIATE_BYTES_PER_BURST,
        product_bytes=len(stack.pairs) * PRODUCT_BYTES_PER_PAIR,
        n_pairs=len(stack.pairs),
    )


@dataclass(frozen=True)
class CpuEstimate:
    bursts_per_pair: int
    seconds_per_group: dict[str, float]  # CPU-seconds of one pair, per ISCE step group
    n_pairs: int
    # isce.reuse_geometry: the reference dates, each with one geometry job (topo once)
    references: int | None = None

    @property
    def per_pair(self) -> float:
        return sum(self.seconds_per_group.values())

    @property
    def total(self) -> float:
        if not self.references or not self.n_pairs:
            return self.per_pair * self.n_pairs
        ratio = expected_cpu_ratio(self.n_pairs, self.references, self.seconds_per_group)
        return ratio * self.per_pair * self.n_pairs


def estimate_cpu(n_pairs: int, bursts: int, range_looks: int, azimuth_looks: int,
                 references: int | None = None) -> CpuEstimate:  # fmt: skip
    """CPU time of topsApp per pair from the calibrated model, for ``bursts`` per pair
    (``bursts_per_pair``); with ``references`` (isce.reuse_geometry), topo once per reference
    date (dinsar.geometry.expected_cpu_ratio, the one model of that saving)."""
    return CpuEstimate(
        bursts_per_pair=bursts,
        seconds_per_group={
            g.name: cpu_seconds(g.name, bursts, range_looks, azimuth_looks) for g in GROUPS
        },
        n_pairs=n_pairs,
        references=references,
    )


def human_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def cpu_lines(cpu: CpuEstimate) -> list[str]:
    heaviest = sorted(cpu.seconds_per_group.items(), key=lambda kv: -kv[1])[:2]
    parts = ", ".join(f"{name} {human_duration(secs)}" for name, secs in heaviest)
    reuse = (f" with topo once per reference date ({cpu.references} geometry job(s), "
             "isce.reuse_geometry)" if cpu.references else "")  # fmt: skip
    return [
        f"  estimated CPU time (topsApp): ~{human_duration(cpu.per_pair)} per pair "
        f"({cpu.bursts_per_pair} bursts; {parts}), ~{human_duration(cpu.total)} for "
        f"{cpu.n_pairs} pair(s){reuse}",
        "    calibrated with the real topsApp 2.6.5 (dinsar.isce_run.CPU_S_PER_BURST); SNAPHU "
        "can take far longer on decorrelated scenes",
    ]


def write_scenes_table(stack: Stack, path: str | Path) -> None:
    pairs_per_date: dict[str, int] = {}
    for pair in stack.pairs:
        for date in (pair.reference, pair.secondary):
            pairs_per_date[date] = pairs_per_date.get(date, 0) + 1
    needed = set(stack.granules)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "granule",
                "track",
                "date",
                "platform",
                "frame",
                "ipf",
                "bytes",
                "md5",
                "url",
                "used",
                "pairs",
                "reason",
            ]
        )
        for acq in sorted(stack.acquisitions, key=lambda a: (a.track, a.date)):
            for scene in acq.scenes:
                writer.writerow(
                    [
                        scene.granule, acq.track, acq.date, scene.platform, scene.frame,
                        scene.ipf or "", scene.bytes, scene.md5 or "", scene.url,
                        "yes" if scene.granule in needed else "no",
                        pairs_per_date.get(acq.date, 0) if acq.used else 0,
                        acq.reason,
                    ]
                )  # fmt: skip


def human_bytes(value: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1000
    raise AssertionError("unreachable")


def summary_text(
    stack: Stack,
    disk: DiskEstimate,
    workspace: str,
    concurrent_pairs: int,
    keep: str,
    cached_bytes: int = 0,
    isce: dict | None = None,
    cpu: CpuEstimate | None = None,
    grid: list[str] | None = None,
    timeseries: dict[str, list[str]] | None = None,
) -> str:
    lines = [f"dInSAR-Toolkit plan for workspace {workspace}"]
    for track in sorted({a.track for a in stack.acquisitions}):
        members = [a for a in stack.acquisitions if a.track == track]
        used = [a for a in members if a.used]
        lines.append(f"  track {track}: {len(used)} usable date(s) of {len(members)}")
        for acq in members:
            if not acq.used:
                lines.append(f"    dropped {acq.date}: {acq.reason}")
        lines += (timeseries or {}).get(track, [])
    pairs = stack.pairs
    btemps = [p.btemp_days for p in pairs]
    bperps = [abs(p.bperp_m) for p in pairs if not math.isnan(p.bperp_m)]
    lines.append(f"  dates: {len(stack.dates)} ({stack.dates[0]} .. {stack.dates[-1]})")
    bperp_text = f", |Bperp| up to {max(bperps):.0f} m" if bperps else ", Bperp unknown"
    lines.append(f"  pairs: {len(pairs)} (Btemp {min(btemps)}..{max(btemps)} days{bperp_text})")
    if not bperps:
        lines.append("    the scenes carry no state vectors (an asf_search .geojson() export?); "
                     "`dinsar search --config FILE --save OUT` keeps them")  # fmt: skip
    lines += download_lines(stack, disk.slc_bytes, cached_bytes)
    lines.append(
        f"  estimated disk: SLCs {human_bytes(disk.slc_bytes)}, DEM {human_bytes(disk.dem_bytes)}, "
        f"ISCE intermediates ~{human_bytes(disk.intermediate_bytes_per_pair)} per pair, "
        f"products {human_bytes(disk.product_bytes)}"
    )
    lines.append(
        f"  peak disk with keep: {keep} and {concurrent_pairs} pair(s) at a time: "
        f"~{human_bytes(disk.peak(concurrent_pairs, keep == 'all'))}"
        + (
            f" (+{human_bytes(disk.intermediate_bytes_per_pair)} per further concurrent pair)"
            if keep != "all"
            else ""
        )
    )
    if cpu is not None:
        lines += cpu_lines(cpu)
    if grid is not None:
        lines += grid
    if isce is not None:
        lines += isce_lines(isce)
    return "\n".join(lines) + "\n"


def timeseries_lines(stack: Stack, enabled: Literal["auto"] | bool) -> dict[str, list[str]]:
    """Per track, the plan's word on its time series (timeseries.enabled): whether MintPy can
    invert the network of the pairs, or why not. With ``enabled: true`` a track that cannot be
    inverted stops the plan (PairError, one line) rather than a warning nobody reads."""
    if enabled is False:
        return {t: ["    time series: off (timeseries.enabled: false)"] for t in stack.tracks}
    out: dict[str, list[str]] = {}
    for track in stack.tracks:
        # the dates the pairs use: those are downloaded and handed to MintPy
        dates = stack.track_dates(track)
        pairs = [p for p in stack.pairs if p.track == track]
        ok, reason = timeseries_eligibility(dates, pairs)
        if ok:
            out[track] = [f"    time series: {reason} (MintPy runs)"]
        elif enabled is True:
            raise PairError(
                f"timeseries.enabled: true, but MintPy cannot invert track {track}: {reason} "
                "(or set timeseries.enabled: auto to skip this track)"
            )
        else:
            out[track] = [f"    WARNING time series: not run on this track (timeseries.enabled: "
                          f"auto): {reason}"]  # fmt: skip
        unpaired = sorted({a.date for a in stack.used if a.track == track} - set(dates))
        if unpaired and enabled:
            out[track].append(f"    usable date(s) in no pair, so not in the time series: "
                              f"{', '.join(unpaired)}")  # fmt: skip
    return out


def grid_lines(planned: tuple[Grid, str] | None, margin: float) -> list[str]:
    """The plan's word on the track grid (dinsar.dem.planned_track_grid's estimate)."""
    lines = ["  track grid (every pair of a track is exported onto it): EPSG:4326 longitude/"
             f"latitude, the geocoding DEM's samples over the area + isce.geocode_margin "
             f"{margin:g} deg"]  # fmt: skip
    if planned is None:
        return lines + ["    posting: dem.file's, times dem.geocode_resample; the exact grid is "
                        "logged by topsapp_xml and kept in each pair's metadata.json"]  # fmt: skip
    grid, how = planned
    west, south, east, north = grid.bounds()
    return lines + [
        f"    posting {grid.delta_lon * 3600:.3g}\" ({grid.delta_lon:.6g} deg; {how}), "
        f"{grid.width} x {grid.length} pixels, bounds [W, S, E, N] [{west:.6f}, {south:.6f}, "
        f"{east:.6f}, {north:.6f}]",
        "    estimated before the DEM exists (within a pixel); the exact grid is logged by "
        "topsapp_xml and kept in each pair's metadata.json",
    ]


def download_lines(stack: Stack, total: int, cached_bytes: int) -> list[str]:
    """What the run downloads in its mode; in burst mode also what whole SLCs would weigh."""
    to_fetch = max(0, total - cached_bytes)
    if not stack.burst_mode:
        return [
            f"  scenes: {len(stack.granules)} to use, {human_bytes(total)} in total, "
            f"{human_bytes(to_fetch)} still to download"
        ]
    used = [a for a in stack.used if a.date in stack.dates]
    lines = [
        f"  download mode: burst; bursts: {len(stack.granules)} to use on {len(used)} date(s), "
        f"{human_bytes(total)} in total, {human_bytes(to_fetch)} still to download"
    ]
    for track in stack.tracks:
        members = [a for a in used if a.track == track]
        if members:
            label = burst_label(b.key for b in members[0].scenes if isinstance(b, Burst))
            lines.append(
                f"    track {track}: {len(members[0].scenes)} burst(s) per date, the same on "
                f"every date ({label})"
            )
    slc_bytes, exact = full_slc_bytes(used, stack.scenes_by_granule.values())
    slices = sum(len(a.slices) for a in used)
    how = (
        "from their records"
        if exact
        else "estimate: mean size of real IW SLC records, their records are not in the search"
    )
    ratio = f", {slc_bytes / total:.0f}x the bursts" if total else ""
    lines.append(
        f"  whole SLCs instead: {slices} slice(s), {human_bytes(slc_bytes)} ({how}){ratio}"
    )
    return lines


def isce_lines(isce: dict) -> list[str]:
    """The plan's word on ISCE2: which topsApp runs, or why the run will stop."""
    problem, required = isce.get("problem"), isce.get("required", True)
    if not isce.get("topsapp"):
        stop = "; the run stops before any download (`snakemake stage` still works)"
        return [f"  ISCE2: {problem}" + (stop if required else "")]
    lines = [f"  topsApp: {isce['topsapp']}"]
    if problem:
        verdict = "the run will stop before any download" if required else "warning"
        lines.append(f"  {verdict}: {problem}")
    return lines
