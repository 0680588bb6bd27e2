"""Wrapped phase of the filtered interferogram (``filt_topophase.flat``, complex)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .context import ExportContext
from .isce_input import valid_complex
from .spec import FloatArray, ProductSpec, with_nodata

WRAPPED_PHASE = "wrapped_phase.tif"

WRAPPED_PHASE_SPEC = ProductSpec(
    "wrapped_phase", WRAPPED_PHASE, "float32", "rad",
    "wrapped phase of the filtered interferogram (filt_topophase.flat), -pi..pi",
    "NEAREST",  # averaging wrapped phase across a fringe would invent values
    {"SIGN_CONVENTION": "as unwrapped_phase, modulo 2*pi"},
)  # fmt: skip


def wrapped_phase(values: npt.NDArray[np.complexfloating[Any, Any]]) -> FloatArray:
    """Phase in (-pi, pi] of the complex interferogram, NaN where there is none."""
    valid = valid_complex(values)
    return with_nodata(np.angle(values), valid)


def wrapped_phase_window(bands: np.ndarray, row0: int, ctx: ExportContext) -> dict[str, np.ndarray]:
    return {"wrapped_phase": wrapped_phase(bands[0])}
