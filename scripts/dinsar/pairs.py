"""Interferogram pair network: which date pairs to process, with temporal and perpendicular baselines.

Pair ids are ``YYYYMMDD_YYYYMMDD`` with the earlier (reference) date first.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import itertools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_path
from .config import Pairs
from .errors import DinsarError
from .inventory import Acquisition, Scene

log = logging.getLogger(__name__)


class PairError(DinsarError):
    """The pair settings cannot produce a network from the available dates."""


@dataclass(frozen=True)
class Pair:
    track: str
    reference: str  # YYYYMMDD
    secondary: str  # YYYYMMDD
    btemp_days: int
    bperp_m: float  # NaN when the records carry no state vectors

    @property
    def id(self) -> str:
        return pair_id(self.reference, self.secondary)


def pair_id(reference: str, secondary: str) -> str:
    return f"{reference}_{secondary}"


def days_between(first: str, second: str) -> int:
    fmt = "%Y%m%d"
    return (dt.datetime.strptime(second, fmt) - dt.datetime.strptime(first, fmt)).days


# --- perpendicular baselines -------------------------------------------------------------------


class _BaselineRecord:
    """The two attributes asf_search's baseline calculator reads from a product."""

    def __init__(self, scene: Scene) -> None:
        self.properties: dict[str, Any] = {
            "sceneName": scene.granule,
            "startTime": scene.start_time.isoformat(),
            "stopTime": scene.stop_time.isoformat(),
            "centerLat": scene.center_lat,
            "centerLon": scene.center_lon,
        }
        # asf_search annotates the dict in place; give it a private copy.
        self.baseline: dict[str, Any] = copy.deepcopy(scene.baseline or {})


def _has_state_vectors(scene: Scene) -> bool:
    positions = ((scene.baseline or {}).get("stateVectors") or {}).get("positions") or {}
    return bool(scene.baseline and scene.baseline.get("ascendingNodeTime")) and all(
        positions.get(k) is not None
        for k in ("prePosition", "postPosition", "prePositionTime", "postPositionTime")
    )


class Baselines:
    """Perpendicular baselines between dates of one track.

    Uses asf_search's own calculator on the records' orbit state vectors (works offline), with
    the pair's reference as reference, which reproduces ASF's published baseline values. Falls
    back to the pre-computed values of an asf_search baseline export; NaN where neither exists.
    """

    def __init__(self, acquisitions: Sequence[Acquisition]) -> None:
        # One representative slice per date: the one in the middle of the pass.
        self._scenes = {a.date: a.scenes[len(a.scenes) // 2] for a in acquisitions}
        self._dates = sorted(self._scenes)
        self._state_vectors = bool(self._scenes) and all(
            _has_state_vectors(s) for s in self._scenes.values()
        )
        self._precomputed = all(s.perpendicular_baseline is not None for s in self._scenes.values())
        self._cache: dict[tuple[str, str], float] = {}

    @property
    def known(self) -> bool:
        return self._state_vectors or self._precomputed

    def pair(self, reference: str, secondary: str) -> float:
        """Bperp (m) of the secondary date relative to the reference date."""
        key = (reference, secondary)
        if key not in self._cache:
            self._cache[key] = self._compute(reference, secondary)
        return self._cache[key]

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Compute many pairs at once: one asf_search call per reference date, not per pair."""
        by_reference: dict[str, list[str]] = {}
        for reference, secondary in pairs:
            if (reference, secondary) not in self._cache:
                by_reference.setdefault(reference, []).append(secondary)
        for reference, secondaries in by_reference.items():
            values = self._compute_many(reference, secondaries)
            for secondary, value in zip(secondaries, values, strict=True):
                self._cache[(reference, secondary)] = value

    def _compute(self, reference: str, secondary: str) -> float:
        return self._compute_many(reference, [secondary])[0]

    def _compute_many(self, reference: str, secondaries: list[str]) -> list[float]:
        ref = self._scenes[reference]
        if self._state_vectors:
            from asf_search.baseline.calc import calculate_perpendicular_baselines

            records = [_BaselineRecord(ref)] + [
                _BaselineRecord(self._scenes[s]) for s in secondaries
            ]
            calculate_perpendicular_baselines(ref.granule, records)  # type: ignore[arg-type]
            values = [r.properties.get("perpendicularBaseline") for r in records[1:]]
            return [float(v) if v is not None else math.nan for v in values]
        return [self._fallback(ref, self._scenes[s]) for s in secondaries]

    def _fallback(self, ref: Scene, sec: Scene) -> float:
        if self._precomputed:
            return float(sec.perpendicular_baseline) - float(ref.perpendicular_baseline)  # type: ignore[arg-type]
        return math.nan

    def relative_to_first(self) -> dict[str, float]:
        """Every date's Bperp relative to the first date (for the network figure)."""
        if not self._dates:
            return {}
        first = self._dates[0]
        self.prefetch((first, d) for d in self._dates[1:])
        return {d: (0.0 if d == first else self.pair(first, d)) for d in self._dates}


def date_baselines(acquisitions: Sequence[Acquisition]) -> dict[str, float]:
    """Bperp of each date relative to the first date of the track (NaN if unknown)."""
    baselines = Baselines(acquisitions)
    values = baselines.relative_to_first()
    return values if baselines.known else {d: math.nan for d in values}


# --- network ------------------------------------------------------------------------------------


def _star(dates: Sequence[str], settings: Pairs, track: str) -> set[tuple[str, str]] | None:
    """single_reference: every date with the one reference date."""
    ref = settings.single_reference
    if not ref:
        return None
    if ref not in dates:
        raise PairError(
            f"pairs.single_reference {ref} is not a usable date of track {track}; "
            f"usable dates: {', '.join(dates)}"
        )
    return {(min(ref, d), max(ref, d)) for d in dates if d != ref}


def _sequential(dates: Sequence[str], settings: Pairs, track: str) -> set[tuple[str, str]] | None:
    """sequential: n: each date with its next n dates."""
    if settings.sequential <= 0:
        return None
    n = settings.sequential
    return {(first, second) for i, first in enumerate(dates) for second in dates[i + 1 : i + 1 + n]}


def _all_within_limits(
    dates: Sequence[str], settings: Pairs, track: str
) -> set[tuple[str, str]] | None:
    """Only baseline limits set: every pair, which the limits then filter."""
    if settings.max_temporal_baseline is None and settings.max_perpendicular_baseline is None:
        return None
    return set(itertools.combinations(dates, 2))


# The base network comes from the first strategy that applies (returns a set, not None). A new
# strategy is a function here, its setting in config.Pairs, and its place in this tuple.
BASE_NETWORKS = (_star, _sequential, _all_within_limits)


def build_network(
    dates: Sequence[str],
    baselines: Baselines,
    settings: Pairs,
    track: str,
) -> list[Pair]:
    """Apply the pair strategies to one track's dates.

    Base network: the first of :data:`BASE_NETWORKS` that applies. The limits then filter it;
    explicit pairs are always added. Raises PairError when nothing is left or an explicit date
    is missing.
    """
    dates = sorted(set(dates))
    if settings.max_perpendicular_baseline is not None and not baselines.known:
        raise PairError(
            "pairs.max_perpendicular_baseline is set but the scene records carry no orbit state "
            "vectors to compute baselines (an asf_search export without baselines?). Search "
            "online once, or remove pairs.max_perpendicular_baseline."
        )
    base: set[tuple[str, str]] = set()
    for strategy in BASE_NETWORKS:
        found = strategy(dates, settings, track)
        if found is not None:
            base = found
            break

    def within_limits(p: tuple[str, str]) -> bool:
        if (
            settings.max_temporal_baseline is not None
            and days_between(*p) > settings.max_temporal_baseline
        ):
            return False
        if settings.max_perpendicular_baseline is not None:
            return abs(baselines.pair(*p)) <= settings.max_perpendicular_baseline
        return True

    baselines.prefetch(base if settings.max_perpendicular_baseline is not None else ())
    chosen = {p for p in base if within_limits(p)}
    for text in settings.explicit:
        ref, sec = text.split("_")
        missing = [d for d in (ref, sec) if d not in dates]
        if missing:
            raise PairError(
                f"pairs.explicit {text}: date(s) {', '.join(missing)} are not usable dates of "
                f"track {track} (see inventory/dates.csv); usable: {', '.join(dates)}"
            )
        chosen.add((ref, sec))
    baselines.prefetch(chosen)
    return [Pair(track, r, s, days_between(r, s), baselines.pair(r, s)) for r, s in sorted(chosen)]


def network_for_tracks(acquisitions: Iterable[Acquisition], settings: Pairs) -> list[Pair]:
    """Pairs of every selected track; pair ids must be unique across tracks."""
    by_track: dict[str, list[Acquisition]] = {}
    for acq in acquisitions:
        if acq.used:
            by_track.setdefault(acq.track, []).append(acq)
    if not by_track:
        raise PairError("no usable dates: nothing to pair (see inventory/dates.csv)")
    pairs: list[Pair] = []
    for track, members in sorted(by_track.items()):
        if len(members) < 2:
            raise PairError(
                f"track {track} has {len(members)} usable date(s); at least 2 are needed for a "
                "pair. Widen the dates or lower search.min_roi_coverage."
            )
        track_pairs = build_network([a.date for a in members], Baselines(members), settings, track)
        if not track_pairs:
            raise PairError(
                f"the pair settings leave no pair on track {track}: with sequential: "
                f"{settings.sequential}, max_temporal_baseline: {settings.max_temporal_baseline}, "
                f"max_perpendicular_baseline: {settings.max_perpendicular_baseline}. "
                "Raise the limits or set pairs.sequential >= 1."
            )
        pairs.extend(track_pairs)
    seen: dict[str, str] = {}
    for pair in pairs:
        if pair.id in seen and seen[pair.id] != pair.track:
            raise PairError(
                f"pair {pair.id} exists on tracks {seen[pair.id]} and {pair.track}; pair "
                "directories are named by dates only. Process the tracks in separate "
                "workspaces (search.tracks: [<one track>])."
            )
        seen[pair.id] = pair.track
    return pairs


def _component_dates(pairs: Sequence[Pair], dates: Sequence[str]) -> list[list[str]]:
    """The dates of each connected sub-network, each sorted, in the order of their first date.

    Pairs with a date outside ``dates`` are ignored (they belong to another track)."""
    parent = {d: d for d in dates}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for pair in pairs:
        if pair.reference in parent and pair.secondary in parent:
            parent[find(pair.reference)] = find(pair.secondary)
    members: dict[str, list[str]] = {}
    for date in sorted(parent):
        members.setdefault(find(date), []).append(date)
    return sorted(members.values(), key=lambda part: part[0])


def connected_components(pairs: Sequence[Pair], dates: Sequence[str]) -> int:
    """Number of disconnected sub-networks (a warning sign for time-series use)."""
    return len(_component_dates(pairs, dates))


@dataclass(frozen=True)
class NetworkParts:
    """A track's network split into its connected parts, and what separates them."""

    parts: list[list[str]]  # dates of each connected part, sorted, parts by their first date
    # (last date of a part, first date of the next) when the parts follow one another in time;
    # empty when connected, or when the parts interleave (then only ``parts`` names them)
    gaps: list[tuple[str, str]]

    @property
    def connected(self) -> bool:
        return len(self.parts) <= 1

    @property
    def interleaved(self) -> bool:
        return not self.connected and not self.gaps


def network_parts(dates: Sequence[str], pairs: Sequence[Pair]) -> NetworkParts:
    """The connected parts of one track's network of ``pairs`` over ``dates``, and the gaps
    between them in time order. A date in no pair is a part of its own."""
    parts = _component_dates(pairs, sorted(set(dates)))
    follow_in_time = all(a[-1] < b[0] for a, b in itertools.pairwise(parts))
    gaps = [(a[-1], b[0]) for a, b in itertools.pairwise(parts)] if follow_in_time else []
    return NetworkParts(parts, gaps)


MIN_TIMESERIES_DATES = 3  # MintPy inverts fewer only trivially; the config promises 3


def timeseries_eligibility(dates: Sequence[str], pairs: Sequence[Pair]) -> tuple[bool, str]:
    """Whether MintPy can invert this track's network: at least 3 dates, all connected.

    ``dates``/``pairs``: one track's. The reason names the dates or the gap(s) and a config
    change that closes them; when ok it is a short description of the network.
    """
    dates = sorted(set(dates))
    if len(dates) < MIN_TIMESERIES_DATES:
        return False, (
            f"{len(dates)} date(s) in the network; a time series needs at least "
            f"{MIN_TIMESERIES_DATES}: widen dates.start/dates.end or lower "
            "search.min_roi_coverage"
        )
    split = network_parts(dates, pairs)
    if split.connected:
        return True, f"{len(dates)} dates, {len(pairs)} pairs, connected"
    if split.gaps:
        links = ", nor ".join(f"{a} to {b}" for a, b in split.gaps)
        explicit = ", ".join(pair_id(a, b) for a, b in split.gaps)
        return False, (
            f"no pair links {links}: widen pairs.max_temporal_baseline (or "
            f"pairs.max_perpendicular_baseline), raise pairs.sequential, or add "
            f"pairs.explicit: [{explicit}]"
        )
    listed = "; ".join(f"[{', '.join(part)}]" for part in split.parts)
    return False, (
        f"the network falls into {len(split.parts)} parts that interleave in time, {listed}: "
        "no pair links them; widen pairs.max_temporal_baseline (or "
        "pairs.max_perpendicular_baseline), raise pairs.sequential, or add pairs.explicit "
        "pairs between the parts"
    )


PAIRS_COLUMNS = ["pair", "track", "reference", "secondary", "btemp_days", "bperp_m"]


def write_pairs_table(pairs: Iterable[Pair], path: str | Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(PAIRS_COLUMNS)
        for p in pairs:
            bperp = "" if math.isnan(p.bperp_m) else f"{p.bperp_m:.1f}"
            writer.writerow([p.id, p.track, p.reference, p.secondary, p.btemp_days, bperp])
