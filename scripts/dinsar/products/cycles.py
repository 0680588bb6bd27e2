"""The unwrapped phase without the filter's bias: whole cycles from the filtered unwrap, the rest
from the unfiltered interferogram.

topsApp unwraps the Goldstein-filtered interferogram (``filt_topophase.flat`` ->
``filt_topophase.unw``). The filter makes unwrapping robust, but it is nonlinear and its loss
depends on the signal: on the shared real stack of tests/REAL.md (a constant 0.30 m/yr on a
1 km bump) the filtered unwrapped phase gave 80.0 % of the truth at the bump for 12-day pairs
and 92.1 % for 24-day pairs, so triplets failed to close (-2.4 mm at the bump's peak); 93 % of
a 2 cm bump in another real run. The phase exported this way gave 99.9 % for every pair, and
the triplets closed to 0.006 mm (measured 2026-12-05, tests/REAL.md).

The exported unwrapped phase (``unwrapped_phase.tif``, and from it ``los_displacement.tif`` and
the phase handed to MintPy) is therefore

    phi = arg(I) + 2*pi*k,   k = round((phi_filt - arg(I)) / (2*pi))

per pixel, where ``I`` is the unfiltered multilooked interferogram (topsApp's
``topophase.flat``, complex) and ``phi_filt`` the filtered unwrapped phase: the filter only
decides the whole number of cycles; the phase within the cycle is the unfiltered one, so the
pairs close (arg of a multilooked interferogram is additive over a triplet up to the
multilooking's closure phase). Both rasters are geocoded by topsApp onto the same grid
(``topophase.flat`` by sinc interpolation, the unwrapped phase nearest-neighbour); the
transfer happens on that grid.

The filtered unwrapped phase stays available as ``filtered_unwrapped_phase.tif``.

Masking. The transfer is only meaningful where the unfiltered phase is signal and the cycle
count is unambiguous. A pixel of the exported phase is no data (NaN) where

* either input has no data;
* the coherence (``topophase.cor`` band 2) is below the export's coherence threshold (the
  unfiltered phase there is noise, which the filter had hidden);
* snaphu left it out of every connected component (label 0), when the components are geocoded;
* the filtered and unfiltered phase differ by more than :data:`MAX_RESIDUAL` (pi/2) after the
  whole cycles are taken out: the rounding is then close to a tie, and the cycle count unsure.

The counts of each reason go into metadata.json (``stats.cycle_transfer``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .context import ExportContext
from .reference import block_cells
from .spec import BoolArray, FloatArray

# Largest |filtered - unfiltered| phase (rad), whole cycles removed, at which the cycle count is
# still taken: the filter's own change of the phase stays well below it on coherent ground (at
# most ~0.5 rad on the shared real stack), and a tie (pi) is far from it.
MAX_RESIDUAL = math.pi / 2

ComplexArray = npt.NDArray[np.complexfloating[Any, Any]]


@dataclass(frozen=True)
class Transfer:
    """The exported phase of a window and why pixels were left out."""

    phase: FloatArray  # float32, NaN where masked
    no_data: BoolArray  # either input has none
    incoherent: BoolArray  # coherence below the threshold (and data)
    unconnected: BoolArray  # snaphu's label 0 (and data, coherent)
    ambiguous: BoolArray  # |residual| > MAX_RESIDUAL (and none of the above)


def cycle_count(filtered_unwrapped: FloatArray, unfiltered_wrapped: FloatArray) -> tuple[
        npt.NDArray[np.int32], FloatArray]:  # fmt: skip
    """Whole cycles k between the two phases, and the residual (rad, within [-pi, pi])."""
    difference = np.asarray(filtered_unwrapped, dtype=np.float64) - np.asarray(
        unfiltered_wrapped, dtype=np.float64)  # fmt: skip
    cycles = np.rint(difference / (2 * math.pi))
    residual = difference - 2 * math.pi * cycles
    return cycles.astype(np.int32), residual


def transfer_cycles(
    filtered_unwrapped: FloatArray,
    unfiltered: ComplexArray,
    coherence: FloatArray | None,
    threshold: float,
    components: npt.NDArray[np.integer[Any]] | None = None,
    max_residual: float = MAX_RESIDUAL,
) -> Transfer:
    """The unfiltered phase plus the filtered unwrap's whole cycles; NaN where not trustworthy.

    ``filtered_unwrapped`` is NaN (or ``unfiltered`` 0 or non-finite) where there is no data;
    ``coherence`` and ``components`` may be None when they were not geocoded.
    """
    filtered = np.asarray(filtered_unwrapped, dtype=np.float64)
    ifg = np.asarray(unfiltered)
    has_data = np.isfinite(filtered) & np.isfinite(ifg) & (ifg != 0)
    wrapped = np.angle(np.where(has_data, ifg, 1))
    cycles, residual = cycle_count(np.where(has_data, filtered, 0.0), wrapped)
    no_data = ~has_data
    if coherence is None:
        incoherent = np.zeros_like(has_data)
    else:
        cor = np.asarray(coherence, dtype=np.float64)
        incoherent = has_data & ~(np.isfinite(cor) & (cor >= threshold))
    left = has_data & ~incoherent
    unconnected = (
        left & (np.asarray(components) == 0) if components is not None else np.zeros_like(left)
    )
    left &= ~unconnected
    ambiguous = left & (np.abs(residual) > max_residual)
    keep = left & ~ambiguous
    phase = np.where(keep, wrapped + 2 * math.pi * cycles, np.nan).astype(np.float32)
    return Transfer(phase, no_data, incoherent, unconnected, ambiguous)


def unwrapped_phase_window(bands: np.ndarray, row0: int, ctx: ExportContext) -> dict[str, np.ndarray]:
    """The pass over ``topophase.flat``: its companions are the earlier products of the window."""
    rows = ctx.companions
    # a band product's rows are its ISCE band as it stands: snaphu's zero-fill is no data
    assert ctx.unw_valid is not None  # kept whenever there is an unwrapped phase
    valid = ctx.unw_valid.read(row0, bands.shape[1])
    filtered = np.where(valid, rows["filtered_unwrapped_phase"], np.nan)
    transfer = transfer_cycles(filtered, bands[0], rows.get("coherence"), ctx.coherence_threshold,
                               rows.get("connected_components"))  # fmt: skip
    counts = ctx.cycle_transfer
    for reason in ("incoherent", "unconnected", "ambiguous"):
        counts[reason] = counts.get(reason, 0) + int(np.count_nonzero(getattr(transfer, reason)))
    found = ctx.blocks_of(row0, np.isfinite(transfer.phase))
    if found:  # the automatic reference takes a block with the phase at every pixel
        ctx.block_unwrapped_ok[found[0]] = block_cells(found[1]).all(axis=2)
    return {"unwrapped_phase": transfer.phase}
