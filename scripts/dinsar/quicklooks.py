"""Quicklook PNGs of a pair's products and the stack-level summary figures.

Every figure reads decimated data: a COG is read at the resolution of the picture, which GDAL
serves from the file's overviews, so memory is bounded by the PNG size, not the raster size.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: clusters and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from shapely.geometry import MultiPolygon, Polygon  # noqa: E402

from .products import (  # noqa: E402
    COHERENCE,
    LOS_DISPLACEMENT,
    WRAPPED_PHASE,
    PairInfo,
    ProductError,
    read_metadata,
)

log = logging.getLogger(__name__)

Roi = Polygon | MultiPolygon | None

QUICKLOOK_PIXELS = 1200  # longest side of the data drawn in a pair quicklook
GRID_PANEL_PIXELS = 400  # longest side of each panel of the stack displacement grid
# Colour limits of displacement: this percentile of |d|. High enough that a local signal covering
# a few percent of the scene is not saturated, low enough to ignore isolated unwrapping errors.
ROBUST_PERCENTILE = 99.5

QUICKLOOKS = {
    "displacement": "quicklook_displacement.png",
    "wrapped_phase": "quicklook_wrapped_phase.png",
    "coherence": "quicklook_coherence.png",
}


@dataclass
class Decimated:
    data: np.ndarray  # float32, NaN = no data
    extent: tuple[float, float, float, float]  # (west, east, south, north) for imshow
    centre_lat: float
    full_shape: tuple[int, int]


def robust_symmetric_limit(values: npt.ArrayLike, percentile: float = 98.0) -> float:
    """Symmetric colour limit: the given percentile of |values| (NaN ignored); > 0 always."""
    flat = np.abs(np.asarray(values, dtype=np.float64).ravel())
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 1.0
    limit = float(np.percentile(flat, percentile))
    if limit <= 0:
        limit = float(flat.max())
    return limit if limit > 0 else 1.0


def read_decimated(path: str | Path, max_pixels: int = QUICKLOOK_PIXELS,
                   resampling: str = "average") -> Decimated:  # fmt: skip
    """The first band at most ``max_pixels`` on its longest side (served from overviews)."""
    import rasterio
    from rasterio.enums import Resampling

    path = Path(path)
    if not path.is_file():
        raise ProductError(f"{path} is missing; export the pair first (dinsar export)")
    with rasterio.Env(GDAL_CACHEMAX=64 * 2**20), rasterio.open(path) as src:  # bytes
        scale = max(src.width, src.height) / max_pixels
        if scale > 1:
            shape = (max(1, round(src.height / scale)), max(1, round(src.width / scale)))
        else:
            shape = (src.height, src.width)
        # No masked=True: rasterio would derive the mask from the full-resolution band, which
        # decompresses every tile. The float products' nodata is NaN, so the data carry it.
        data = src.read(1, out_shape=shape, resampling=Resampling[resampling]).astype(np.float32)
        if src.nodata is not None and not math.isnan(src.nodata):
            data[data == src.nodata] = np.nan
        west, south, east, north = src.bounds
        return Decimated(data, (west, east, south, north), (south + north) / 2, (src.height, src.width))


def _roi_outline(ax: Any, roi: Roi) -> None:
    if roi is None:
        return
    polygons = roi.geoms if isinstance(roi, MultiPolygon) else [roi]
    for index, poly in enumerate(polygons):
        x, y = poly.exterior.xy
        ax.plot(x, y, color="black", lw=1.6, label="ROI" if index == 0 else None)
        ax.plot(x, y, color="white", lw=0.7, ls="--")


def _frame(ax: Any, image: Decimated, roi: Roi) -> None:
    ax.set_xlabel("longitude [deg]")
    ax.set_ylabel("latitude [deg]")
    ax.set_aspect(1 / max(0.1, math.cos(math.radians(image.centre_lat))))
    _roi_outline(ax, roi)
    west, east, south, north = image.extent
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_facecolor("0.85")  # no-data shows as light grey
    ax.grid(alpha=0.25, lw=0.5)


def _title(kind: str, info: PairInfo) -> str:
    return f"{kind}  \u2013  pair {info.pair}\n{info.title()}"


def _save(fig: Any, out_path: str | Path) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    part = out_path.with_name(f".{out_path.name}.part.png")
    fig.savefig(part)
    plt.close(fig)
    part.replace(out_path)
    return out_path


def _figure(image: Decimated) -> tuple[Any, Any]:
    height, width = image.data.shape
    aspect = (height / max(1, width)) / max(0.1, math.cos(math.radians(image.centre_lat)))
    fig_w = 8.0
    fig_h = min(11.0, max(4.0, fig_w * aspect * 0.8 + 1.2))
    return plt.subplots(figsize=(fig_w, fig_h), dpi=110)


def displacement_units(limit_m: float) -> tuple[float, str]:
    """Scale and unit for a colour scale: mm below 1 cm, cm up to 1 m, else m."""
    if limit_m < 0.01:
        return 1000.0, "mm"
    if limit_m < 1.0:
        return 100.0, "cm"
    return 1.0, "m"


def plot_displacement(product_dir: str | Path, out_path: str | Path, info: PairInfo,
                      roi: Roi = None, reference: dict[str, Any] | None = None) -> Path:  # fmt: skip
    image = read_decimated(Path(product_dir) / LOS_DISPLACEMENT)
    limit = robust_symmetric_limit(image.data, ROBUST_PERCENTILE)
    scale, unit = displacement_units(limit)
    fig, ax = _figure(image)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad=(0, 0, 0, 0))
    shown = ax.imshow(image.data * scale, extent=image.extent, cmap=cmap,
                      vmin=-limit * scale, vmax=limit * scale, interpolation="nearest")  # fmt: skip
    bar = fig.colorbar(shown, ax=ax, shrink=0.85, extend="both")
    bar.set_label(f"LOS displacement [{unit}]  (+ towards the satellite)")
    if reference and reference.get("method") not in (None, "none") and reference.get("lat") is not None:
        ax.plot(reference["lon"], reference["lat"], marker="^", color="black", ms=8, ls="",
                markerfacecolor="yellow", label="reference point")  # fmt: skip
    _frame(ax, image, roi)
    if roi is not None or reference:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.8)
    ax.set_title(_title("LOS displacement", info), fontsize=10)
    fig.tight_layout()
    return _save(fig, out_path)


def plot_wrapped_phase(product_dir: str | Path, out_path: str | Path, info: PairInfo,
                       roi: Roi = None) -> Path:  # fmt: skip
    # nearest: averaging wrapped phase across a fringe would invent values
    image = read_decimated(Path(product_dir) / WRAPPED_PHASE, resampling="nearest")
    fig, ax = _figure(image)
    # cyclic: -pi and +pi get the same colour
    cmap = plt.get_cmap("twilight").with_extremes(bad=(0, 0, 0, 0))
    shown = ax.imshow(image.data, extent=image.extent, cmap=cmap, vmin=-math.pi, vmax=math.pi,
                      interpolation="nearest")  # fmt: skip
    bar = fig.colorbar(shown, ax=ax, shrink=0.85, ticks=[-math.pi, 0, math.pi])
    bar.ax.set_yticklabels(["-\u03c0", "0", "\u03c0"])
    bar.set_label("wrapped phase [rad]  (one cycle = \u03bb/2 of LOS motion)")
    _frame(ax, image, roi)
    if roi is not None:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.8)
    ax.set_title(_title("Wrapped interferometric phase (filtered)", info), fontsize=10)
    fig.tight_layout()
    return _save(fig, out_path)


def plot_coherence(product_dir: str | Path, out_path: str | Path, info: PairInfo,
                   roi: Roi = None, threshold: float | None = None) -> Path:  # fmt: skip
    image = read_decimated(Path(product_dir) / COHERENCE)
    fig, ax = _figure(image)
    cmap = plt.get_cmap("magma").with_extremes(bad=(0, 0, 0, 0))
    shown = ax.imshow(image.data, extent=image.extent, cmap=cmap, vmin=0, vmax=1,
                      interpolation="nearest")  # fmt: skip
    bar = fig.colorbar(shown, ax=ax, shrink=0.85)
    bar.set_label("coherence [0..1]   > 0.5 reliable, < 0.3 noisy")
    for level, style in ((0.3, ":"), (0.5, "--")):
        bar.ax.axhline(level, color="cyan", ls=style, lw=1.2)
    if threshold is not None:
        bar.ax.axhline(threshold, color="white", lw=1.0)
    finite = image.data[np.isfinite(image.data)]
    mean = f"mean {finite.mean():.2f}" if finite.size else "no data"
    _frame(ax, image, roi)
    if roi is not None:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.8)
    ax.set_title(_title(f"Coherence ({mean})", info), fontsize=10)
    fig.tight_layout()
    return _save(fig, out_path)


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


# ------------------------------------------------------------------------------------------------
# Stack
# ------------------------------------------------------------------------------------------------


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

        def number(value: Any) -> float:
            try:
                return float(value)
            except (TypeError, ValueError):
                return math.nan

        # the export's (ISCE's own when the search had no baselines), else the plan's
        bperp = number(info.bperp_m)
        if math.isnan(bperp):
            bperp = number(row.get("bperp_m"))
        out.append(
            StackPair(
                pair=info.pair,
                track=row.get("track") or info.track or "?",
                reference=row.get("reference") or info.reference or info.pair[:8],
                secondary=row.get("secondary") or info.secondary or info.pair[-8:],
                btemp_days=int(row.get("btemp_days") or info.btemp_days or 0),
                bperp_m=bperp,
                mean_coherence=number(coh.get("mean")),
                fraction_coherent=number(coh.get("fraction_above_threshold")),
                product_dir=Path(directory),
            )
        )
    return sorted(out, key=lambda p: (p.track, p.reference, p.secondary))


def write_stack_table(pairs: Sequence[StackPair], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with open(part, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["pair", "track", "reference", "secondary", "btemp_days", "bperp_m",
                         "mean_coherence", "fraction_coherent"])  # fmt: skip
        for p in pairs:
            writer.writerow([p.pair, p.track, p.reference, p.secondary, p.btemp_days,
                             "" if math.isnan(p.bperp_m) else f"{p.bperp_m:.1f}",
                             "" if math.isnan(p.mean_coherence) else f"{p.mean_coherence:.3f}",
                             "" if math.isnan(p.fraction_coherent) else f"{p.fraction_coherent:.3f}"])  # fmt: skip
    part.replace(path)
    return path


def read_stack_table(path: str | Path) -> list[StackPair]:
    """The pairs written by :func:`write_stack_table`."""

    def number(text: str) -> float:
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
    return _save(fig, out_path)


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
    return _save(fig, out_path)


def plot_displacement_grid(pairs: Sequence[StackPair], out_path: str | Path, roi: Roi = None
                           ) -> Path:  # fmt: skip
    """Every pair's LOS displacement on one shared, symmetric colour scale."""
    if not pairs:
        raise ProductError("no exported pairs to draw")
    images = []
    for p in pairs:
        path = p.product_dir / LOS_DISPLACEMENT
        images.append(read_decimated(path, GRID_PANEL_PIXELS) if path.is_file() else None)
    present = [im.data for im in images if im is not None]
    values = np.concatenate([d.ravel() for d in present]) if present else np.array([])
    limit = robust_symmetric_limit(values, ROBUST_PERCENTILE)
    scale, unit = displacement_units(limit)
    ncols = min(4, math.ceil(math.sqrt(len(pairs))))
    nrows = math.ceil(len(pairs) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols + 1.2, 3.2 * nrows + 0.8),
                             dpi=100, squeeze=False)  # fmt: skip
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad=(0, 0, 0, 0))
    shown = None
    for ax, p, image in zip(axes.ravel(), pairs, images, strict=False):
        if image is None:
            ax.text(0.5, 0.5, "no displacement\n(not unwrapped)", ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
        else:
            shown = ax.imshow(image.data * scale, extent=image.extent, cmap=cmap,
                              vmin=-limit * scale, vmax=limit * scale, interpolation="nearest")  # fmt: skip
            _frame(ax, image, roi)
            ax.set_xlabel("")
            ax.set_ylabel("")
            ax.tick_params(labelsize=6)
        ax.set_title(f"{p.pair}  ({p.btemp_days} d)", fontsize=8)
    for ax in axes.ravel()[len(pairs):]:
        ax.axis("off")
    if shown is not None:
        bar = fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8, extend="both")
        bar.set_label(f"LOS displacement [{unit}]  (+ towards the satellite)")
    fig.suptitle(f"LOS displacement of every pair, shared scale \u00b1{limit * scale:.3g} {unit}")
    return _save(fig, out_path)


# ------------------------------------------------------------------------------------------------
# Report table
# ------------------------------------------------------------------------------------------------


def _flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        rows: list[tuple[str, str]] = []
        for key, inner in value.items():
            rows += _flatten(f"{prefix}.{key}" if prefix else str(key), inner)
        return rows
    if isinstance(value, (list, tuple)):
        return [(prefix, ", ".join(str(v) for v in value) if value else "[]")]
    return [(prefix, "null" if value is None else str(value))]


def processing_html(settings: dict[str, Any], orbits: dict[str, str],
                    pairs: Sequence[StackPair], dems: dict[str, dict[str, Any]] | None = None,
                    isce_versions: Sequence[str] = ()) -> str:  # fmt: skip
    """A self-contained HTML page: the software and DEM used, processing parameters, orbit
    type per date, pair summary."""
    from html import escape

    def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
        head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

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
        (track, m.get("file") or m.get("source"), m.get("input_vertical_datum"),
         ", ".join(f"{v:.4f}" for v in m.get("bounds") or []),
         f"{abs(m['posting'][0]) * 3600:.2f}\"" if m.get("posting") else "n/a")
        for track, m in sorted((dems or {}).items())
    ]  # fmt: skip
    versions = ", ".join(sorted(set(isce_versions))) or "unknown"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Processing</title>"
        f"<style>{style}</style></head><body>"
        f"<h2>Software</h2><p>ISCE2 topsApp {escape(versions)}</p>"
        "<h2>DEM used</h2>"
        + table(["track", "DEM", "input heights", "bounds W, S, E, N", "posting"], dem_rows)
        + "<h2>Orbit type per date</h2>"
        f"<p>{escape(orbit_note)}</p>"
        "<table><thead><tr><th>date</th><th>orbit type</th></tr></thead>"
        f"<tbody>{orbit_rows}</tbody></table>"
        "<h2>Pairs</h2>"
        + table(["pair", "track", "Btemp [d]", "Bperp [m]", "mean coherence",
                 "coherent fraction"], pair_rows)  # fmt: skip
        + "<h2>Processing parameters</h2>"
        + table(["setting", "value"], _flatten("", settings))
        + "</body></html>\n"
    )
