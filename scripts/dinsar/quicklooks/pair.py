"""The quicklook PNGs of one pair: displacement, wrapped phase and coherence, each with title
(dates, baselines, track), colour bar and the area outline."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from ..products import (
    COHERENCE,
    LOS_DISPLACEMENT,
    WRAPPED_PHASE,
    PairInfo,
    ProductError,
    read_metadata,
)
from . import figure
from .figure import Decimated, Roi

QUICKLOOKS = {
    "displacement": "quicklook_displacement.png",
    "wrapped_phase": "quicklook_wrapped_phase.png",
    "coherence": "quicklook_coherence.png",
}


def _title(kind: str, info: PairInfo) -> str:
    return f"{kind}  \u2013  pair {info.pair}\n{info.title()}"


def _map_figure(image: Decimated) -> tuple[Any, Any]:
    height, width = image.data.shape
    aspect = (height / max(1, width)) / max(0.1, math.cos(math.radians(image.centre_lat)))
    fig_w = 8.0
    fig_h = min(11.0, max(4.0, fig_w * aspect * 0.8 + 1.2))
    return plt.subplots(figsize=(fig_w, fig_h), dpi=110)


def plot_displacement(product_dir: str | Path, out_path: str | Path, info: PairInfo,
                      roi: Roi = None, reference: dict[str, Any] | None = None) -> Path:  # fmt: skip
    image = figure.read_decimated(Path(product_dir) / LOS_DISPLACEMENT)
    limit, scale, unit = figure.displacement_scale(image.data)
    fig, ax = _map_figure(image)
    shown = ax.imshow(image.data * scale, extent=image.extent, cmap=figure.colormap("RdBu_r"),
                      vmin=-limit * scale, vmax=limit * scale, interpolation="nearest")  # fmt: skip
    bar = fig.colorbar(shown, ax=ax, shrink=0.85, extend="both")
    bar.set_label(figure.displacement_label(unit))
    if reference and reference.get("method") not in (None, "none") and reference.get("lat") is not None:
        ax.plot(reference["lon"], reference["lat"], marker="^", color="black", ms=8, ls="",
                markerfacecolor="yellow", label="reference point")  # fmt: skip
    figure.frame(ax, image, roi)
    if roi is not None or reference:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.8)
    ax.set_title(_title("LOS displacement", info), fontsize=10)
    fig.tight_layout()
    return figure.save(fig, out_path)


def plot_wrapped_phase(product_dir: str | Path, out_path: str | Path, info: PairInfo,
                       roi: Roi = None) -> Path:  # fmt: skip
    # nearest: averaging wrapped phase across a fringe would invent values
    image = figure.read_decimated(Path(product_dir) / WRAPPED_PHASE, resampling="nearest")
    fig, ax = _map_figure(image)
    # cyclic: -pi and +pi get the same colour
    shown = ax.imshow(image.data, extent=image.extent, cmap=figure.colormap("twilight"),
                      vmin=-math.pi, vmax=math.pi, interpolation="nearest")  # fmt: skip
    bar = fig.colorbar(shown, ax=ax, shrink=0.85, ticks=[-math.pi, 0, math.pi])
    bar.ax.set_yticklabels(["-\u03c0", "0", "\u03c0"])
    bar.set_label("wrapped phase [rad]  (one cycle = \u03bb/2 of LOS motion)")
    figure.frame(ax, image, roi)
    if roi is not None:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.8)
    ax.set_title(_title("Wrapped interferometric phase (filtered)", info), fontsize=10)
    fig.tight_layout()
    return figure.save(fig, out_path)


def plot_coherence(product_dir: str | Path, out_path: str | Path, info: PairInfo,
                   roi: Roi = None, threshold: float | None = None) -> Path:  # fmt: skip
    image = figure.read_decimated(Path(product_dir) / COHERENCE)
    fig, ax = _map_figure(image)
    shown = ax.imshow(image.data, extent=image.extent, cmap=figure.colormap("magma"), vmin=0,
                      vmax=1, interpolation="nearest")  # fmt: skip
    bar = fig.colorbar(shown, ax=ax, shrink=0.85)
    bar.set_label("coherence [0..1]   > 0.5 reliable, < 0.3 noisy")
    for level, style in ((0.3, ":"), (0.5, "--")):
        bar.ax.axhline(level, color="cyan", ls=style, lw=1.2)
    if threshold is not None:
        bar.ax.axhline(threshold, color="white", lw=1.0)
    finite = image.data[np.isfinite(image.data)]
    mean = f"mean {finite.mean():.2f}" if finite.size else "no data"
    figure.frame(ax, image, roi)
    if roi is not None:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.8)
    ax.set_title(_title(f"Coherence ({mean})", info), fontsize=10)
    fig.tight_layout()
    return figure.save(fig, out_path)


def make_quicklooks(product_dir: str | Path, out_paths: dict[str, str | Path] | None = None,
                    roi: Roi = None, info: PairInfo | None = None) -> dict[str, Path]:  # fmt: skip
    """The pair's quicklook PNGs; ``out_paths`` maps kind -> path (default: in product_dir)."""
    product_dir = Path(product_dir)
    meta = read_metadata(product_dir)
    info = info or PairInfo.from_json(meta["pair"])
    paths = {k: Path(v) for k, v in (out_paths or {}).items()} or {
        kind: product_dir / name for kind, name in QUICKLOOKS.items()
    }
    done: dict[str, Path] = {}
    have = set(meta.get("products", []))
    for kind, path in paths.items():
        if kind == "displacement":
            if LOS_DISPLACEMENT not in have:
                raise ProductError(
                    f"{product_dir} has no {LOS_DISPLACEMENT} (no unwrapped phase); turn on "
                    "isce.unwrap or drop the displacement quicklook"
                )
            done[kind] = plot_displacement(product_dir, path, info, roi, meta.get("reference_point"))
        elif kind == "wrapped_phase":
            done[kind] = plot_wrapped_phase(product_dir, path, info, roi)
        elif kind == "coherence":
            done[kind] = plot_coherence(product_dir, path, info, roi, meta.get("coherence_threshold"))
        else:
            raise ValueError(f"unknown quicklook kind {kind!r}")
    return done
