"""Burst mode: which download mode a run uses, and per track the one set of bursts every date has.

ASF's ``SLC-BURST`` collection serves each burst of each swath and polarization on its own
(about 147 MB; a whole IW SLC is 2.5-7 GB). For a small area a date needs a few bursts, not
whole slices. topsApp pairs two SAFEs burst by burst, so both dates of a pair must hold the
same bursts: per track we choose one set of burst IDs (full burst ID and polarization) that
covers the area, and a date lacking any of them is dropped with its reason. Bursts of one pass
that come from two SLC slices still make one SAFE (burst2safe joins bursts of one orbit).

``auto`` mode. A burst download moves only the chosen bursts' own bytes, but it asks ASF to cut
each burst on demand (two requests per burst: the TIFF and its metadata) and adds a SAFE
assembly per date. Burst mode is chosen when the area's bursts per date are at most
``AUTO_MAX_FRACTION`` of the smallest whole scene a date can need (one single-polarization
slice, 2.76 GB on average): at most 9 bursts (1.32 GB), so a date costs at most half of
what a whole slice would, even in the least favourable case. Above that the saving shrinks
towards none (19 bursts weigh as much as a single-pol slice) and whole SLCs are the simpler
route.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import shapely
from shapely.geometry import MultiPolygon, Polygon

from .bursts import boxes_overlap, isce_box
from .inventory import Acquisition, Burst, BurstKey, Scene, burst_label, roi_coverage

log = logging.getLogger(__name__)


# Mean sizes of real records (the recorded CMR records in ../shared/fixtures/asf_search: 166
# SLC-BURST records of 174_372326_IW3; 176 IW SLC records of path 13, 21 single- and 155
# dual-polarization). An SLC zip's size is known only from its own record; without it the
# plan uses these, and says so.
BURST_BYTES_MEAN = 146_695_638
SLC_BYTES_MEAN = {"SV": 2_762_849_281, "SH": 2_762_849_281, "DV": 4_787_034_997, "DH": 4_787_034_997}
AUTO_MAX_FRACTION = 0.5
AUTO_MAX_BURSTS = math.floor(AUTO_MAX_FRACTION * min(SLC_BYTES_MEAN.values()) / BURST_BYTES_MEAN)


def cache_folder(scene: Scene) -> Literal["bursts", "slc"]:
    """The shared cache's folder for a record: bursts (keyed by their granule name) or slc."""
    return "bursts" if isinstance(scene, Burst) else "slc"


def resolve_mode(mode: str, roi: Polygon | MultiPolygon) -> Literal["burst", "slc"]:
    """The download mode a run uses: ``burst`` or ``slc``, ``auto`` decided by the area's size."""
    if mode in ("burst", "slc"):
        return mode  # type: ignore[return-value]
    from .plan import bursts_and_swaths  # the plan's one estimate of the bursts an area needs

    needed = math.prod(bursts_and_swaths(roi))
    chosen: Literal["burst", "slc"] = "burst" if needed <= AUTO_MAX_BURSTS else "slc"
    log.info(
        "download.mode auto: the area needs about %d burst(s) per date (burst mode up to %d): %s",
        needed,
        AUTO_MAX_BURSTS,
        chosen,
    )
    return chosen


@dataclass(frozen=True)
class BurstChoice:
    """A track's burst set: the bursts every used date holds, and how much of the area they cover."""

    track: str
    keys: tuple[BurstKey, ...]
    coverage: float

    @property
    def label(self) -> str:
        return burst_label(self.keys)


def _footprints(acquisitions: Sequence[Acquisition]) -> dict[BurstKey, Polygon | MultiPolygon]:
    """Each burst ID's footprint: the union of its footprints over the dates (they differ by
    the orbit tube, metres to a few hundred metres)."""
    parts: dict[BurstKey, list[Polygon | MultiPolygon]] = defaultdict(list)
    for acq in acquisitions:
        for burst in _bursts(acq.scenes):
            parts[burst.key].append(burst.footprint)
    return {key: shapely.union_all(shapes) for key, shapes in parts.items()}


def _bursts(scenes: Iterable[Scene]) -> list[Burst]:
    return [s for s in scenes if isinstance(s, Burst)]


def choose_burst_set(
    track: str, acquisitions: Sequence[Acquisition], roi: Polygon | MultiPolygon
) -> BurstChoice:
    """The bursts of a track that topsApp's crop keeps for the area: those it would keep from
    whole slices, so both routes give topsApp the same bursts. Within a swath they follow each
    other (burst2safe needs that, and ISCE's crop gives it)."""
    footprints = _footprints(acquisitions)
    direction = next(b.flight_direction for a in acquisitions for b in _bursts(a.scenes))
    keys = sorted(
        k for k, shape in footprints.items() if boxes_overlap(isce_box(shape, direction), roi.bounds)
    )
    cover = roi_coverage(shapely.union_all([footprints[k] for k in keys]), roi) if keys else 0.0
    return BurstChoice(track, tuple(keys), cover)


def assess_bursts(
    acquisitions: list[Acquisition], roi: Polygon | MultiPolygon, min_coverage: float
) -> dict[str, BurstChoice]:
    """Burst mode's `assess`: per track one burst set; each date keeps exactly those bursts or
    is dropped with the reason (a missing burst, too little coverage, mixed IPF versions)."""
    by_track: dict[str, list[Acquisition]] = defaultdict(list)
    for acq in acquisitions:
        by_track[acq.track].append(acq)
    choices = {}
    for track, members in sorted(by_track.items()):
        choice = choose_burst_set(track, members, roi)
        choices[track] = choice
        wanted = set(choice.keys)
        for acq in members:
            present: dict[BurstKey, Burst] = {}
            for burst in sorted(_bursts(acq.scenes), key=lambda b: b.start_time):
                if burst.key in wanted:
                    present.setdefault(burst.key, burst)  # one copy of a reprocessed burst
            missing = sorted(wanted - set(present))
            if present:  # a date with none of the set keeps what it has, for dates.csv
                acq.scenes = sorted(present.values(), key=lambda b: (b.swath, b.start_time))
            acq.coverage = choice.coverage if not missing else 0.0
            ipfs = {b.ipf for b in acq.scenes if b.ipf}
            acq.used = False
            if not wanted:
                acq.reason = "no burst of this track meets the ROI"
            elif missing:
                names = ", ".join(f"{k[0]} {k[1]}" for k in missing[:5])
                more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                acq.reason = (
                    f"lacks {len(missing)} burst(s) of the track's set {choice.label}: "
                    f"{names}{more}"
                )
            elif choice.coverage + 1e-9 < min_coverage:
                acq.reason = (
                    f"bursts cover {choice.coverage:.0%} of the ROI, below "
                    f"search.min_roi_coverage {min_coverage:.0%}"
                )
            elif len(ipfs) > 1:
                acq.reason = (
                    f"bursts were processed with different IPF versions "
                    f"({', '.join(sorted(ipfs))}); topsApp cannot stitch them"
                )
            else:
                acq.used = True
    return choices


def full_slc_bytes(
    acquisitions: Iterable[Acquisition], known: Iterable[Scene] = ()
) -> tuple[int, bool]:
    """What whole SLCs would weigh for these burst-mode dates, and whether that is exact.

    Exact when every slice the bursts come from has its own record among ``known`` (a saved
    search holding SLC records too); otherwise each unknown slice counts the mean size of
    real records of its polarization kind (``SLC_BYTES_MEAN``).
    """
    sizes = {s.granule: s.bytes for s in known if not isinstance(s, Burst)}
    total, exact = 0, True
    for acq in acquisitions:
        for name in acq.slices:
            if name in sizes:
                total += sizes[name]
            else:
                total += SLC_BYTES_MEAN[name[14:16]]
                exact = False
    return total, exact
