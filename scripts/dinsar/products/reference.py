"""The reference point: where the displacement is set to zero, to remove the constant phase
offset the unwrapper leaves. Either a configured lat/lon or, automatically, the most coherent
block of the largest connected area.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..grid import Grid
from .spec import BoolArray, FloatArray, ProductError

log = logging.getLogger(__name__)

# Reference-area block (pixels) for the automatic reference point: large enough that the
# median of its phase is robust to speckle, small enough to sit inside one coherent patch.
REFERENCE_BLOCK = 8
# Window (pixels) around a configured lat/lon reference point whose median phase is used.
REFERENCE_WINDOW = 3

ReferenceRequest = str | tuple[float, float] | None  # "auto", (lat, lon) or None


@dataclass
class ReferencePoint:
    method: str  # "none" | "point" | "auto"
    lat: float | None = None
    lon: float | None = None
    row: int | None = None
    col: int | None = None
    phase_rad: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class BlockStats:
    """Per-block statistics gathered during the windowed passes (for the automatic reference)."""

    coherence_mean: npt.NDArray[np.float32]  # NaN where any pixel lacks coherence
    unwrapped_ok: BoolArray  # every pixel of the block has an unwrapped phase
    component: npt.NDArray[np.int32]  # the block's conncomp label if uniform, else -1
    component_sizes: npt.NDArray[np.int64] | None  # pixels per conncomp label (None: no conncomp)


def parse_reference(value: str | Sequence[float] | None) -> ReferenceRequest:
    if value is None or value == "none":
        return None
    if value == "auto":
        return "auto"
    if isinstance(value, str):
        raise ProductError(f"reference point {value!r}: give 'auto', [lat, lon] or null")
    if len(value) != 2:
        raise ProductError(f"reference point {list(value)!r} must be [lat, lon] in degrees")
    return float(value[0]), float(value[1])


def rowcol_of(transform: Sequence[float], lat: float, lon: float) -> tuple[int, int]:
    """Pixel (row, col) containing lon/lat for a GDAL geotransform (north-up, corner origin)."""
    x0, dx, _, y0, _, dy = transform
    return int(math.floor((lat - y0) / dy)), int(math.floor((lon - x0) / dx))


def latlon_of(transform: Sequence[float], row: float, col: float) -> tuple[float, float]:
    """lat/lon of the centre of pixel (row, col)."""
    x0, dx, _, y0, _, dy = transform
    return y0 + (row + 0.5) * dy, x0 + (col + 0.5) * dx


def outside_message(grid: Grid, lat: float, lon: float) -> str:
    """A reference point off the grid: the grid's extent, and whether lat and lon are swapped."""
    west, south, east, north = grid.bounds()
    extent = f"lat {south:.4f}..{north:.4f}, lon {west:.4f}..{east:.4f}"
    if south <= lon <= north and west <= lat <= east:
        swapped = (f"lat and lon look swapped: [{lon}, {lat}] lies inside; "
                   "products.reference_point is [lat, lon]")  # fmt: skip
    else:
        swapped = "are lat and lon swapped? products.reference_point is [lat, lon]"
    return (f"reference point lat {lat}, lon {lon} lies outside the geocoded area ({extent}); "
            f"{swapped}; choose a point inside it or 'auto'")  # fmt: skip


def block_view(values: np.ndarray, block: int) -> np.ndarray:
    """(rows//b, cols//b, b, b) view of the whole blocks of a 2-D array (edges dropped)."""
    rows, cols = values.shape[0] // block, values.shape[1] // block
    trimmed = values[: rows * block, : cols * block]
    return trimmed.reshape(rows, block, cols, block).swapaxes(1, 2)


def block_cells(view: np.ndarray) -> np.ndarray:
    """The (rows, cols, b*b) pixels of a :func:`block_view`, contiguous: reducing them is several
    times faster than reducing the view's last two axes (use for exact reductions only)."""
    return np.ascontiguousarray(view).reshape(view.shape[0], view.shape[1], -1)


def label_components(mask: BoolArray) -> tuple[npt.NDArray[np.int32], int]:
    """4-connected component labels (1..n, 0 = background) of a 2-D boolean array.

    Scan-line union-find over runs: the work is proportional to the number of runs, so it is
    meant for block grids (thousands of cells a side), not full-resolution rasters.
    """
    mask = np.asarray(mask, dtype=bool)
    labels = np.zeros(mask.shape, dtype=np.int32)
    parent: list[int] = [0]

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    previous: list[tuple[int, int, int]] = []  # (start, stop, provisional label) of the row above
    for r in range(mask.shape[0]):
        row = mask[r].astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], row, [0]))))
        runs: list[tuple[int, int, int]] = []
        j = 0
        for start, stop in zip(edges[0::2], edges[1::2], strict=True):
            label = 0
            # runs of the row above that overlap [start, stop) share the component
            while j < len(previous) and previous[j][1] <= start:
                j += 1
            k = j
            while k < len(previous) and previous[k][0] < stop:
                other = find(previous[k][2])
                if label == 0:
                    label = other
                elif other != label:
                    parent[max(other, label)] = min(other, label)
                    label = min(other, label)
                k += 1
            if label == 0:
                label = len(parent)
                parent.append(label)
            runs.append((int(start), int(stop), label))
            labels[r, start:stop] = label
        previous = runs
    roots = np.array([find(i) for i in range(len(parent))], dtype=np.int32)
    unique = np.unique(roots[1:]) if len(parent) > 1 else np.array([], dtype=np.int32)
    remap = np.zeros(len(parent), dtype=np.int32)
    remap[unique] = np.arange(1, unique.size + 1, dtype=np.int32)
    return remap[roots][labels], int(unique.size)


def choose_reference_block(stats: BlockStats, threshold: float) -> tuple[int, int, str]:
    """Automatic reference: the most coherent block inside the largest connected component.

    With snaphu's connected components, the largest non-zero component (by pixel count) is used.
    Without them, components are the 4-connected groups of blocks whose mean coherence is at
    least ``threshold``. Returns (block row, block col, description).
    """
    ok = stats.unwrapped_ok & np.isfinite(stats.coherence_mean)
    if not ok.any():
        raise ProductError(
            f"automatic reference point: no {REFERENCE_BLOCK}x{REFERENCE_BLOCK} pixel block has "
            "both unwrapped phase and coherence everywhere; set products.reference_point to "
            "[lat, lon] or null"
        )
    coherence = np.where(ok, stats.coherence_mean, -np.inf)
    how: str
    if stats.component_sizes is not None and stats.component_sizes[1:].sum() > 0:
        largest = int(np.argmax(stats.component_sizes[1:]) + 1)
        inside = ok & (stats.component == largest)
        how = f"snaphu connected component {largest} ({int(stats.component_sizes[largest])} px)"
        if not inside.any():
            log.warning(
                "no whole %dx%d block lies in connected component %d; using the most coherent "
                "block anywhere",
                REFERENCE_BLOCK,
                REFERENCE_BLOCK,
                largest,
            )
            inside = ok
            how = "most coherent block (no block fully inside the largest component)"
    else:
        good = ok & (stats.coherence_mean >= threshold)
        if good.any():
            labels, count = label_components(good)
            sizes = np.bincount(labels.ravel(), minlength=count + 1)
            largest = int(np.argmax(sizes[1:]) + 1)
            inside = labels == largest
            how = f"largest area with coherence >= {threshold:g} ({int(sizes[largest])} blocks)"
        else:
            log.warning(
                "no block reaches coherence %.2f; the reference is the most coherent block", threshold
            )
            inside = ok
            how = f"most coherent block (none reaches {threshold:g})"
    index = int(np.argmax(np.where(inside, coherence, -np.inf)))
    brow, bcol = np.unravel_index(index, coherence.shape)
    return int(brow), int(bcol), how


def find_reference(
    request: ReferenceRequest,
    grid: Grid,
    read_phase: Callable[[int, int], FloatArray],
    stats: BlockStats,
    threshold: float,
) -> ReferencePoint:
    """Where the displacement is set to zero, and the unwrapped phase there.

    ``read_phase(row0, rows)`` gives rows of the unwrapped phase (rows, width), NaN for no data.
    """
    if request is None:
        return ReferencePoint(method="none", detail="no reference point: the phase offset left "
                              "by the unwrapper remains")  # fmt: skip
    if request == "auto":
        brow, bcol, how = choose_reference_block(stats, threshold)
        row0, col0, size = brow * REFERENCE_BLOCK, bcol * REFERENCE_BLOCK, REFERENCE_BLOCK
        method, detail = "auto", f"most coherent {size}x{size} block in the {how}"
    else:
        lat, lon = request
        row, col = rowcol_of(grid.transform, lat, lon)
        if not (0 <= row < grid.length and 0 <= col < grid.width):
            raise ProductError(outside_message(grid, lat, lon))
        half = REFERENCE_WINDOW // 2
        row0, col0 = max(0, row - half), max(0, col - half)
        size = REFERENCE_WINDOW
        method, detail = "point", f"median of the {size}x{size} pixels around lat {lat}, lon {lon}"
    height, width = min(size, grid.length - row0), min(size, grid.width - col0)
    values = read_phase(row0, height)[:, col0 : col0 + width]
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ProductError(
            f"the reference point ({detail}) has no unwrapped phase (no data there); choose "
            "another point or 'auto'"
        )
    centre_row, centre_col = row0 + height / 2 - 0.5, col0 + width / 2 - 0.5
    lat_c, lon_c = latlon_of(grid.transform, centre_row, centre_col)
    phase_ref = float(np.median(finite))
    log.info("reference point (%s): lat %.5f lon %.5f, phase %.4f rad", method, lat_c, lon_c,
             phase_ref)  # fmt: skip
    return ReferencePoint(
        method=method, lat=lat_c, lon=lon_c, row=int(round(centre_row)),
        col=int(round(centre_col)), phase_rad=phase_ref, detail=detail,
    )  # fmt: skip
