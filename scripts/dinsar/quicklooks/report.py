"""``processing.html``: the software and DEM used, the orbit type per date, the pairs and every
processing parameter, as one self-contained page for the Snakemake report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

from ..records import DemManifest
from .table import StackPair


def _flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        rows: list[tuple[str, str]] = []
        for key, inner in value.items():
            rows += _flatten(f"{prefix}.{key}" if prefix else str(key), inner)
        return rows
    if isinstance(value, (list, tuple)):
        return [(prefix, ", ".join(str(v) for v in value) if value else "[]")]
    return [(prefix, "null" if value is None else str(value))]


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def processing_html(settings: dict[str, Any], orbits: dict[str, str],
                    pairs: Sequence[StackPair], dems: dict[str, DemManifest] | None = None,
                    isce_versions: Sequence[str] = ()) -> str:  # fmt: skip
    """A self-contained HTML page: the software and DEM used, processing parameters, orbit
    type per date, pair summary."""

    def fmt(value: float, spec: str) -> str:
        return "n/a" if math.isnan(value) else format(value, spec)

    precise = sum(1 for t in orbits.values() if t == "POEORB")
    orbit_note = (
        f"{precise} of {len(orbits)} dates use precise orbits (POEORB); RESORB (restituted) "
        "orbits are less accurate and can leave orbital ramps in the interferograms."
    )
    style = (
        "body{font-family:sans-serif;font-size:14px;margin:1em}"
        "table{border-collapse:collapse;margin-bottom:1.5em}"
        "td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}"
        "th{background:#eee}.RESORB{background:#fde0c5}"
    )
    orbit_rows = "".join(
        f'<tr class="{escape(kind)}"><td>{escape(date)}</td><td>{escape(kind)}</td></tr>'
        for date, kind in sorted(orbits.items())
    )
    pair_rows = [
        (p.pair, p.track, p.btemp_days, fmt(p.bperp_m, ".1f"), fmt(p.mean_coherence, ".3f"),
         fmt(p.fraction_coherent, ".1%"))
        for p in pairs
    ]  # fmt: skip
    dem_rows = [
        (track, m.file or m.source, m.input_vertical_datum,
         ", ".join(f"{v:.4f}" for v in m.bounds),
         f"{abs(m.posting[0]) * 3600:.2f}\"" if m.posting else "n/a")
        for track, m in sorted((dems or {}).items())
    ]  # fmt: skip
    versions = ", ".join(sorted(set(isce_versions))) or "unknown"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Processing</title>"
        f"<style>{style}</style></head><body>"
        f"<h2>Software</h2><p>ISCE2 topsApp {escape(versions)}</p>"
        "<h2>DEM used</h2>"
        + _table(["track", "DEM", "input heights", "bounds W, S, E, N", "posting"], dem_rows)
        + "<h2>Orbit type per date</h2>"
        f"<p>{escape(orbit_note)}</p>"
        "<table><thead><tr><th>date</th><th>orbit type</th></tr></thead>"
        f"<tbody>{orbit_rows}</tbody></table>"
        "<h2>Pairs</h2>"
        + _table(["pair", "track", "Btemp [d]", "Bperp [m]", "mean coherence",
                  "coherent fraction"], pair_rows)  # fmt: skip
        + "<h2>Processing parameters</h2>"
        + _table(["setting", "value"], _flatten("", settings))
        + "</body></html>\n"
    )
