"""snaphu's connected components (``filt_topophase.unw.conncomp``; icu names it differently)."""

from __future__ import annotations

import numpy as np

from .context import ExportContext
from .reference import block_cells
from .spec import BYTE_NODATA, ProductSpec

CONNECTED_COMPONENTS = "connected_components.tif"

CONNECTED_COMPONENTS_SPEC = ProductSpec(
    "connected_components", CONNECTED_COMPONENTS, "uint8", "1",
    "unwrapping connected component label (0 = not in a component; 255 = no data)",
    "NEAREST",
    source_band=1,
)  # fmt: skip


def connected_components_window(bands: np.ndarray, row0: int, ctx: ExportContext
                                ) -> dict[str, np.ndarray]:  # fmt: skip
    labels = bands[0].astype(np.uint8, copy=False)
    out = labels.copy()
    if ctx.unw_valid is not None:
        valid = ctx.unw_valid.read(row0, labels.shape[0])
        out[~valid] = BYTE_NODATA  # 0 is a real label ("no component"); nodata follows unw
        counted = labels[valid]
    else:
        counted = labels
    assert ctx.component_sizes is not None  # the context counts whenever there is a conncomp
    ctx.component_sizes += np.bincount(counted.ravel(), minlength=256)[:256]
    found = ctx.blocks_of(row0, labels)
    if found:
        cells = block_cells(found[1])
        low, high = cells.min(axis=2), cells.max(axis=2)
        ctx.block_component[found[0]] = np.where(low == high, low.astype(np.int32), -1)
    return {"connected_components": out}
