"""Plan figures: the pair network (Bperp vs time) and the ROI over the scene footprints."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: clusters and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from shapely.geometry import MultiPolygon, Polygon  # noqa: E402

from .atomic import write_figure  # noqa: E402
from .inventory import Acquisition  # noqa: E402
from .pairs import Pair  # noqa: E402


def _day(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%Y%m%d").date()


def plot_network(
    pairs: Sequence[Pair],
    date_bperp: dict[str, dict[str, float]],
    out_path: str | Path,
    dropped: Sequence[Acquisition] = (),
) -> None:
    """Perpendicular baseline against time; one line per pair, one dot per date.

    ``date_bperp`` maps track -> date -> Bperp relative to the track's first date.
    """
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    handles = []
    for index, (track, values) in enumerate(sorted(date_bperp.items())):
        colour = colours[index % len(colours)]
        known = {d: (0.0 if math.isnan(v) else v) for d, v in values.items()}
        for pair in (p for p in pairs if p.track == track):
            ax.plot(
                [_day(pair.reference), _day(pair.secondary)],
                [known[pair.reference], known[pair.secondary]],
                color=colour,
                lw=0.8,
                alpha=0.7,
            )
        dates = sorted(known)
        ax.scatter(
            [_day(d) for d in dates], [known[d] for d in dates], color=colour, zorder=3, s=22
        )
        handles.append(Line2D([], [], color=colour, marker="o", label=f"track {track}"))
    if dropped:
        ax.scatter(
            [_day(a.date) for a in dropped],
            [0.0] * len(dropped),
            marker="x",
            color="0.4",
            zorder=2,
        )
        handles.append(Line2D([], [], color="0.4", marker="x", ls="", label="dropped date"))
    no_bperp = all(math.isnan(v) for vals in date_bperp.values() for v in vals.values())
    ax.set_ylabel(
        "perpendicular baseline [m]" + (" (unknown: no state vectors)" if no_bperp else "")
    )
    ax.set_xlabel("acquisition date")
    ax.set_title(f"Pair network: {len(pairs)} pairs")
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, loc="best", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    write_figure(fig, out_path)
    plt.close(fig)


def _outline(ax: plt.Axes, geom: Polygon | MultiPolygon, **style: object) -> None:
    polygons = geom.geoms if isinstance(geom, MultiPolygon) else [geom]
    for poly in polygons:
        x, y = poly.exterior.xy
        ax.plot(x, y, **style)


def plot_coverage(
    roi: Polygon | MultiPolygon,
    acquisitions: Sequence[Acquisition],
    out_path: str | Path,
) -> None:
    """The ROI drawn over every scene footprint: used scenes in colour, dropped ones grey."""
    fig, ax = plt.subplots(figsize=(7, 7), dpi=110)
    for acq in acquisitions:
        for scene in acq.scenes:
            _outline(
                ax,
                scene.footprint,
                color="tab:blue" if acq.used else "0.6",
                lw=0.8 if acq.used else 0.6,
                ls="-" if acq.used else ":",
                alpha=0.6,
            )
    _outline(ax, roi, color="tab:red", lw=2.0)
    handles = [
        Line2D([], [], color="tab:red", lw=2, label="ROI"),
        Line2D([], [], color="tab:blue", label="used scene footprint"),
        Line2D([], [], color="0.6", ls=":", label="dropped scene footprint"),
    ]
    ax.legend(handles=handles, loc="best", fontsize=8)
    ax.set_xlabel("longitude [deg]")
    ax.set_ylabel("latitude [deg]")
    used = sum(a.used for a in acquisitions)
    ax.set_title(f"ROI coverage: {used} of {len(acquisitions)} acquisitions used")
    ax.set_aspect(1 / max(0.1, math.cos(math.radians(roi.centroid.y))))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    write_figure(fig, out_path)
    plt.close(fig)
