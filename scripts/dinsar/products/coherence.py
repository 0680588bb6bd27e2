"""Coherence (``topophase.cor`` band 2) and the coherence mask derived from it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .context import ExportContext
from .isce_input import valid_two_band
from .spec import BYTE_NODATA, FloatArray, ProductSpec, with_nodata

COHERENCE = "coherence.tif"
COHERENCE_MASK = "coherence_mask.tif"

COHERENCE_SPEC = ProductSpec(
    "coherence", COHERENCE, "float32", "1",
    "interferometric coherence 0..1 (topophase.cor band 2)", "AVERAGE",
    {"READING": "> 0.5 reliable phase, < 0.3 noisy"},
    source_band=2,
)  # fmt: skip
COHERENCE_MASK_SPEC = ProductSpec(
    "coherence_mask", COHERENCE_MASK, "uint8", "1",
    "1 = coherence >= {threshold:g}, 0 = below, 255 = no data", "NEAREST",
    {"COHERENCE_THRESHOLD": "{threshold:g}"},
)  # fmt: skip


def coherence_mask(coherence: FloatArray, threshold: float) -> npt.NDArray[np.uint8]:
    """1 = coherence >= threshold (usable), 0 = below, 255 = no data. The data stay untouched."""
    out = np.full(np.shape(coherence), BYTE_NODATA, dtype=np.uint8)
    finite = np.isfinite(coherence)
    out[finite] = (np.asarray(coherence)[finite] >= threshold).astype(np.uint8)
    return out


def coherence_window(bands: np.ndarray, row0: int, ctx: ExportContext) -> dict[str, np.ndarray]:
    amplitude, coherence = bands[0], bands[1]
    out = with_nodata(coherence, valid_two_band(amplitude, coherence))
    ctx.running_stats("coherence").add(out)
    ctx.above_threshold += int(np.count_nonzero(out >= ctx.coherence_threshold))
    found = ctx.blocks_of(row0, out)
    if found:
        ctx.block_coherence[found[0]] = found[1].mean(axis=(2, 3), dtype=np.float64)
    return {"coherence": out, "coherence_mask": coherence_mask(out, ctx.coherence_threshold)}
