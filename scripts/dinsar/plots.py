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


NO_BASELINES_NOTE = (
    "No perpendicular baselines: the {which} carry no state vectors\n"
    "(a saved search from asf_search's .geojson() has none). Pairs are shown by date only.\n"
    "Save searches with `dinsar search --config CONFIG --save FILE` to keep them."
)


def plot_network(
    pairs: Sequence[Pair],
    date_bperp: dict[str, dict[str, float]],
    out_path: str | Path,
    dropped: Sequence[Acquisition] = (),
) -> None:
    """Perpendicular baseline against time; one line per pair, one dot per date.

    ``date_bperp`` maps track -> date -> Bperp relative to the track's first date (NaN when the
    scenes carry no state vectors). Without baselines for a track there is no Bperp to draw:
    the figure says so, has no Bperp axis, and draws each track's dates on a time line with
    each pair as an arc.
    """
    unknown = sorted(t for t, v in date_bperp.items() if any(math.isnan(b) for b in v.values()))
    fig, ax = plt.subplots(figsize=(9, 4.5 if not unknown else 5.0), dpi=110)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    handles = []
    rows = {track: index for index, track in enumerate(sorted(date_bperp))}
    longest = max((p.btemp_days for p in pairs), default=1)
    for track, values in sorted(date_bperp.items()):
        colour = colours[rows[track] % len(colours)]
        y = (
            {d: float(rows[track]) for d in values}  # a time line per track, no Bperp
            if unknown
            else dict(values)
        )
        for pair in (p for p in pairs if p.track == track):
            start, stop = _day(pair.reference), _day(pair.secondary)
            if unknown:
                _arc(ax, start, stop, y[pair.reference], colour, longest)
            else:
                ax.plot([start, stop], [y[pair.reference], y[pair.secondary]], color=colour,
                        lw=0.8, alpha=0.7)  # fmt: skip
        dates = sorted(y)
        ax.scatter([_day(d) for d in dates], [y[d] for d in dates], color=colour, zorder=3, s=22)
        handles.append(Line2D([], [], color=colour, marker="o", label=f"track {track}"))
    if dropped:
        ax.scatter(
            [_day(a.date) for a in dropped],
            [float(rows.get(a.track, -0.5)) if unknown else 0.0 for a in dropped],
            marker="x",
            color="0.4",
            zorder=2,
        )
        handles.append(Line2D([], [], color="0.4", marker="x", ls="", label="dropped date"))
    if unknown:
        which = "scenes" if len(unknown) == len(date_bperp) else f"scenes of {', '.join(unknown)}"
        ax.text(0.5, 0.97, NO_BASELINES_NOTE.format(which=which), transform=ax.transAxes,
                ha="center", va="top", fontsize=8.5, color="darkred",
                bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "darkred"})  # fmt: skip
        # no Bperp axis: the vertical position is only the track's row (and the arcs' height)
        ax.yaxis.set_visible(False)
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        ax.set_ylim(-0.6, len(rows) - 0.4 + 1.2)
        ax.set_title(f"Pair network: {len(pairs)} pairs (perpendicular baselines unknown)")
        ax.grid(alpha=0.3, axis="x")
    else:
        ax.set_ylabel("perpendicular baseline [m]")
        ax.set_title(f"Pair network: {len(pairs)} pairs")
        ax.grid(alpha=0.3)
    ax.set_xlabel("acquisition date")
    ax.legend(handles=handles, loc="lower right" if unknown else "best", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    write_figure(fig, out_path)
    plt.close(fig)


def _arc(ax: plt.Axes, start: dt.date, stop: dt.date, base: float, colour: str,
         longest: int) -> None:  # fmt: skip
    """A pair as a half-ellipse above its track's time line (taller for longer pairs)."""
    days = (stop - start).days
    height = 0.15 + 0.6 * min(1.0, days / max(1, longest))
    steps = [i / 24 for i in range(25)]
    first = dt.datetime.combine(start, dt.time())
    xs = [first + dt.timedelta(days=days * t) for t in steps]
    ys = [base + height * math.sin(math.pi * t) for t in steps]
    ax.plot(xs, ys, color=colour, lw=0.8, alpha=0.7)


def _outline(ax: plt.Axes, geom: Polygon | MultiPolygon, **style: object) -> None:
    polygons = geom.geoms if isinstance(geom, MultiPolygon) else [geom]
    for poly in polygons:
        x, y = poly.exterior.xy
        ax.plot(x, y, **style)


def plot_coverage(
    roi: Polygon | MultiPolygon,
    acquisitions: Sequence[Acquisition],
    out_path: str | Path,
    min_coverage: float | None = None,
) -> None:
    """Where each date's pass lies against the ROI, and how much of the ROI each date covers.

    Left, the map: the ROI (red) and each date's swath outline (the union of its slices; used
    dates in colour, dropped ones dotted grey). Right, each date's ROI coverage against
    ``search.min_roi_coverage``. Drawn also when every date is dropped: that is when it helps.
    """
    ordered = sorted(acquisitions, key=lambda a: (a.track, a.date))
    n = max(1, len(ordered))
    fig, (ax, bars) = plt.subplots(
        1, 2, figsize=(12, max(6.0, min(16.0, 2.0 + 0.22 * n))), dpi=110,
        gridspec_kw={"width_ratios": [1.6, 1]},
    )  # fmt: skip
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    tracks = sorted({a.track for a in ordered})
    track_colour = {t: colours[i % len(colours)] for i, t in enumerate(tracks)}
    for acq in ordered:
        _outline(ax, acq.footprint, color=track_colour[acq.track] if acq.used else "0.55",
                 lw=1.0 if acq.used else 0.8, ls="-" if acq.used else ":", alpha=0.7)  # fmt: skip
    _outline(ax, roi, color="tab:red", lw=2.2)
    handles = [Line2D([], [], color="tab:red", lw=2, label="ROI")]
    handles += [Line2D([], [], color=c, label=f"swath of a used date, track {t}")
                for t, c in track_colour.items() if any(a.used and a.track == t for a in ordered)]  # fmt: skip
    if any(not a.used for a in ordered):
        handles.append(Line2D([], [], color="0.55", ls=":", label="swath of a dropped date"))
    ax.legend(handles=handles, loc="best", fontsize=8)
    ax.set_xlabel("longitude [deg]")
    ax.set_ylabel("latitude [deg]")
    used = sum(a.used for a in ordered)
    ax.set_title(f"ROI coverage: {used} of {len(ordered)} dates used")
    ax.set_aspect(1 / max(0.1, math.cos(math.radians(roi.centroid.y))))
    ax.grid(alpha=0.3)

    labels = [f"{a.date}  {a.track}" for a in ordered]
    values = [100 * a.coverage for a in ordered]
    positions = list(range(len(ordered)))[::-1]  # the first date at the top
    bars.barh(positions, values, color=[track_colour[a.track] if a.used else "0.75" for a in ordered],
              edgecolor=["none" if a.used else "0.4" for a in ordered], height=0.7)  # fmt: skip
    for y, value, acq in zip(positions, values, ordered, strict=True):
        bars.text(min(value, 100) + 1.5, y, f"{value:.0f} %" + ("" if acq.used else " dropped"),
                  va="center", fontsize=7, color="black" if acq.used else "0.3")  # fmt: skip
    if min_coverage is not None:
        bars.axvline(100 * min_coverage, color="tab:red", ls="--", lw=1.2,
                     label=f"search.min_roi_coverage {min_coverage:.0%}")  # fmt: skip
        bars.legend(loc="lower right", fontsize=8)
    bars.set_yticks(positions, labels, fontsize=7 if n > 20 else 8)
    bars.set_ylim(-1.4, n - 0.4)  # a free row at the bottom for the legend
    bars.set_xlim(0, 135)
    bars.set_xticks([0, 25, 50, 75, 100])
    bars.set_xlabel("ROI covered by the date's slices [%]")
    bars.set_title("Coverage of each date")
    bars.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    write_figure(fig, out_path)
    plt.close(fig)
