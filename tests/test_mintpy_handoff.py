"""The MintPy hand-off (dinsar.products.mintpy_handoff): names, .txt, angle conversions, and the
proof that MintPy's own ``load_data`` loads S1C- and S1D-named pairs from a template a user writes.

The load test needs MintPy and GDAL's Python bindings in the venv
(``pip install -e '.[timeseries]'`` after ``make .venv/.gdal``); without them it is skipped.
MintPy (GPL-3.0) runs as a program in its own process: nothing here imports it. No network.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import isce_synthetic as synthetic  # noqa: E402
import rasterio  # noqa: E402
from handoff_stack import DATES, PAIRS, TRACK, build_stack, dem_value, granule, radar_info  # noqa: E402

from dinsar.isce_image import IsceImage, write_raster  # noqa: E402
from dinsar.products import ProductError  # noqa: E402
from dinsar.products.mintpy_handoff import (  # noqa: E402
    SINGLE_BURST_NAME,
    RadarInfo,
    azimuth_from_lv_phi,
    heading_from_los_azimuth,
    hyp3_name,
    incidence_from_lv_theta,
    lv_phi,
    lv_theta,
    parameter_lines,
    parameter_text,
    run_description,
    slant_range_m,
    write_mintpy_handoff,
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """products/<pair>/ for the 5 pairs, each with its MintPy hand-off; dem/geocode_dem.wgs84."""
    return build_stack(tmp_path_factory.mktemp("handoff"))


# ------------------------------------------------------------------------------------------------
# Pure parts
# ------------------------------------------------------------------------------------------------


def test_names_take_the_single_burst_form_for_any_date_pair() -> None:
    name = hyp3_name("20250601", "20250607", track=TRACK, swath=2, polarization="vv", posting=93)
    match = SINGLE_BURST_NAME.fullmatch(name)
    assert match and match["reference"] == "20250601" and match["secondary"] == "20250607"
    assert match["swath"] == "2" and match["pol"] == "VV" and match["posting"] == "93"
    assert name != hyp3_name("20250601", "20250613", track=TRACK)  # each pair its own id
    assert hyp3_name("20250601", "20250607", track=TRACK) == hyp3_name("20250601", "20250607",
                                                                        track=TRACK)  # fmt: skip
    with pytest.raises(ProductError, match="VV or HH"):
        hyp3_name("20250601", "20250607", track=TRACK, polarization="VH")
    with pytest.raises(ProductError, match="YYYYMMDD"):
        hyp3_name("2025-06-01", "20250607", track=TRACK)


def test_angle_conversions_invert_and_keep_no_data() -> None:
    incidence = np.array([30.0, 44.9, np.nan])
    azimuth = np.array([-100.8, 101.3, np.nan])
    theta, phi = lv_theta(incidence), lv_phi(azimuth)
    assert theta.dtype == phi.dtype == np.float32
    assert theta[2] == phi[2] == 0  # HyP3's no data
    np.testing.assert_allclose(theta[:2], np.radians(90 - incidence[:2]), rtol=1e-6)
    np.testing.assert_allclose(incidence_from_lv_theta(theta)[:2], incidence[:2], atol=1e-4)
    np.testing.assert_allclose(azimuth_from_lv_phi(phi)[:2], azimuth[:2], atol=1e-4)
    assert np.isnan(incidence_from_lv_theta(theta)[2]) and np.isnan(azimuth_from_lv_phi(phi)[2])
    # an azimuth of exactly -90 (line of sight due east) is data, not HyP3's no data
    assert 0 < lv_phi([-90.0])[0] < 1e-6


@pytest.mark.parametrize(("azimuth", "heading", "direction"),
                         [(-100.8, -169.2, "DESCENDING"), (101.3, -11.3, "ASCENDING")])  # fmt: skip
def test_heading_from_the_line_of_sight(azimuth: float, heading: float, direction: str) -> None:
    got = heading_from_los_azimuth(azimuth)
    assert got == pytest.approx(heading)
    # the ground-to-satellite unit vector of angles.py points away from the look direction
    look_east = math.sin(math.radians(got + 90))
    assert math.copysign(1, -math.sin(math.radians(azimuth))) == -math.copysign(1, look_east)
    info = RadarInfo(utc_seconds=1.0, range_looks=1, azimuth_looks=1, heading_deg=got,
                     slant_range_near_m=8e5, slant_range_far_m=9e5)  # fmt: skip
    text = dict(parameter_lines(info, baseline_m=None, posting=30, angles=None, latitude=0.0))
    assert text["Reference Pass Direction"] == direction


def test_slant_range_of_sentinel1_geometry() -> None:
    near, far = slant_range_m([30.0, 46.0], 693_000.0, 6_371_000.0)
    assert 780_000 < near < 820_000 and 920_000 < far < 980_000  # S1 IW: ~800 to ~950 km


def test_parameter_text_is_what_mintpy_parses() -> None:
    info = RadarInfo(utc_seconds=19605.5, range_looks=19, azimuth_looks=7,
                     reference_granules=(granule("20250601"),), heading_deg=-169.2,
                     slant_range_near_m=8e5, slant_range_far_m=9e5, filter_strength=0.5)  # fmt: skip
    text = parameter_text(parameter_lines(info, baseline_m=-42.25, posting=93, angles=None,
                                          latitude=46.4))  # fmt: skip
    parsed = {}
    for line in text.splitlines():  # as prep_hyp3 reads it: spaces out, split at ':'
        parts = line.replace(" ", "").split(":")
        assert len(parts) == 2, line
        parsed[parts[0]] = parts[1]
    assert float(parsed["UTCtime"]) == 19605.5 and float(parsed["Baseline"]) == -42.25
    assert parsed["Rangelooks"] == "19" and parsed["Azimuthlooks"] == "7"
    assert float(parsed["Heading"]) == -169.2 and parsed["Unwrappingtype"] == "snaphu_mcf"
    assert parsed["ReferenceGranule"].startswith("S1C_IW_SLC")
    for key in ("Earthradiusatnadir", "Spacecraftheight", "Slantrangenear"):
        float(parsed[key])


def test_run_description_reads_the_topsapp_run(tmp_path: Path) -> None:
    run = synthetic.write_run(tmp_path / "plain", reference_date="20250601",
                              secondary_date="20250607")  # fmt: skip
    plain = run_description(run.workdir)  # a hand-run topsApp.xml: topsApp's defaults
    assert plain.radar.utc_seconds == pytest.approx(5 * 3600 + 26 * 60 + 32.48566)
    assert (plain.radar.range_looks, plain.radar.azimuth_looks) == (19, 7)
    assert plain.radar.unwrapper == "icu" and plain.radar.filter_strength == 0.5
    assert (plain.swath, plain.polarization) == (1, "VV")

    safes = [f"/data/{granule('20250601')}.zip"]
    (run.workdir / "topsApp.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<topsApp>\n  <component name="topsinsar">\n'
        f'    <component name="reference">\n      <property name="safe">{safes!r}</property>\n'
        '      <property name="polarization">hh</property>\n    </component>\n'
        f'    <component name="secondary">\n      <property name="safe">[\'/d/{granule("20250607")}.zip\']'
        "</property>\n    </component>\n"
        '    <property name="swaths">[3, 2]</property>\n'
        '    <property name="range looks">9</property>\n'
        '    <property name="unwrapper name">snaphu_mcf</property>\n'
        '    <property name="filter strength">0.0</property>\n'
        "  </component>\n</topsApp>\n"
    )
    described = run_description(run.workdir)
    assert described.radar.reference_granules == (granule("20250601"),)
    assert described.radar.secondary_granules == (granule("20250607"),)
    assert (described.swath, described.polarization) == (2, "HH")
    assert described.radar.range_looks == 9 and described.radar.unwrapper == "snaphu_mcf"
    assert described.radar.filter_strength == 0.0


def test_the_hand_off_files_sit_beside_the_products(stack: Path) -> None:
    for reference, secondary in PAIRS:
        folder = stack / "products" / f"{reference}_{secondary}"
        names = {p.stem for p in folder.glob("S1_*.txt")}
        assert len(names) == 1
        (name,) = names
        match = SINGLE_BURST_NAME.fullmatch(name)
        assert match and (match["reference"], match["secondary"]) == (reference, secondary)
        for suffix in ("unw_phase", "corr", "conncomp", "dem", "lv_theta", "lv_phi"):
            assert (folder / f"{name}_{suffix}.tif").is_file()
        assert not list(folder.glob("*.tmp"))
        with rasterio.open(folder / f"{name}_unw_phase.tif") as ds, \
                rasterio.open(folder / "unwrapped_phase.tif") as ours:  # fmt: skip
            handed, own = ds.read(1), ours.read(1)
            assert ds.nodata == 0
        assert np.array_equal(handed[np.isfinite(own)], own[np.isfinite(own)])
        assert np.all(handed[~np.isfinite(own)] == 0)


def test_dem_lands_on_the_pair_grid_exactly(stack: Path) -> None:
    folder = stack / "products" / "_".join(PAIRS[0])
    (dem,) = folder.glob("S1_*_dem.tif")
    with rasterio.open(dem) as ds:
        values = ds.read(1)
    rows, cols = np.mgrid[0 : values.shape[0], 0 : values.shape[1]]
    np.testing.assert_allclose(values, dem_value(rows, cols), atol=1e-3)


def test_a_second_name_replaces_the_first(stack: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pair"
    shutil.copytree(stack / "products" / "_".join(PAIRS[0]), folder)
    (folder / "S1_000000_IW1_20250601_20250607_VV_INT93_0154_dem.tif.rsc").write_text("old")
    first = {p.name for p in folder.glob("S1_*")}
    result = write_mintpy_handoff(folder, radar_info(*PAIRS[0]), stack / "dem" /
                                  "geocode_dem.wgs84", swath=3)  # fmt: skip
    now = {p.name for p in folder.glob("S1_*")}
    assert now and all(n.startswith(result.name) for n in now)
    assert "_IW3_" in result.name and not now & first
    assert len(now) == 7  # six rasters and the .txt


def test_a_dem_that_misses_the_grid_is_refused(stack: Path, tmp_path: Path) -> None:
    small = tmp_path / "small.wgs84"
    image = IsceImage(file_name=small.name, width=20, length=20, data_type="FLOAT",
                      image_type="dem", first_lon=synthetic.LON0, delta_lon=synthetic.DLON,
                      first_lat=synthetic.LAT0, delta_lat=synthetic.DLAT)  # fmt: skip
    write_raster(small, [np.zeros((20, 20), np.float32)], image)
    folder = tmp_path / "pair"
    shutil.copytree(stack / "products" / "_".join(PAIRS[0]), folder)
    with pytest.raises(ProductError, match="does not cover"):
        write_mintpy_handoff(folder, radar_info(*PAIRS[0]), small)


# ------------------------------------------------------------------------------------------------
# MintPy's own load_data, from a template a user writes
# ------------------------------------------------------------------------------------------------


def _mintpy_program(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


needs_mintpy = pytest.mark.skipif(
    _mintpy_program("smallbaselineApp.py") is None
    or importlib.util.find_spec("osgeo") is None
    or importlib.util.find_spec("h5py") is None,
    reason="needs MintPy (pip install -e '.[timeseries]') and GDAL's bindings (make .venv/.gdal)",
)


@needs_mintpy
def test_mintpy_load_data_reads_the_s1c_s1d_stack(stack: Path, tmp_path: Path) -> None:
    import h5py

    products = stack / "products"
    workdir = tmp_path / "mintpy"
    workdir.mkdir()
    template = workdir / "handwritten.txt"
    template.write_text(
        "# written by hand, as a user would\n"
        "mintpy.load.processor      = hyp3\n"
        f"mintpy.load.unwFile        = {products}/*/*_unw_phase.tif\n"
        f"mintpy.load.corFile        = {products}/*/*_corr.tif\n"
        f"mintpy.load.connCompFile   = {products}/*/*_conncomp.tif\n"
        f"mintpy.load.demFile        = {products}/*/*_dem.tif\n"
        f"mintpy.load.incAngleFile   = {products}/*/*_lv_theta.tif\n"
        f"mintpy.load.azAngleFile    = {products}/*/*_lv_phi.tif\n"
    )
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    program = _mintpy_program("smallbaselineApp.py")
    assert program
    # MintPy's own way to run its load_data step from a user's template
    done = subprocess.run([program, str(template), "--dostep", "load_data"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

    with h5py.File(workdir / "inputs" / "ifgramStack.h5", "r") as f:
        pairs = [tuple(d.decode() for d in row) for row in f["date"][:]]
        assert sorted(pairs) == sorted(PAIRS)
        assert f["unwrapPhase"].shape[0] == len(PAIRS) == f["coherence"].shape[0]
        assert f["connectComponent"].shape[0] == len(PAIRS)
        dates = sorted({d for pair in pairs for d in pair})
        assert dates == sorted(DATES)
        bperp = f["bperp"][:]
        assert np.all(np.isfinite(bperp))
        assert f["dropIfgram"][:].all()
        index = pairs.index(PAIRS[1])
        unwrapped, coherence = f["unwrapPhase"][index], f["coherence"][index]
        assert f.attrs["PROCESSOR"] == "hyp3" and f.attrs["ORBIT_DIRECTION"] == "DESCENDING"
    with h5py.File(workdir / "inputs" / "geometryGeo.h5", "r") as f:
        incidence, azimuth, height = f["incidenceAngle"][:], f["azimuthAngle"][:], f["height"][:]

    first = products / "_".join(PAIRS[0])
    with rasterio.open(first / "incidence_angle.tif") as ds:
        our_incidence = ds.read(1)
    with rasterio.open(first / "azimuth_angle.tif") as ds:
        our_azimuth = ds.read(1)
    with rasterio.open(products / "_".join(PAIRS[1]) / "unwrapped_phase.tif") as ds:
        our_phase = ds.read(1)
    with rasterio.open(products / "_".join(PAIRS[1]) / "coherence.tif") as ds:
        our_coherence = ds.read(1)
    # the phase and coherence MintPy holds are ours, 0 (HyP3's no data) where ours has none
    np.testing.assert_array_equal(unwrapped, np.nan_to_num(our_phase, nan=0.0))
    np.testing.assert_array_equal(coherence, np.nan_to_num(our_coherence, nan=0.0))
    valid = np.isfinite(our_incidence)
    assert valid.sum() > 0.5 * valid.size
    assert np.array_equal(np.isfinite(incidence), valid)
    assert np.abs(incidence[valid] - our_incidence[valid]).max() < 0.01
    assert np.abs(azimuth[valid] - our_azimuth[valid]).max() < 0.01
    rows, cols = np.mgrid[0 : height.shape[0], 0 : height.shape[1]]
    np.testing.assert_allclose(height, dem_value(rows, cols), atol=1e-3)
    assert re.search(r"S1_000000_IW1_20250601_20250607_VV_INT\d\d_[0-9A-F]{4}", done.stdout)
