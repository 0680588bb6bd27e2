"""LOS displacement, from the unwrapped phase without the filter's bias (dinsar.products.cycles:
the unfiltered ``topophase.flat`` plus the whole cycles of topsApp's ``filt_topophase.unw``).

Sign convention (verified on a real topsApp run with an injected range increase): topsApp's
unwrapped phase is ``+4*pi/lambda * (R_secondary - R_reference)``. Positive phase is a range
increase, i.e. motion away from the satellite. We publish

    LOS displacement d = -phi * lambda / (4*pi)   [m, positive TOWARDS the satellite]

with lambda read from the pair's ``reference/IW<n>.xml`` (``radarwavelength``).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from .context import ExportContext
from .isce_input import valid_unwrapped
from .reference import find_reference
from .spec import FloatArray, ProductError, ProductSpec, with_nodata

LOS_DISPLACEMENT = "los_displacement.tif"
UNWRAPPED_PHASE = "unwrapped_phase.tif"
FILTERED_UNWRAPPED_PHASE = "filtered_unwrapped_phase.tif"

SIGN_CONVENTION = (
    "LOS displacement in metres, positive towards the satellite (uplift on a flat surface is "
    "positive): d = -phi * lambda / (4*pi), where phi is topsApp's unwrapped phase "
    "(positive phi = range increase = motion away from the satellite)"
)

PHASE_SIGN_CONVENTION = (
    "positive phase = range increase (motion away from the satellite); "
    "phase = 4*pi/lambda * (R_secondary - R_reference)"
)

UNWRAPPED_PHASE_SPEC = ProductSpec(
    "unwrapped_phase", UNWRAPPED_PHASE, "float32", "rad",
    "unwrapped interferometric phase: the unfiltered interferogram (topsApp topophase.flat) plus "
    "the whole cycles of the filtered unwrap (filt_topophase.unw); no data where coherence < "
    "{threshold:g}, outside snaphu's components or where the cycle count is unsure",
    "AVERAGE",
    {"SIGN_CONVENTION": PHASE_SIGN_CONVENTION,
     "WAVELENGTH_M": "{wavelength:.8f}",
     "METHOD": "arg(topophase.flat) + 2*pi*round((filt_unw - arg(topophase.flat)) / (2*pi))"},
)  # fmt: skip
FILTERED_UNWRAPPED_PHASE_SPEC = ProductSpec(
    "filtered_unwrapped_phase", FILTERED_UNWRAPPED_PHASE, "float32", "rad",
    "unwrapped phase of the Goldstein-filtered interferogram (topsApp filt_topophase.unw band 2); "
    "biased by the filter: use unwrapped_phase for measurements",
    "AVERAGE",
    {"SIGN_CONVENTION": PHASE_SIGN_CONVENTION,
     "WAVELENGTH_M": "{wavelength:.8f}"},
    source_band=2,
)  # fmt: skip
LOS_DISPLACEMENT_SPEC = ProductSpec(
    "los_displacement", LOS_DISPLACEMENT, "float32", "m",
    "LOS displacement, positive towards the satellite",
    "AVERAGE",
    {"SIGN_CONVENTION": SIGN_CONVENTION, "WAVELENGTH_M": "{wavelength:.8f}",
     "FORMULA": "d = -phi * lambda / (4*pi)", "POSITIVE": "towards the satellite"},
)  # fmt: skip


def phase_to_los_displacement(phase: npt.ArrayLike, wavelength: float) -> FloatArray:
    """topsApp unwrapped phase (rad) -> LOS displacement (m), positive towards the satellite."""
    if not (wavelength > 0 and math.isfinite(wavelength)):
        raise ProductError(f"wavelength {wavelength!r} is not a positive number of metres")
    values = np.asarray(phase, dtype=np.float32)
    return (values * np.float32(-wavelength / (4.0 * math.pi))).astype(np.float32, copy=False)


def los_displacement_to_phase(displacement: npt.ArrayLike, wavelength: float) -> FloatArray:
    """Inverse of :func:`phase_to_los_displacement` (what topsApp would write for a motion)."""
    values = np.asarray(displacement, dtype=np.float64)
    return (-4.0 * math.pi / wavelength) * values


def filtered_unwrapped_phase_window(bands: np.ndarray, row0: int, ctx: ExportContext
                                    ) -> dict[str, np.ndarray]:  # fmt: skip
    amplitude, phase = bands[0], bands[1]
    valid = valid_unwrapped(amplitude, phase)
    if ctx.unw_valid is not None:
        ctx.unw_valid.write(row0, valid)
    return {"filtered_unwrapped_phase": with_nodata(phase, valid)}


def reference_tags(ctx: ExportContext) -> dict[str, str]:
    """Choose the reference point (the block statistics are complete now); the tags saying so."""
    phase = ctx.products[UNWRAPPED_PHASE_SPEC.key]

    def read_phase(row0: int, rows: int) -> FloatArray:
        with phase.rows() as reader:
            return reader.read_rows(row0, rows)[0]

    ref = ctx.reference = find_reference(ctx.reference_request, ctx.grid, read_phase,
                                         ctx.block_stats(), ctx.coherence_threshold)  # fmt: skip
    return {
        "REFERENCE_METHOD": ref.method,
        "REFERENCE_DETAIL": ref.detail,
        "REFERENCE_LAT": "" if ref.lat is None else f"{ref.lat:.6f}",
        "REFERENCE_LON": "" if ref.lon is None else f"{ref.lon:.6f}",
        "REFERENCE_PHASE_RAD": f"{ref.phase_rad:.6g}",
    }


def los_displacement_window(bands: np.ndarray, row0: int, ctx: ExportContext) -> dict[str, np.ndarray]:
    """From the unwrapped phase product (NaN where there is none)."""
    phase = bands[0]
    if ctx.reference.phase_rad:
        phase = phase - np.float32(ctx.reference.phase_rad)
    displacement = phase_to_los_displacement(phase, ctx.wavelength)
    ctx.running_stats("los_displacement").add(displacement)
    return {"los_displacement": displacement}
