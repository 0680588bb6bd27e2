"""The time series' figures, from its exported files only (velocity.tif, history.csv,
timeseries.json): the velocity map and the displacement history at two points."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from ..products import ProductError
from . import figure

VELOCITY_PNG = "velocity.png"
HISTORY_PNG = "history.png"
MM = 1000.0


def _summary(out_dir: Path) -> dict[str, Any]:
    path = out_dir / "timeseries.json"
    if not path.is_file():
        raise ProductError(f"{path} is missing; export the time series first")
    return json.loads(path.read_text(encoding="utf-8"))


def _day(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%Y%m%d").date()


def _date_range(summary: dict[str, Any]) -> str:
    dates = summary["dates"]
    return f"{_day(dates[0]).isoformat()} to {_day(dates[-1]).isoformat()} ({len(dates)} dates)"


def _mark_points(ax: Any, summary: dict[str, Any]) -> None:
    ax.plot(summary["reference_lon"], summary["reference_lat"], marker="^", color="black", ms=9,
            ls="", markerfacecolor="yellow", label="reference point")  # fmt: skip
    if summary.get("fastest_lat") is not None:
        v = summary["fastest_velocity_m_per_year"] * MM
        ax.plot(summary["fastest_lon"], summary["fastest_lat"], marker="o", color="black", ms=8,
                ls="", markerfacecolor="none", mew=1.6, label=f"fastest point ({v:+.1f} mm/yr)")  # fmt: skip


def plot_velocity(out_dir: str | Path, out_path: str | Path | None = None) -> Path:
    """velocity.png: the LOS velocity in mm/yr on a colour scale symmetric about 0."""
    out_dir = Path(out_dir)
    summary = _summary(out_dir)
    image = figure.read_decimated(out_dir / "velocity.tif")
    limit = figure.peak_keeping_limit(image.data) * MM
    height, width = image.data.shape
    aspect = (height / max(1, width)) / max(0.1, math.cos(math.radians(image.centre_lat)))
    fig, ax = plt.subplots(figsize=(8.0, min(11.0, max(4.0, 8.0 * aspect * 0.8 + 1.2))), dpi=110)
    shown = ax.imshow(image.data * MM, extent=image.extent, cmap=figure.colormap("RdBu_r"),
                      vmin=-limit, vmax=limit, interpolation="nearest")  # fmt: skip
    bar = fig.colorbar(shown, ax=ax, shrink=0.85, extend="both")
    bar.set_label("LOS velocity [mm/yr]  (+ towards the satellite)")
    _mark_points(ax, summary)
    figure.frame(ax, image, None)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.8)
    ax.set_title(f"LOS velocity  \u2013  track {summary['track']}\n{_date_range(summary)}",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    return figure.save(fig, out_path or out_dir / VELOCITY_PNG)


def read_history(path: Path) -> tuple[list[dt.date], np.ndarray, np.ndarray]:
    """(dates, displacement at the reference point, at the fastest point) in m (NaN if none)."""
    days, reference, fastest = [], [], []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            days.append(_day(row["date"]))
            reference.append(float(row["reference_point_m"]))
            fastest.append(float(row["fastest_point_m"]) if row["fastest_point_m"] else math.nan)
    return days, np.array(reference), np.array(fastest)


def plot_history(out_dir: str | Path, out_path: str | Path | None = None) -> Path:
    """history.png: displacement (mm) against date at the reference and the fastest point, with
    the fastest point's fitted velocity as a line."""
    out_dir = Path(out_dir)
    summary = _summary(out_dir)
    days, reference, fastest = read_history(out_dir / "history.csv")
    years = np.array([(d - days[0]).days / 365.25 for d in days])
    fig, ax = plt.subplots(figsize=(8.0, 4.6), dpi=110)
    ax.plot(days, reference * MM, marker="^", color="0.3", label="reference point")
    velocity = summary.get("fastest_velocity_m_per_year")
    if velocity is not None and np.isfinite(fastest).any():
        lat, lon = summary["fastest_lat"], summary["fastest_lon"]
        ax.plot(days, fastest * MM, marker="o", color="tab:red", ls="",
                label=f"fastest point ({lat:.5f}, {lon:.5f})")  # fmt: skip
        # the velocity is MintPy's fit; its offset is the one that fits these dates best
        ok = np.isfinite(fastest)
        offset = float(np.mean(fastest[ok] - velocity * years[ok]))
        span = np.linspace(0, years[-1], 50)
        start = dt.datetime.combine(days[0], dt.time())  # a date would drop the fraction of a day
        ax.plot([start + dt.timedelta(days=float(y) * 365.25) for y in span],
                (offset + velocity * span) * MM, color="tab:red", lw=1,
                label=f"fitted velocity {velocity * MM:+.1f} mm/yr")  # fmt: skip
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xlabel("date")
    ax.set_ylabel("LOS displacement [mm]  (+ towards the satellite)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Displacement history  \u2013  track {summary['track']}\n"
                 f"{_date_range(summary)}, relative to the first date and the reference point",
                 fontsize=10)  # fmt: skip
    fig.autofmt_xdate()
    fig.tight_layout()
    return figure.save(fig, out_path or out_dir / HISTORY_PNG)
