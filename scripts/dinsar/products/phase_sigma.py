"""Phase-sigma coherence of the filtered interferogram (``phsig.cor``)."""

from __future__ import annotations

import numpy as np

from .context import ExportContext
from .isce_input import valid_nonzero
from .spec import ProductSpec, with_nodata

PHASE_SIGMA = "phase_sigma.tif"

PHASE_SIGMA_SPEC = ProductSpec(
    "phase_sigma", PHASE_SIGMA, "float32", "1",
    "phase-sigma coherence 0..1 of the filtered interferogram (phsig.cor)", "AVERAGE",
    source_band=1,
)  # fmt: skip


def phase_sigma_window(bands: np.ndarray, row0: int, ctx: ExportContext) -> dict[str, np.ndarray]:
    return {"phase_sigma": with_nodata(bands[0], valid_nonzero(bands[0]))}
