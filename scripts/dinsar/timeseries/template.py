"""The MintPy template of a track's time series (``smallbaselineApp.py <template>``).

Keys and allowed values are MintPy 1.6.4's (its ``defaults/smallbaselineApp.cfg``). Every step
that would fetch data over the network is off: the weather-model (ERA5/MERRA/NARR via PyAPS)
tropospheric correction above all; GACOS and OPERA only read local files, split-spectrum
ionosphere needs inputs we do not hand off, solid Earth tides are computed locally (pySolid) but
stay off by default as a small effect on a few dates. The user's ``mintpy_options`` come last:
MintPy takes the last value of a repeated key, so theirs win.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Timeseries
from ..products.mintpy_handoff import CONNCOMP, CORR, DEM, LV_PHI, LV_THETA, UNW_PHASE

# MintPy's file pattern keys -> our hand-off suffixes (one sub-folder per pair)
LOAD_FILES = {
    "unwFile": UNW_PHASE,
    "corFile": CORR,
    "connCompFile": CONNCOMP,
    "demFile": DEM,
    "incAngleFile": LV_THETA,
    "azAngleFile": LV_PHI,
}
MAX_MEMORY_GB = 2  # MintPy's per-process block budget; its default (4) overcommits shared nodes


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _line(key: str, value: object) -> str:
    return f"{key:<40} = {_value(value)}\n"


def mintpy_template(settings: Timeseries, inputs_dir: Path,
                    reference_yx: tuple[int, int] | None = None) -> str:  # fmt: skip
    """The template text: load the hand-offs under ``inputs_dir/<pair>/``, invert, no network.

    ``reference_yx`` (row, col): MintPy's reference pixel for ``reference_point: auto``
    (dinsar.timeseries.reference.most_coherent_pixel); None leaves MintPy's own, random, choice.
    """
    inputs = Path(inputs_dir)
    parts = [
        "# MintPy smallbaselineApp template written by dInSAR-Toolkit (dinsar.timeseries).\n",
        "# Edit config.yaml's timeseries section instead: this file is rewritten on every run.\n",
        "\n## compute: one process, bounded memory (the workflow runs other jobs beside it)\n",
        _line("mintpy.compute.cluster", "no"),
        _line("mintpy.compute.maxMemory", MAX_MEMORY_GB),
        "\n## load: the HyP3-form hand-off written beside each pair's products\n",
        _line("mintpy.load.processor", "hyp3"),
        _line("mintpy.load.autoPath", "no"),
        _line("mintpy.load.updateMode", "no"),
    ]
    parts += [_line(f"mintpy.load.{key}", inputs / "*" / f"*_{suffix}.tif")
              for key, suffix in LOAD_FILES.items()]  # fmt: skip
    parts += ["\n## network: pairs whose mean coherence is below the threshold are left out\n",
              _line("mintpy.network.coherenceBased", True),
              _line("mintpy.network.minCoherence", settings.min_coherence),
              _line("mintpy.network.keepMinSpanTree", True)]  # fmt: skip
    parts.append("\n## reference point: every date's displacement is 0 there\n")
    if settings.reference_point == "auto":
        # MintPy's auto is a random coherent pixel: a fixed one keeps runs reproducible (the
        # export then moves the reference to the most stable pixel)
        yx = "auto" if reference_yx is None else f"{reference_yx[0]},{reference_yx[1]}"
        parts += [_line("mintpy.reference.yx", yx), _line("mintpy.reference.lalo", "auto")]
    else:
        lat, lon = settings.reference_point
        parts += [_line("mintpy.reference.yx", "auto"),
                  _line("mintpy.reference.lalo", f"{lat!r},{lon!r}")]  # fmt: skip
    parts += [
        "\n## inversion\n",
        _line("mintpy.unwrapError.method", "no"),
        _line("mintpy.networkInversion.minTempCoh", settings.min_temporal_coherence),
        "\n## corrections: everything that downloads is off\n",
        "# The weather-model tropospheric correction downloads ERA5 (a CDS account in ~/.cdsapirc,\n",
        "# PyAPS installed). To turn it on, in config.yaml's timeseries section:\n",
        "#   mintpy_options: {mintpy.troposphericDelay.method: pyaps,\n",
        "#                    mintpy.troposphericDelay.weatherModel: ERA5}\n",
        "# (height_correlation is a network-free alternative for areas of strong relief)\n",
        _line("mintpy.troposphericDelay.method", "no"),
        _line("mintpy.ionosphericDelay.method", "no"),
        _line("mintpy.solidEarthTides", "no"),
        _line("mintpy.deramp", "no"),
        _line("mintpy.topographicResidual", settings.topographic_residual),
        "\n## outputs: the inputs are geocoded already; our own COGs and plots replace MintPy's\n",
        _line("mintpy.geocode", "no"),
        _line("mintpy.save.kmz", "no"),
        _line("mintpy.save.hdfEos5", "no"),
        _line("mintpy.plot", "no"),
    ]
    if settings.mintpy_options:
        parts.append("\n## the user's options (config.yaml: timeseries.mintpy_options), last: they win\n")
        parts += [_line(key, value) for key, value in settings.mintpy_options.items()]
    return "".join(parts)
