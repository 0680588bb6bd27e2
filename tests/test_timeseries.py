"""The time series (dinsar.timeseries): the MintPy template, the input links, and MintPy's own
smallbaselineApp.py run on a synthetic S1C/S1D stack with a known velocity field, exported to our
COGs, history.csv, timeseries.json and figures.

The MintPy runs are marked ``slow`` and skipped without MintPy (``pip install -e
'.[timeseries]'``) and GDAL's bindings. MintPy (GPL-3.0) runs as a program: nothing here imports
it. No network.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import isce_synthetic as synthetic  # noqa: E402
import rasterio  # noqa: E402
from handoff_stack import DATES, PAIRS, S1_WAVELENGTH, TRACK, build_stack, days_between  # noqa: E402

from dinsar.config import Timeseries  # noqa: E402
from dinsar.errors import DinsarError  # noqa: E402
from dinsar.timeseries import (  # noqa: E402
    TimeseriesError,
    export_timeseries,
    link_inputs,
    mintpy_template,
    run_smallbaseline,
    run_timeseries,
)
from dinsar.timeseries.export import fastest_pixel, final_timeseries_file  # noqa: E402
from dinsar.timeseries.run import failure_summary, mintpy_program  # noqa: E402


def template_values(text: str) -> dict[str, str]:
    """As MintPy reads a template: key = value, comments out, the last value of a key wins."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            values[key] = value
    return values


# ------------------------------------------------------------------------------------------------
# The template (pure)
# ------------------------------------------------------------------------------------------------


def test_template_loads_the_hand_offs_of_every_pair(tmp_path: Path) -> None:
    values = template_values(mintpy_template(Timeseries(), tmp_path / "pairs"))
    assert values["mintpy.load.processor"] == "hyp3"
    for key, suffix in (("unwFile", "unw_phase"), ("corFile", "corr"),
                        ("connCompFile", "conncomp"), ("demFile", "dem"),
                        ("incAngleFile", "lv_theta"), ("azAngleFile", "lv_phi")):  # fmt: skip
        assert values[f"mintpy.load.{key}"] == f"{tmp_path}/pairs/*/*_{suffix}.tif"
    assert values["mintpy.network.coherenceBased"] == "yes"
    assert values["mintpy.network.minCoherence"] == "0.7"
    assert values["mintpy.networkInversion.minTempCoh"] == "0.7"
    assert values["mintpy.compute.cluster"] == "no"
    assert 0 < float(values["mintpy.compute.maxMemory"]) <= 4
    assert values["mintpy.plot"] == "no" and values["mintpy.save.hdfEos5"] == "no"


def test_template_turns_off_what_needs_the_network(tmp_path: Path) -> None:
    text = mintpy_template(Timeseries(), tmp_path)
    values = template_values(text)
    assert values["mintpy.troposphericDelay.method"] == "no"
    assert values["mintpy.ionosphericDelay.method"] == "no"
    assert values["mintpy.solidEarthTides"] == "no"
    assert values["mintpy.topographicResidual"] == "no"
    # the comments say how to turn the weather model on
    assert "mintpy.troposphericDelay.method: pyaps" in text and "cdsapirc" in text


def test_template_reference_point(tmp_path: Path) -> None:
    auto = template_values(mintpy_template(Timeseries(), tmp_path))
    assert auto["mintpy.reference.lalo"] == "auto" and auto["mintpy.reference.yx"] == "auto"
    given = template_values(mintpy_template(Timeseries(reference_point=[46.41, 11.53]), tmp_path))
    assert given["mintpy.reference.lalo"] == "46.41,11.53"
    dem_error = template_values(mintpy_template(Timeseries(topographic_residual=True,
                                                           min_coherence=0.55), tmp_path))  # fmt: skip
    assert dem_error["mintpy.topographicResidual"] == "yes"
    assert dem_error["mintpy.network.minCoherence"] == "0.55"


def test_user_options_come_last_and_win(tmp_path: Path) -> None:
    settings = Timeseries(mintpy_options={"mintpy.troposphericDelay.method": "height_correlation",
                                          "mintpy.deramp": "linear",
                                          "mintpy.topographicResidual": True})  # fmt: skip
    text = mintpy_template(settings, tmp_path)
    keys = [line.split("=")[0].strip() for line in text.splitlines()
            if "=" in line and not line.startswith("#")]  # fmt: skip
    assert keys[-3:] == ["mintpy.troposphericDelay.method", "mintpy.deramp",
                         "mintpy.topographicResidual"]  # fmt: skip
    values = template_values(text)
    assert values["mintpy.troposphericDelay.method"] == "height_correlation"
    assert values["mintpy.deramp"] == "linear" and values["mintpy.topographicResidual"] == "yes"


# ------------------------------------------------------------------------------------------------
# Links, program, outputs (pure or on files)
# ------------------------------------------------------------------------------------------------


def test_input_links_are_relative_and_stale_ones_go(tmp_path: Path) -> None:
    products = tmp_path / "ws" / "products"
    for pair in ("a_b", "b_c", "c_d"):
        (products / pair).mkdir(parents=True)
        (products / pair / "x.txt").write_text(pair)
    inputs = tmp_path / "ws" / "ts" / "pairs"
    link_inputs({p: products / p for p in ("a_b", "b_c", "c_d")}, inputs)
    link_inputs({p: products / p for p in ("a_b", "c_d")}, inputs)  # b_c left the network
    assert sorted(p.name for p in inputs.iterdir()) == ["a_b", "c_d"]
    assert all(not os.readlink(p).startswith("/") for p in inputs.iterdir())
    shutil.move(tmp_path / "ws", tmp_path / "moved")  # a moved workspace still reads
    assert (tmp_path / "moved" / "ts" / "pairs" / "c_d" / "x.txt").read_text() == "c_d"
    with pytest.raises(TimeseriesError, match="export the pair"):
        link_inputs({"d_e": tmp_path / "nowhere"}, inputs)
    # MintPy would take every file below such a folder for an interferogram
    with pytest.raises(TimeseriesError, match="workspace path without it"):
        link_inputs({"a_b": products / "a_b"}, tmp_path / "corrections" / "pairs")


def test_a_reference_point_off_the_grid_is_refused_before_mintpy(tmp_path: Path) -> None:
    from affine import Affine

    folder = tmp_path / "products" / "20250601_20250607"
    folder.mkdir(parents=True)
    with rasterio.open(folder / "S1_000000_IW1_20250601_20250607_VV_INT93_0A1B_unw_phase.tif", "w",
                       driver="GTiff", width=12, height=10, count=1, dtype="float32",
                       crs="EPSG:4326", transform=Affine(0.01, 0, 11.5, 0, -0.01, 46.45)) as ds:  # fmt: skip
        ds.write(np.zeros((1, 10, 12), np.float32))
    handoffs = {"20250601_20250607": folder, "20250607_20250613": folder}
    with pytest.raises(TimeseriesError, match=r"outside pair 20250601_20250607's grid") as error:
        run_timeseries(handoffs, tmp_path / "out", tmp_path / "work",
                       Timeseries(reference_point=[46.2, 11.55]), TRACK, 0.7)  # fmt: skip
    assert "reference_point: auto" in str(error.value)
    assert not (tmp_path / "work" / "mintpy.log").exists()


def test_a_missing_mintpy_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(TimeseriesError, match=r"pip install -e '\.\[timeseries\]'") as error:
        mintpy_program()
    assert "\n" not in str(error.value) and isinstance(error.value, DinsarError)


def fake_mintpy(folder: Path, body: str) -> Path:
    """A stand-in smallbaselineApp.py beside a stand-in python (where the venv's would be)."""
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / "smallbaselineApp.py"
    program.write_text(f"#!{sys.executable}\nimport os, sys\n{body}\n")
    program.chmod(0o755)
    return folder / "python"


def test_the_run_streams_to_the_log_with_bounded_threads(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    body = 'print("steps", sys.argv[-2:], "threads", os.environ["OMP_NUM_THREADS"])'
    monkeypatch.setattr(sys, "executable", str(fake_mintpy(tmp_path / "bin", body)))
    monkeypatch.setenv("OMP_NUM_THREADS", "64")
    template = tmp_path / "t.txt"
    template.write_text("mintpy.load.processor = hyp3\n")
    run_smallbaseline(template, tmp_path / "mintpy", tmp_path / "mintpy.log", threads=3)
    text = (tmp_path / "mintpy.log").read_text()
    assert "steps ['--end', 'reference_point'] threads 3" in text
    assert "steps ['--start', 'correct_unwrap_error'] threads 3" in text  # quick_overview skipped
    assert f"--work-dir {tmp_path / 'mintpy'}" in text


def test_a_failing_run_names_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = 'print("reading the stack")\nsys.exit("no interferogram found")'
    monkeypatch.setattr(sys, "executable", str(fake_mintpy(tmp_path / "bin", body)))
    with pytest.raises(TimeseriesError) as error:
        run_smallbaseline(tmp_path / "t.txt", tmp_path / "mintpy", tmp_path / "mintpy.log")
    assert str(error.value) == (
        "MintPy's smallbaselineApp.py failed (exit 1): reading the stack | no interferogram "
        f"found; whole output in {tmp_path / 'mintpy.log'}"
    )


def test_a_failure_is_summed_up_in_one_line() -> None:
    output = ["load data", "-" * 50, 'prep_hyp3.py "inputs/*/*_unw_phase.tif"', "",
              "Traceback (most recent call last):",
              '  File "/venv/bin/smallbaselineApp.py", line 6, in <module>', "    sys.exit(main())",
              '  File "/venv/mintpy/prep_hyp3.py", line 72, in add_hyp3_metadata',
              "    key, value = line.split(':')[:2]", "    ^^^^^^^^^^",
              "ValueError: not enough values to unpack (expected 2, got 1)"]  # fmt: skip
    assert failure_summary(output) == (
        "ValueError: not enough values to unpack (expected 2, got 1) in prep_hyp3.py line 72 "
        '(add_hyp3_metadata) after: prep_hyp3.py "inputs/*/*_unw_phase.tif"'
    )
    assert failure_summary(["a", "", "b", "=" * 20, "c"]) == "a | b | c"
    assert failure_summary([]) == "no output"


def test_the_final_time_series_is_the_most_corrected(tmp_path: Path) -> None:
    for name in ("timeseries.h5", "timeseries_SET.h5", "timeseries_SET_ERA5_demErr.h5",
                 "timeseriesResidual.h5", "timeseriesResidual_ramp.h5"):  # fmt: skip
        (tmp_path / name).write_bytes(b"")
    assert final_timeseries_file(tmp_path).name == "timeseries_SET_ERA5_demErr.h5"
    with pytest.raises(TimeseriesError, match="did not finish"):
        final_timeseries_file(tmp_path / "empty")


def test_the_fastest_point_needs_coherence() -> None:
    velocity = np.array([[0.1, -0.5], [0.3, np.nan]])
    coherence = np.array([[0.9, 0.5], [0.95, 1.0]])
    assert fastest_pixel(velocity, coherence, 0.7) == (1, 0)
    assert fastest_pixel(velocity, coherence, 0.4) == (0, 1)  # negative: the largest |v|
    assert fastest_pixel(velocity, coherence, 0.99) is None


def write_mintpy_like(folder: Path, *, ref: tuple[int, int], offset: float) -> dict:
    """MintPy's output files as smallbaselineApp.py lays them out (written with h5py), with a
    time series that is NOT yet relative to the first date nor the reference pixel (``offset``
    added to every date), to prove the export makes it so."""
    h5py = pytest.importorskip("h5py")
    length, width = 6, 8
    attrs = {"X_FIRST": "11.5", "Y_FIRST": "46.45", "X_STEP": repr(1 / 1200),
             "Y_STEP": repr(-1 / 1200), "WIDTH": str(width), "LENGTH": str(length),
             "REF_Y": str(ref[0]), "REF_X": str(ref[1])}  # fmt: skip
    rows, cols = np.mgrid[0:length, 0:width]
    velocity = (0.01 * cols - 0.02 * rows).astype(np.float32)
    velocity -= velocity[ref]
    coherence = np.full((length, width), 0.95, np.float32)
    coherence[0, 7] = 0.2  # the fastest |v| (row 0, col 7) is not coherent
    years = np.array([0.0, 6.0, 12.0]) / 365.25
    series = np.stack([velocity * t + offset + 0.001 * cols for t in years]).astype(np.float32)
    folder.mkdir(parents=True)
    with h5py.File(folder / "velocity.h5", "w") as f:
        f["velocity"] = velocity
        f.attrs.update(attrs)
    with h5py.File(folder / "temporalCoherence.h5", "w") as f:
        f["temporalCoherence"] = coherence
    with h5py.File(folder / "maskTempCoh.h5", "w") as f:
        f["mask"] = coherence >= 0.7
    for name in ("timeseries.h5", "timeseries_demErr.h5"):  # the DEM error step's is the final
        with h5py.File(folder / name, "w") as f:
            f["timeseries"] = series if name != "timeseries.h5" else series * 0
            f["date"] = np.array([b"20250601", b"20250607", b"20250613"])
            f.attrs.update(attrs)
    (folder / "inputs").mkdir()
    with h5py.File(folder / "inputs" / "ifgramStack.h5", "w") as f:
        f["date"] = np.array([[b"20250601", b"20250607"], [b"20250601", b"20250613"],
                              [b"20250607", b"20250613"]])  # fmt: skip
        f["dropIfgram"] = np.array([True, False, True])
    return {"velocity": velocity, "coherence": coherence, "years": years}


def test_export_of_mintpy_files(tmp_path: Path) -> None:
    truth = write_mintpy_like(tmp_path / "mintpy", ref=(4, 1), offset=0.25)
    result = export_timeseries(tmp_path / "mintpy", tmp_path / "out", track=TRACK,
                               coherence_threshold=0.7)  # fmt: skip
    assert result.timeseries_file == "timeseries_demErr.h5"
    assert result.pairs_dropped == ["20250601_20250613"]
    assert result.pairs_used == ["20250601_20250607", "20250607_20250613"]
    assert (result.reference_lat, result.reference_lon) == pytest.approx(
        (46.45 - 4.5 / 1200, 11.5 + 1.5 / 1200), abs=1e-12)  # the pixel's centre
    # the largest |v| among coherent pixels: row 0, col 6 (row 0, col 7 is not coherent)
    assert (result.fastest_lat, result.fastest_lon) == pytest.approx(
        (46.45 - 0.5 / 1200, 11.5 + 6.5 / 1200), abs=1e-12)
    velocity, meta = read_tif(tmp_path / "out" / "velocity.tif")
    assert meta["transform"].to_gdal() == (11.5, 1 / 1200, 0.0, 46.45, 0.0, -1 / 1200)
    assert np.isnan(velocity[0, 7]) and velocity[0, 6] == truth["velocity"][0, 6]
    last, _ = read_tif(tmp_path / "out" / "displacement_20250613.tif")
    expected = truth["velocity"] * truth["years"][-1]  # first date and reference taken out
    np.testing.assert_allclose(last[1:], expected[1:], atol=1e-6)
    assert np.isnan(last[0, 7]) and last[0, 6] == pytest.approx(expected[0, 6], abs=1e-6)
    assert last[4, 1] == 0.0
    first, _ = read_tif(tmp_path / "out" / "displacement_20250601.tif")
    assert np.nanmax(np.abs(first)) == 0.0
    summary = json.loads((tmp_path / "out" / "timeseries.json").read_text())
    assert summary["velocity_stats"]["count"] == 6 * 8 - 1
    assert summary["sign"] == "positive towards the satellite"
    with open(tmp_path / "out" / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[-1]["fastest_point_m"]) == pytest.approx(expected[0, 6], abs=1e-6)
    assert not list((tmp_path / "out").glob("*.tmp*"))


# ------------------------------------------------------------------------------------------------
# MintPy's smallbaselineApp.py on a synthetic stack with a known velocity
# ------------------------------------------------------------------------------------------------

def _has_mintpy() -> bool:
    try:
        mintpy_program()
    except TimeseriesError:
        return False
    return importlib.util.find_spec("osgeo") is not None and importlib.util.find_spec("h5py") is not None


needs_mintpy = pytest.mark.skipif(
    not _has_mintpy(),
    reason="needs MintPy (pip install -e '.[timeseries]') and GDAL's bindings (make .venv/.gdal)",
)

WIDTH, LENGTH = 120, 100  # ~7.7 km x 9.3 km at 1/1200 degree
BUMP_RC, BUMP_SIGMA_PX, BUMP_PEAK = (45, 40), 6.0, 0.30  # m/year, towards the satellite
REFERENCE_RC = (85, 100)  # far field, coherent, in the main component
DROPPED = ("20250601", "20250613")  # its coherence is scaled down below the threshold
MIN_COHERENCE = 0.5


def true_velocity(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    r2 = (rows - BUMP_RC[0]) ** 2 + (cols - BUMP_RC[1]) ** 2
    return BUMP_PEAK * np.exp(-r2 / (2 * BUMP_SIGMA_PX**2))


def pixel_lat_lon(row: int, col: int) -> tuple[float, float]:
    return (synthetic.LAT0 + (row + 0.5) * synthetic.DLAT,
            synthetic.LON0 + (col + 0.5) * synthetic.DLON)  # fmt: skip


@pytest.fixture(scope="module")
def velocity_stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_stack(tmp_path_factory.mktemp("ts"), width=WIDTH, length=LENGTH,
                       wavelength=S1_WAVELENGTH, velocity=true_velocity,
                       coherence_factor={DROPPED: 0.2})  # fmt: skip


@pytest.fixture(scope="module")
def series(velocity_stack: Path) -> dict:
    handoffs = {f"{r}_{s}": velocity_stack / "products" / f"{r}_{s}" for r, s in PAIRS}
    settings = Timeseries(reference_point=list(pixel_lat_lon(*REFERENCE_RC)),
                          min_coherence=MIN_COHERENCE)  # fmt: skip
    out = velocity_stack / "timeseries" / TRACK
    started = time.perf_counter()
    result = run_timeseries(handoffs, out, velocity_stack / "work_ts" / TRACK, settings, TRACK,
                            coherence_threshold=0.7)  # fmt: skip
    seconds = time.perf_counter() - started
    logging.getLogger(__name__).warning("run_timeseries (MintPy and export): %.1f s", seconds)
    return {"result": result, "out": out, "seconds": seconds, "stack": velocity_stack}


def read_tif(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as ds:
        return ds.read(1), {"transform": ds.transform, "crs": ds.crs, "shape": ds.shape,
                            "dtype": ds.dtypes[0], "nodata": ds.nodata}  # fmt: skip


@pytest.mark.slow
@needs_mintpy
def test_velocity_is_the_true_one_towards_the_satellite(series: dict) -> None:
    velocity, meta = read_tif(series["out"] / "velocity.tif")
    rows, cols = np.mgrid[0:LENGTH, 0:WIDTH]
    truth = true_velocity(rows, cols)
    bump = (truth > 0.1 * BUMP_PEAK) & np.isfinite(velocity)
    assert bump.sum() > 50
    # least squares through the origin: positive towards the satellite, as ours
    slope = float((velocity[bump] * truth[bump]).sum() / (truth[bump] ** 2).sum())
    assert slope == pytest.approx(1.0, abs=0.05)
    far = (truth < 1e-4 * BUMP_PEAK) & np.isfinite(velocity)
    assert far.sum() > 1000
    assert np.abs(velocity[far]).max() < 0.003  # m/year
    assert meta["dtype"] == "float32" and math.isnan(meta["nodata"])


@pytest.mark.slow
@needs_mintpy
def test_outputs_are_on_the_input_grid_exactly(series: dict) -> None:
    first = series["stack"] / "products" / "_".join(PAIRS[0])
    (unw,) = first.glob("S1_*_unw_phase.tif")
    with rasterio.open(unw) as ds:
        transform, crs, shape = ds.transform, ds.crs, ds.shape
    for name in ["velocity.tif", "temporal_coherence.tif", *(f"displacement_{d}.tif" for d in DATES)]:
        _, meta = read_tif(series["out"] / name)
        assert meta["transform"] == transform, name  # bit for bit: no half-pixel shift
        assert meta["crs"] == crs and meta["crs"].to_epsg() == 4326
        assert meta["shape"] == shape


@pytest.mark.slow
@needs_mintpy
def test_per_date_displacement_at_the_bump(series: dict) -> None:
    row, col = BUMP_RC
    for date in DATES:
        values, _ = read_tif(series["out"] / f"displacement_{date}.tif")
        expected = BUMP_PEAK * days_between(DATES[0], date) / 365.25
        assert values[row, col] == pytest.approx(expected, abs=0.05 * BUMP_PEAK * 18 / 365.25)
        assert values[REFERENCE_RC] == 0.0
    assert not list(series["out"].glob("*.tmp"))


@pytest.mark.slow
@needs_mintpy
def test_history_and_summary_name_the_points_and_the_network(series: dict) -> None:
    summary = json.loads((series["out"] / "timeseries.json").read_text())
    assert summary["track"] == TRACK and summary["dates"] == list(DATES)
    assert summary["pairs_dropped"] == ["_".join(DROPPED)]
    assert sorted(summary["pairs_used"]) == sorted("_".join(p) for p in PAIRS if p != DROPPED)
    ref_lat, ref_lon = pixel_lat_lon(*REFERENCE_RC)
    assert summary["reference_lat"] == pytest.approx(ref_lat, abs=1e-9)
    assert summary["reference_lon"] == pytest.approx(ref_lon, abs=1e-9)
    bump_lat, bump_lon = pixel_lat_lon(*BUMP_RC)
    assert abs(summary["fastest_lat"] - bump_lat) <= 1.01 * abs(synthetic.DLAT)
    assert abs(summary["fastest_lon"] - bump_lon) <= 1.01 * synthetic.DLON
    assert summary["fastest_velocity_m_per_year"] == pytest.approx(BUMP_PEAK, rel=0.05)
    assert summary["mintpy_version"] == "1.6.4"
    assert summary["files"]["velocity_png"] == "velocity.png"
    assert summary["velocity_stats"]["max"] == pytest.approx(summary["fastest_velocity_m_per_year"])

    with open(series["out"] / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["date"] for r in rows] == list(DATES)
    assert all(float(r["reference_point_m"]) == 0.0 for r in rows)
    last = float(rows[-1]["fastest_point_m"])
    assert last == pytest.approx(BUMP_PEAK * 18 / 365.25, rel=0.05)


@pytest.mark.slow
@needs_mintpy
def test_figures_exist_and_are_not_blank(series: dict) -> None:
    from PIL import Image

    for name in ("velocity.png", "history.png"):
        path = series["out"] / name
        assert path.stat().st_size > 20_000, name
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        assert pixels.shape[0] > 300 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50


@pytest.mark.slow
@needs_mintpy
def test_a_broken_input_fails_in_one_line_naming_the_log(velocity_stack: Path,
                                                         tmp_path: Path) -> None:  # fmt: skip
    handoffs = {}
    for reference, secondary in PAIRS:
        pair = f"{reference}_{secondary}"
        handoffs[pair] = tmp_path / "products" / pair
        shutil.copytree(velocity_stack / "products" / pair, handoffs[pair])
    (txt,) = handoffs["_".join(PAIRS[2])].glob("S1_*.txt")
    txt.write_text("this is not a HyP3 parameter file\n")
    with pytest.raises(TimeseriesError) as error:
        run_timeseries(handoffs, tmp_path / "out", tmp_path / "work", Timeseries(), TRACK,
                       coherence_threshold=0.7)  # fmt: skip
    message = str(error.value)
    assert "\n" not in message and "smallbaselineApp.py failed" in message
    assert "ValueError" in message and "prep_hyp3.py" in message
    assert str(tmp_path / "work" / "mintpy.log") in message
    assert (tmp_path / "work" / "mintpy.log").stat().st_size > 0
    assert not (tmp_path / "out" / "velocity.tif").exists()


@pytest.mark.slow
@needs_mintpy
def test_auto_reference_and_dem_error_step(velocity_stack: Path, tmp_path: Path) -> None:
    handoffs = {f"{r}_{s}": velocity_stack / "products" / f"{r}_{s}" for r, s in PAIRS}
    settings = Timeseries(min_coherence=MIN_COHERENCE, topographic_residual=True)
    result = run_timeseries(handoffs, tmp_path / "out", tmp_path / "work", settings, TRACK,
                            coherence_threshold=0.7)  # fmt: skip
    assert result.timeseries_file == "timeseries_demErr.h5"  # the DEM error step's output
    velocity, _ = read_tif(tmp_path / "out" / "velocity.tif")
    with rasterio.open(tmp_path / "out" / "velocity.tif") as ds:
        ref_row, ref_col = ds.index(result.reference_lon, result.reference_lat)
    assert velocity[ref_row, ref_col] == 0.0  # MintPy's own pick, where every date is 0
    rows, cols = np.mgrid[0:LENGTH, 0:WIDTH]
    truth = true_velocity(rows, cols) - true_velocity(ref_row, ref_col)
    ok = np.isfinite(velocity)
    assert np.abs(velocity[ok] - truth[ok]).max() < 0.01 * BUMP_PEAK


# --- the reference with reference_point: auto (dinsar.timeseries.reference) -------------------


def test_mintpys_reference_pixel_has_data_in_the_most_pairs_then_the_best_coherence() -> None:
    from dinsar.products.spec import ProductError
    from dinsar.timeseries.reference import most_coherent_pixel

    coherence = np.full((4, 5), 0.5)
    coherence[1, 1] = 0.99  # the best, but no data in the second pair
    coherence[2, 3] = 0.9
    first = (coherence, np.ones((4, 5), bool))
    second_valid = np.ones((4, 5), bool)
    second_valid[1, 1] = False
    second = (coherence, second_valid)
    decorrelated = (np.full((4, 5), 0.1), np.zeros((4, 5), bool))  # MintPy drops it
    assert most_coherent_pixel([first, second, decorrelated]) == (2, 3)
    # ties go to the first pixel in row order: the same choice on every run
    assert most_coherent_pixel([(np.full((3, 3), 0.8), np.ones((3, 3), bool))]) == (0, 0)
    with pytest.raises(ProductError, match="no pixel has data in any pair"):
        most_coherent_pixel([decorrelated])


def test_the_stable_reference_is_on_still_ground_not_on_the_bump() -> None:
    from dinsar.products.spec import ProductError
    from dinsar.timeseries.reference import stable_pixel

    rng = np.random.default_rng(1)
    rows, cols = np.mgrid[0:40, 0:50]
    bump = np.exp(-((rows - 10) ** 2 + (cols - 12) ** 2) / 30.0)
    # MintPy's reference sat on the bump: every other pixel seems to move the other way
    days = np.array([0, 12, 24, 36])
    series = [(bump - bump[10, 12]) * 0.3 * d / 365 + rng.normal(0, 1e-4, bump.shape) for d in days]
    candidates = np.ones(bump.shape, bool)
    row, col = stable_pixel(lambda i: series[i], len(days), candidates)
    assert bump[row, col] < 0.01
    candidates[:] = False
    candidates[10, 12] = True  # only the bump is reliable: it is the one
    assert stable_pixel(lambda i: series[i], len(days), candidates) == (10, 12)
    with pytest.raises(ProductError, match="no reliable pixel.*min_temporal_coherence"):
        stable_pixel(lambda i: series[i], len(days), np.zeros(bump.shape, bool))


@pytest.mark.slow
@needs_mintpy
def test_a_date_no_longer_in_the_stack_leaves_no_map_behind(series: dict, tmp_path: Path) -> None:
    """A rerun after the stack lost a date: its displacement map of the earlier run goes."""
    out = tmp_path / "out"
    shutil.copytree(series["out"], out)
    stale = out / "displacement_20250531.tif"
    stale.write_bytes((out / "velocity.tif").read_bytes())
    mintpy_dir = series["stack"] / "work_ts" / TRACK / "mintpy"
    export_timeseries(mintpy_dir, out, track=TRACK, coherence_threshold=0.7)
    assert not stale.exists()
    assert sorted(p.name for p in out.glob("displacement_*.tif")) == [
        f"displacement_{d}.tif" for d in DATES]
