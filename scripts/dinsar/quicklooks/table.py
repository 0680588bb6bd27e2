"""The stack's table of pairs (``pairs_summary.csv``): dates, baselines and coherence per pair."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_path
from ..products import PairInfo, read_metadata

COLUMNS = ["pair", "track", "reference", "secondary", "btemp_days", "bperp_m", "mean_coherence",
           "fraction_coherent"]  # fmt: skip


@dataclass
class StackPair:
    pair: str
    track: str
    reference: str
    secondary: str
    btemp_days: int
    bperp_m: float  # NaN if unknown
    mean_coherence: float  # NaN if unknown
    fraction_coherent: float
    product_dir: Path


def _number(value: Any) -> float:
    """A float, NaN for a missing, empty or unreadable value."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def load_stack_pairs(product_dirs: Sequence[str | Path], pairs_csv: str | Path | None = None
                     ) -> list[StackPair]:  # fmt: skip
    """One StackPair per exported pair (metadata.json), baselines from the plan's pairs.csv."""
    plan: dict[str, dict[str, str]] = {}
    if pairs_csv is not None and Path(pairs_csv).is_file():
        with open(pairs_csv, newline="") as handle:
            plan = {row["pair"]: row for row in csv.DictReader(handle)}
    out = []
    for directory in product_dirs:
        meta = read_metadata(directory)
        info = PairInfo.from_json(meta["pair"])
        row = plan.get(info.pair, {})
        coh = meta.get("stats", {}).get("coherence", {})
        # the export's (ISCE's own when the search had no baselines), else the plan's
        bperp = _number(info.bperp_m)
        if math.isnan(bperp):
            bperp = _number(row.get("bperp_m"))
        out.append(
            StackPair(
                pair=info.pair,
                track=row.get("track") or info.track or "?",
                reference=row.get("reference") or info.reference or info.pair[:8],
                secondary=row.get("secondary") or info.secondary or info.pair[-8:],
                btemp_days=int(row.get("btemp_days") or info.btemp_days or 0),
                bperp_m=bperp,
                mean_coherence=_number(coh.get("mean")),
                fraction_coherent=_number(coh.get("fraction_above_threshold")),
                product_dir=Path(directory),
            )
        )
    return sorted(out, key=lambda p: (p.track, p.reference, p.secondary))


def write_stack_table(pairs: Sequence[StackPair], path: str | Path) -> Path:
    def fmt(value: float, spec: str) -> str:
        return "" if math.isnan(value) else format(value, spec)

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for p in pairs:
            writer.writerow([p.pair, p.track, p.reference, p.secondary, p.btemp_days,
                             fmt(p.bperp_m, ".1f"), fmt(p.mean_coherence, ".3f"),
                             fmt(p.fraction_coherent, ".3f")])  # fmt: skip
    return Path(path)


def read_stack_table(path: str | Path) -> list[StackPair]:
    """The pairs written by :func:`write_stack_table`."""

    def number(text: str) -> float:  # strict: the table is ours, text there is a number
        return float(text) if text else math.nan

    with open(path, newline="") as handle:
        return [
            StackPair(
                pair=row["pair"], track=row["track"], reference=row["reference"],
                secondary=row["secondary"], btemp_days=int(row["btemp_days"]),
                bperp_m=number(row["bperp_m"]), mean_coherence=number(row["mean_coherence"]),
                fraction_coherent=number(row["fraction_coherent"]), product_dir=Path(),
            )  # fmt: skip
            for row in csv.DictReader(handle)
        ]
