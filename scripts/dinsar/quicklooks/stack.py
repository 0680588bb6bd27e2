"""The stack's figures: the pair network coloured by coherence, the mean coherence per pair, and
every pair's displacement on one shared colour scale."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D

from ..products import LOS_DISPLACEMENT, ProductError
from . import figure
from .figure import Roi
from .table import StackPair

GRID_PANEL_PIXELS = 400  # longest side of each panel of the stack displacement grid


def _day(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%Y%m%d").date()


def date_positions(pairs: Sequence[StackPair]) -> dict[tuple[str, str], float]:
    """Per (track, date) Bperp, chained from the pairs' baselines (first date of a track = 0)."""
    positions: dict[tuple[str, str], float] = {}
    for track in sorted({p.track for p in pairs}):
        members = [p for p in pairs if p.track == track]
        dates = sorted({d for p in members for d in (p.reference, p.secondary)})
        known = {dates[0]: 0.0}
        changed = True
        while changed:
            changed = False
            for p in members:
                b = 0.0 if math.isnan(p.bperp_m) else p.bperp_m
                if p.reference in known and p.secondary not in known:
                    known[p.secondary] = known[p.reference] + b
                    changed = True
                elif p.secondary in known and p.reference not in known:
                    known[p.reference] = known[p.secondary] - b
                    changed = True
            if not changed:
                missing = [d for d in dates if d not in known]
                if missing:  # a disconnected part of the network starts at 0 again
                    known[missing[0]] = 0.0
                    changed = True
        positions.update({(track, d): v for d, v in known.items()})
    return positions


def plot_coherence_network(pairs: Sequence[StackPair], out_path: str | Path) -> Path:
    """The pair network (Bperp against time), each pair coloured by its mean coherence."""
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    positions = date_positions(pairs)
    cmap = plt.get_cmap("viridis")
    norm = Normalize(0, 1)
    for p in pairs:
        colour = "0.6" if math.isnan(p.mean_coherence) else cmap(norm(p.mean_coherence))
        ax.plot([_day(p.reference), _day(p.secondary)],
                [positions[(p.track, p.reference)], positions[(p.track, p.secondary)]],
                color=colour, lw=2.2, alpha=0.9)  # fmt: skip
    for (_track, date), value in sorted(positions.items()):
        ax.scatter([_day(date)], [value], color="black", s=18, zorder=3)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    bar = fig.colorbar(mappable, ax=ax)
    bar.set_label("mean coherence of the pair")
    unknown = all(math.isnan(p.bperp_m) for p in pairs)
    ax.set_ylabel("perpendicular baseline [m]" + (" (unknown)" if unknown else ""))
    ax.set_xlabel("acquisition date")
    ax.set_title(f"Pair network coloured by mean coherence ({len(pairs)} pairs)")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return figure.save(fig, out_path)


def plot_mean_coherence(pairs: Sequence[StackPair], out_path: str | Path,
                        threshold: float | None = None) -> Path:  # fmt: skip
    """Mean coherence per pair, as bars in date order, with the reading thresholds."""
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(pairs) + 2.5), 4.8), dpi=110)
    values = [0.0 if math.isnan(p.mean_coherence) else p.mean_coherence for p in pairs]
    tracks = sorted({p.track for p in pairs})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ax.bar(range(len(pairs)), values,
           color=[colours[tracks.index(p.track) % len(colours)] for p in pairs])  # fmt: skip
    ax.axhline(0.5, color="green", ls="--", lw=1, label="0.5: reliable above")
    ax.axhline(0.3, color="red", ls=":", lw=1, label="0.3: noisy below")
    if threshold is not None and threshold not in (0.3, 0.5):
        ax.axhline(threshold, color="black", lw=0.8, label=f"mask threshold {threshold:g}")
    ax.set_xticks(range(len(pairs)))
    ax.set_xticklabels([f"{p.pair}\n{p.btemp_days} d" for p in pairs], rotation=60, fontsize=7,
                       ha="right")  # fmt: skip
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean coherence")
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color=colours[i % len(colours)], lw=6, label=f"track {t}")
                for i, t in enumerate(tracks)]  # fmt: skip
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    ax.set_title("Mean coherence per pair")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return figure.save(fig, out_path)


def plot_displacement_grid(pairs: Sequence[StackPair], out_path: str | Path, roi: Roi = None
                           ) -> Path:  # fmt: skip
    """Every pair's LOS displacement on one shared, symmetric colour scale."""
    if not pairs:
        raise ProductError("no exported pairs to draw")
    images = []
    for p in pairs:
        path = p.product_dir / LOS_DISPLACEMENT
        images.append(figure.read_decimated(path, GRID_PANEL_PIXELS) if path.is_file() else None)
    limit, scale, unit = figure.displacement_scale(*(im.data for im in images if im is not None))
    ncols = min(4, math.ceil(math.sqrt(len(pairs))))
    nrows = math.ceil(len(pairs) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols + 1.2, 3.2 * nrows + 0.8),
                             dpi=100, squeeze=False)  # fmt: skip
    cmap = figure.colormap("RdBu_r")
    shown = None
    for ax, p, image in zip(axes.ravel(), pairs, images, strict=False):
        if image is None:
            ax.text(0.5, 0.5, "no displacement\n(not unwrapped)", ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
        else:
            shown = ax.imshow(image.data * scale, extent=image.extent, cmap=cmap,
                              vmin=-limit * scale, vmax=limit * scale, interpolation="nearest")  # fmt: skip
            figure.frame(ax, image, roi)
            ax.set_xlabel("")
            ax.set_ylabel("")
            ax.tick_params(labelsize=6)
        ax.set_title(f"{p.pair}  ({p.btemp_days} d)", fontsize=8)
    for ax in axes.ravel()[len(pairs):]:
        ax.axis("off")
    if shown is not None:
        bar = fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8, extend="both")
        bar.set_label(figure.displacement_label(unit))
    fig.suptitle(f"LOS displacement of every pair, shared scale \u00b1{limit * scale:.3g} {unit}")
    return figure.save(fig, out_path)
