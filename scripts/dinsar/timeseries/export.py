"""MintPy's outputs (HDF5, read with h5py) to our products: float32 EPSG:4326 COGs with NaN
no-data, the displacement history at two points, and a JSON summary.

What is read (MintPy 1.6.4, ``smallbaselineApp.py`` with the template of ``template.py``):

* ``velocity.h5``: ``velocity`` (m/year) and the grid and reference attributes. MintPy's
  displacement is the range change turned positive towards the satellite (``-phase * lambda /
  (4 pi)``), ours too: no sign change (proved in tests/test_timeseries.py).
* the final time series: ``timeseries.h5`` with a suffix per correction applied
  (``_SET``, ``_ion``, ``_ERA5``/``_tropHgt``/``_GACOS``/``_OPERA``, ``_ramp``, ``_demErr``, in that
  order), so the longest such name in a fresh work folder is the one the velocity was fitted to.
  Dataset ``timeseries`` (m, per date), ``date``.
* ``temporalCoherence.h5`` (``temporalCoherence``), ``maskTempCoh.h5`` (``mask``: temporal
  coherence >= ``mintpy.networkInversion.minTempCoh``).
* ``inputs/ifgramStack.h5``: ``date`` (pairs) and ``dropIfgram`` (False: left out by the
  network modification).

Georeferencing: for geocoded (hyp3) inputs MintPy's ``X_FIRST``/``Y_FIRST`` are GDAL's
geotransform origin, the outer corner of the first pixel, and ``X_STEP``/``Y_STEP`` its steps,
so the COGs take ``(X_FIRST, X_STEP, 0, Y_FIRST, 0, Y_STEP)`` as they are.
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
import logging
import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_json, write_text
from ..grid import Grid
from ..products.cog import CogWriter, gdal_env
from ..products.spec import ProductSpec
from .reference import stable_pixel
from .run import INSTALL_HINT, TimeseriesError

log = logging.getLogger(__name__)

VELOCITY = "velocity.tif"
TEMPORAL_COHERENCE = "temporal_coherence.tif"
HISTORY = "history.csv"
SUMMARY = "timeseries.json"

VELOCITY_SPEC = ProductSpec(
    key="velocity", filename=VELOCITY, dtype="float32", units="m/year", resampling="AVERAGE",
    description="LOS velocity, m/year, positive towards the satellite, relative to the reference "
    "point; NaN where the temporal coherence is below the threshold",
)  # fmt: skip
DISPLACEMENT_SPEC = ProductSpec(
    key="displacement", filename="displacement_{date}.tif", dtype="float32", units="m",
    resampling="AVERAGE",
    description="LOS displacement since {first}, m, positive towards the satellite, relative to "
    "the reference point; NaN where the temporal coherence is below the threshold",
)  # fmt: skip
TEMPORAL_COHERENCE_SPEC = ProductSpec(
    key="temporal_coherence", filename=TEMPORAL_COHERENCE, dtype="float32", units="1",
    resampling="AVERAGE",
    description="temporal coherence of the network inversion (0 to 1; 1: the pairs agree)",
)  # fmt: skip

# the final time series: timeseries.h5 and the suffixes of MintPy's corrections
TIMESERIES_NAME = re.compile(r"timeseries(_(SET|ion|ERA5|MERRA|NARR|tropHgt|GACOS|OPERA|ramp|demErr))*\.h5")


@dataclass
class TimeseriesResult:
    track: str
    dates: list[str]
    pairs_used: list[str]
    pairs_dropped: list[str]
    reference_lat: float
    reference_lon: float
    fastest_lat: float | None
    fastest_lon: float | None
    fastest_velocity_m_per_year: float | None
    velocity_stats: dict[str, float | int]
    mintpy_version: str
    timeseries_file: str
    files: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = {key: path.name for key, path in self.files.items()}
        return data


def final_timeseries_file(mintpy_dir: Path) -> Path:
    """The time series the velocity was fitted to (the most corrected one)."""
    found = [p for p in Path(mintpy_dir).glob("timeseries*.h5") if TIMESERIES_NAME.fullmatch(p.name)]
    if not found:
        raise TimeseriesError(f"{mintpy_dir} holds no timeseries*.h5: MintPy did not finish; "
                              "see its log (mintpy.log) and run again")  # fmt: skip
    return max(found, key=lambda p: (p.name.count("_"), p.stat().st_mtime))


def grid_of(attrs: Any) -> Grid:
    """The grid of a MintPy file's attributes (geocoded files only)."""
    try:
        transform = (float(attrs["X_FIRST"]), float(attrs["X_STEP"]), 0.0,
                     float(attrs["Y_FIRST"]), 0.0, float(attrs["Y_STEP"]))  # fmt: skip
        return Grid.from_transform(transform, int(attrs["WIDTH"]), int(attrs["LENGTH"]))
    except KeyError as missing:
        raise TimeseriesError(f"MintPy's outputs have no {missing} attribute: they are not "
                              "geocoded; hand MintPy the geocoded hand-off files") from None  # fmt: skip


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise TimeseriesError(f"h5py (MintPy's file format) is not installed: {INSTALL_HINT}") from None
    return h5py


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read(path: Path, dataset: str) -> tuple[np.ndarray, dict[str, Any]]:
    h5py = _h5py()
    if not path.is_file():
        raise TimeseriesError(f"{path} is missing: MintPy did not finish; see its log and run again")
    with h5py.File(path, "r") as f:
        return f[dataset][()], {key: _text(value) for key, value in f.attrs.items()}


def _pairs(stack_file: Path) -> tuple[list[str], list[str]]:
    h5py = _h5py()
    with h5py.File(stack_file, "r") as f:
        pairs = ["_".join(_text(d) for d in row) for row in f["date"][()]]
        kept = f["dropIfgram"][()] if "dropIfgram" in f else np.ones(len(pairs), bool)
    return ([p for p, k in zip(pairs, kept, strict=True) if k],
            [p for p, k in zip(pairs, kept, strict=True) if not k])  # fmt: skip


def pixel_centre(grid: Grid, row: int, col: int) -> tuple[float, float]:
    """(lat, lon) of a pixel's centre."""
    return grid.first_lat + row * grid.delta_lat, grid.first_lon + col * grid.delta_lon


def fastest_pixel(velocity: np.ndarray, coherence: np.ndarray,
                  threshold: float) -> tuple[int, int] | None:  # fmt: skip
    """(row, col) of the largest |velocity| where the temporal coherence >= threshold."""
    candidates = np.isfinite(velocity) & (coherence >= threshold)
    if not candidates.any():
        return None
    speed = np.where(candidates, np.abs(velocity), -1.0)
    row, col = np.unravel_index(int(np.argmax(speed)), speed.shape)
    return int(row), int(col)


def velocity_stats(velocity: np.ndarray) -> dict[str, float | int]:
    values = velocity[np.isfinite(velocity)].astype(np.float64)
    if values.size == 0:
        return {"count": 0}
    p5, median, p95 = np.percentile(values, [5, 50, 95])
    return {"count": int(values.size), "mean": float(values.mean()), "std": float(values.std()),
            "min": float(values.min()), "p5": float(p5), "median": float(median),
            "p95": float(p95), "max": float(values.max())}  # fmt: skip


def _write_cog(path: Path, spec: ProductSpec, grid: Grid, values: np.ndarray,
               tags: dict[str, str]) -> Path:  # fmt: skip
    writer = CogWriter(path, spec, grid, tags)
    try:
        writer.write(0, values.astype(np.float32))
        return writer.finish()
    except BaseException:
        writer.discard()
        raise


def export_timeseries(mintpy_dir: Path, out_dir: Path, *, track: str,
                      coherence_threshold: float = 0.7,
                      stable_reference: bool = False) -> TimeseriesResult:  # fmt: skip
    """Write velocity.tif, displacement_<date>.tif, temporal_coherence.tif, history.csv and
    timeseries.json in ``out_dir`` from MintPy's outputs in ``mintpy_dir``.

    ``coherence_threshold``: the temporal coherence a pixel needs to be the "fastest point" (or
    the stable reference). ``stable_reference`` (``reference_point: auto``): every product is
    moved from MintPy's reference pixel to the most stable one (dinsar.timeseries.reference).
    """
    h5py = _h5py()
    mintpy_dir, out_dir = Path(mintpy_dir), Path(out_dir)
    velocity, v_attrs = _read(mintpy_dir / "velocity.h5", "velocity")
    coherence, _ = _read(mintpy_dir / "temporalCoherence.h5", "temporalCoherence")
    mask, _ = _read(mintpy_dir / "maskTempCoh.h5", "mask")
    ts_file = final_timeseries_file(mintpy_dir)
    with h5py.File(ts_file, "r") as f:
        dates = [_text(d) for d in f["date"][()]]
        series_shape = f["timeseries"].shape
    grid = grid_of(v_attrs)
    if velocity.shape != (grid.length, grid.width) or series_shape[1:] != velocity.shape:
        raise TimeseriesError(f"MintPy's outputs in {mintpy_dir} disagree in size; run it again "
                              "in an empty work folder")  # fmt: skip
    pairs_used, pairs_dropped = _pairs(mintpy_dir / "inputs" / "ifgramStack.h5")

    ref = int(v_attrs["REF_Y"]), int(v_attrs["REF_X"])
    ref_lat, ref_lon = pixel_centre(grid, *ref)
    reliable = mask.astype(bool) & np.isfinite(velocity)
    velocity_out = np.where(reliable, velocity, np.nan).astype(np.float32)
    coherence_out = np.where(np.isfinite(coherence), coherence, np.nan).astype(np.float32)
    reference_method = "given" if not stable_reference else "stable"
    if stable_reference:
        with h5py.File(ts_file, "r") as f:
            first = f["timeseries"][0].astype(np.float64)
            ref = stable_pixel(lambda i: f["timeseries"][i].astype(np.float64) - first,
                               len(dates), reliable & (coherence >= coherence_threshold))  # fmt: skip
        velocity_out = (velocity_out - velocity_out[ref]).astype(np.float32)
        ref_lat, ref_lon = pixel_centre(grid, *ref)
    fastest = fastest_pixel(velocity_out, coherence, coherence_threshold)
    fast_lat = fast_lon = fast_v = None
    if fastest is not None:
        fast_lat, fast_lon = pixel_centre(grid, *fastest)
        fast_v = float(velocity_out[fastest])
    else:
        log.warning("no pixel of %s has a temporal coherence >= %s: no fastest point", track,
                    coherence_threshold)  # fmt: skip

    tags = {"TRACK": track, "REFERENCE_LAT": repr(ref_lat), "REFERENCE_LON": repr(ref_lon),
            "FIRST_DATE": dates[0], "LAST_DATE": dates[-1], "SOURCE": "MintPy smallbaselineApp"}  # fmt: skip
    files: dict[str, Path] = {}
    history: list[tuple[str, float, float | None]] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    with gdal_env(), h5py.File(ts_file, "r") as f:
        files["velocity"] = _write_cog(out_dir / VELOCITY, VELOCITY_SPEC, grid, velocity_out,
                                       {**tags, "MINTPY_FILE": "velocity.h5"})  # fmt: skip
        files["temporal_coherence"] = _write_cog(
            out_dir / TEMPORAL_COHERENCE, TEMPORAL_COHERENCE_SPEC, grid, coherence_out,
            {**tags, "MINTPY_FILE": "temporalCoherence.h5"})  # fmt: skip
        # one date in memory at a time: a track's stack may not fit
        first = f["timeseries"][0].astype(np.float64)
        for index, date in enumerate(dates):
            # relative to the first date and the reference pixel (MintPy's are: made sure)
            values = f["timeseries"][index].astype(np.float64) - first
            values -= values[ref]
            history.append((date, float(values[ref]),
                            None if fastest is None else float(values[fastest])))  # fmt: skip
            spec = replace(DISPLACEMENT_SPEC.filled(date=date, first=dates[0]),
                           filename=DISPLACEMENT_SPEC.filename.format(date=date))
            files[f"displacement_{date}"] = _write_cog(
                out_dir / spec.filename, spec, grid, np.where(reliable, values, np.nan),
                {**tags, "DATE": date, "MINTPY_FILE": ts_file.name})  # fmt: skip

    # per-date maps of an earlier run whose dates this stack no longer has would be taken for
    # this one's
    for stale in sorted(out_dir.glob("displacement_*.tif")):
        if stale.name not in {path.name for path in files.values()}:
            log.info("removing %s: not a date of this time series", stale.name)
            stale.unlink()

    text = io.StringIO()
    table = csv.writer(text, lineterminator="\n")
    table.writerow(["date", "reference_point_m", "fastest_point_m"])
    for date, at_reference, at_fastest in history:
        table.writerow([date, f"{at_reference:.6f}", "" if at_fastest is None else f"{at_fastest:.6f}"])
    files["history"] = write_text(out_dir / HISTORY, text.getvalue())

    try:
        version = importlib.metadata.version("mintpy")  # package metadata: MintPy not imported
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    result = TimeseriesResult(
        track=track, dates=dates, pairs_used=pairs_used, pairs_dropped=pairs_dropped,
        reference_lat=ref_lat, reference_lon=ref_lon, fastest_lat=fast_lat, fastest_lon=fast_lon,
        fastest_velocity_m_per_year=fast_v, velocity_stats=velocity_stats(velocity_out),
        mintpy_version=version, timeseries_file=ts_file.name, files=files,
    )  # fmt: skip
    files["summary"] = out_dir / SUMMARY
    summary = result.summary()
    summary.update(units={"velocity": "m/year", "displacement": "m"},
                   sign="positive towards the satellite",
                   coherence_threshold=coherence_threshold,
                   reference_method={"given": "MintPy's reference pixel (timeseries.reference_point)",
                                     "stable": "the most stable reliable pixel (reference_point: auto)"}[reference_method])  # fmt: skip
    write_json(out_dir / SUMMARY, _finite(summary), indent=2)
    log.info("time series of %s: %d dates, %d pairs (%d dropped), fastest %s m/year", track,
             len(dates), len(pairs_used), len(pairs_dropped),
             "none" if fast_v is None else f"{fast_v:+.4f}")  # fmt: skip
    return result


def _finite(value: Any) -> Any:
    """JSON without NaN (null instead)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
