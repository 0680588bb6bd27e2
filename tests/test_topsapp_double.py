"""The topsApp test double against the real ISCE2 2.6.5 run, and its ISCE-like refusals.

The comparison run reproduces the real run's set-up (shared/fixtures/isce2-run-range-increase):
the same product (the xarray-sentinel SAFE, unzipped twice), the same topsApp.xml and DEM, the
SAFEs one folder above the run directory as in the real run. The double must then write the same
files: names, .xml/.vrt sidecars byte for byte, PICKLE/<step>.xml byte for byte, the same grids.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dinsar.config import Isce
from dinsar.isce_image import read_band, read_image
from dinsar.isce_xml import Sensor, TopsAppConfig, render_topsapp_xml, snwe
from harness import environment
from harness import safe_factory as sf

DOUBLE_DIR = Path(__file__).resolve().parent / "topsapp_double"
PRODUCT = "S1B_IW_SLC__1SDV_20210401T052622_20210401T052650_026269_032297_EFA4"
# the injected bump of the real run (fixture README / pair_params.json)
BUMP = {"DINSAR_DOUBLE_DEFO_LAT": "46.394133", "DINSAR_DOUBLE_DEFO_LON": "11.648143",
        "DINSAR_DOUBLE_DEFO_AMP_M": "0.02", "DINSAR_DOUBLE_DEFO_SIGMA_KM": "1.3"}  # fmt: skip
STEPS_TO_GEOCODE = 21  # startup .. geocode
REF = "S1A_IW_SLC__1SDV_20161007T141928_20161007T141956_013385_0155BE_46C1"
SEC = "S1A_IW_SLC__1SDV_20161031T141928_20161031T141956_013735_0160AF_EEEE"
FOOTPRINT = [[-119.418579, 53.037727], [-118.829536, 54.701836], [-122.73793, 55.104259],
             [-123.170937, 53.436081]]  # fmt: skip
ROI_WSEN = [-121.2, 54.5, -120.8, 54.8]


def run_double(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """topsApp.py from PATH, as the workflow calls it."""
    path = os.pathsep.join([str(DOUBLE_DIR), str(Path(sys.executable).parent), os.environ["PATH"]])
    full = {**environment.clean(), "PATH": path, **env}
    return subprocess.run(["topsApp.py", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, check=False, timeout=120)  # fmt: skip


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


# --- the real run ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(shared_dir: Path) -> Path:
    return shared_dir / "fixtures" / "isce2-run-range-increase"


@pytest.fixture(scope="module")
def double_run(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path, real: Path) -> Path:
    pair = tmp_path_factory.mktemp("pair")
    archive = shared_dir / "fixtures" / "xarray-sentinel" / f"{PRODUCT}.zip"
    for name in ("ref", "sec"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(pair / name)
    run = pair / "run"
    run.mkdir()
    shutil.copytree(real / "dem", run / "dem")
    text = (real / "topsApp.xml").read_text()
    (run / "topsApp.xml").write_text(text.replace("'ref/", "'../ref/").replace("'sec/", "'../sec/"))
    result = run_double(run, "topsApp.xml", "--start=startup", "--end=geocode", **BUMP)
    assert result.returncode == 0, output(result)
    return run


def real_files(real: Path) -> list[str]:
    return sorted(p.relative_to(real).as_posix() for d in ("merged", "PICKLE", "reference")
                  for p in (real / d).rglob("*") if p.is_file())  # fmt: skip


def test_same_files_as_the_real_run(double_run: Path, real: Path) -> None:
    missing = [f for f in real_files(real) if not (double_run / f).is_file()]
    assert not missing


def test_sidecars_and_pickle_xml_are_byte_identical(double_run: Path, real: Path) -> None:
    checked = [f for f in real_files(real) if f.endswith((".xml", ".vrt")) and f != "reference/IW1.xml"]
    assert len(checked) == 16 + 21 + 6  # merged sidecars, PICKLE/<step>.xml, burst sidecars
    different = [f for f in checked if (double_run / f).read_bytes() != (real / f).read_bytes()]
    assert not different


def test_rasters_have_the_real_layout_and_size(double_run: Path, real: Path) -> None:
    for xml in sorted((real / "merged").glob("*.xml")):
        raster = xml.with_suffix("")
        ours = double_run / "merged" / raster.name
        assert ours.stat().st_size == raster.stat().st_size, raster.name
        theirs_image, our_image = read_image(xml), read_image(ours.with_name(ours.name + ".xml"))
        assert (our_image.bands, our_image.scheme, our_image.data_type) == (
            theirs_image.bands, theirs_image.scheme, theirs_image.data_type)  # fmt: skip
    # the geocode DEM crop comes from the same DEM on the same grid: identical pixels
    assert (double_run / "merged/dem.crop").read_bytes() == (real / "merged/dem.crop").read_bytes()


def test_pickle_state_for_every_step(double_run: Path) -> None:
    steps = [p.name for p in (double_run / "PICKLE").iterdir() if not p.suffix]
    assert len(steps) == STEPS_TO_GEOCODE
    assert all((double_run / "PICKLE" / f"{s}.xml").is_file() for s in steps)


def tree(element: ET.Element, path: str = "") -> set[str]:
    out = set()
    for child in element:
        name = child.get("name", child.tag)
        if child.tag in ("property", "component"):
            here = f"{path}/{name}"
            out.add(here)
            out |= tree(child, here)
    return out


def test_swath_product_xml_has_the_real_structure(double_run: Path, real: Path) -> None:
    ours = ET.parse(double_run / "reference/IW1.xml").getroot()
    theirs = ET.parse(real / "reference/IW1.xml").getroot()
    assert ours.tag == theirs.tag and tree(ours) == tree(theirs)

    def value(root: ET.Element, path: str) -> str:
        node = root
        for name in path.split("/"):
            node = node.find(f"*[@name='{name}']")
        return (node.findtext("value") or "").strip()

    for burst in ("burst1", "burst2", "burst3"):
        for prop in ("radarwavelength", "sensingstart", "sensingstop", "burststartutc",
                     "numberoflines", "numberofsamples", "firstvalidline", "numberofvalidlines",
                     "firstvalidsample", "numberofvalidsamples", "startingrange", "tracknumber",
                     "passdirection", "image/file_name", "orbit/min_time", "orbit/max_time"):  # fmt: skip
            path = f"instance/bursts/{burst}/{prop}"
            assert value(ours, path) == value(theirs, path), path
    assert value(ours, "instance/processingsoftwareversion") == "003.31"


def test_signal_sign_and_geometry_match_the_real_run(double_run: Path, real: Path, shared_dir: Path) -> None:
    facts = json.loads((shared_dir / "reference/isce2/products.json").read_text())
    assert "POSITIVE phase = range INCREASE" in facts["phase_sign_convention"]["inference"]
    ours = read_band(double_run / "merged/filt_topophase.unw.geo", 2)
    theirs = read_band(real / "merged/filt_topophase.unw.geo", 2)
    expected = 4 * np.pi / 0.05546576 * 0.02  # +4.53 rad for a 2 cm range increase
    peak_ours = np.unravel_index(np.argmax(ours), ours.shape)
    peak_theirs = np.unravel_index(np.argmax(theirs), theirs.shape)
    assert ours.max() == pytest.approx(expected, rel=0.05)  # no filter loss in the double
    assert theirs.max() == pytest.approx(expected, rel=0.10)
    assert abs(peak_ours[0] - peak_theirs[0]) <= 2 and abs(peak_ours[1] - peak_theirs[1]) <= 2
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.98
    assert abs(np.median(ours[:20])) < 1e-3  # far field
    for band, tolerance in ((1, 0.1), (2, 0.5)):  # incidence, LOS azimuth at the bump, degrees
        ours_los = read_band(double_run / "merged/los.rdr.geo", band)[68, 177]
        theirs_los = read_band(real / "merged/los.rdr.geo", band)[68, 177]
        assert ours_los == pytest.approx(theirs_los, abs=tolerance)
    coherence = read_band(double_run / "merged/topophase.cor.geo", 2)
    assert 0 < coherence.min() and coherence.max() <= 1
    assert set(np.unique(read_band(double_run / "merged/filt_topophase.unw.conncomp.geo", 1))) == {1}
    flat = read_band(double_run / "merged/topophase.flat.geo", 1)
    assert np.angle(flat[68, 177]) == pytest.approx(np.angle(np.exp(1j * expected)), abs=0.05)


# --- a pair made by our own factory and builder -------------------------------------------------


@pytest.fixture(scope="module")
def pair_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory with our zips, re-timed orbits, a DEM and a topsApp.xml of our builder."""
    tmp_path = tmp_path_factory.mktemp("pair")
    slc = tmp_path / "slc"
    sensors = {}
    for role, granule in (("reference", REF), ("secondary", SEC)):
        zip_path = sf.write_safe_zip(slc / f"{granule}.zip", granule, FOOTPRINT, ipf="002.72")
        name, text, _ = sf.eof_text("S1A", *sf.granule_times(granule))
        (tmp_path / name).write_text(text)
        sensors[role] = Sensor((str(zip_path),), role, str(tmp_path / name))
    dem = sf.write_dem(tmp_path / "dem" / "dem.wgs84", [-121.6, 54.2, -120.4, 55.1], 1 / 200)
    cfg = TopsAppConfig(
        reference=sensors["reference"], secondary=sensors["secondary"], swaths=(2,),
        roi_snwe=snwe(ROI_WSEN), geocode_bbox_snwe=snwe(ROI_WSEN, 0.05), dem=str(dem),
        geocode_dem=str(dem), isce=Isce(range_looks=19, azimuth_looks=7),
        geocode_list=("merged/filt_topophase.unw", "merged/los.rdr"),
    )  # fmt: skip
    run = tmp_path / "run"
    run.mkdir()
    (run / "topsApp.xml").write_text(render_topsapp_xml(cfg).replace(str(tmp_path), "@BASE@"))
    return tmp_path


@pytest.fixture
def pair(pair_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the template (its absolute paths rewritten to the copy)."""
    base = tmp_path / "pair"
    shutil.copytree(pair_template, base)
    xml = base / "run" / "topsApp.xml"
    xml.write_text(xml.read_text().replace("@BASE@", str(base)))
    dem_xml = base / "dem" / "dem.wgs84.xml"
    dem_xml.write_text(dem_xml.read_text().replace(str(pair_template), str(base)))
    return base / "run"


def edit_xml(run: Path, old: str, new: str) -> None:
    path = run / "topsApp.xml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_accepts_our_xml_and_geocodes_the_signal(pair: Path) -> None:
    result = run_double(pair, "topsApp.xml", "--start=startup", "--end=geocode",
                        DINSAR_DOUBLE_DEFO_AMP_M="0.01")  # fmt: skip
    assert result.returncode == 0, output(result)
    assert "Could not extract" not in output(result)
    unw = pair / "merged/filt_topophase.unw.geo"
    image = read_image(unw.with_name(unw.name + ".xml"))
    assert image.delta_lon == pytest.approx(1 / 200) and image.delta_lat == pytest.approx(-1 / 200)
    phase = read_band(unw, 2)
    row = int(round((image.first_lat - 54.65) / -image.delta_lat))
    col = int(round((-121.0 - image.first_lon) / image.delta_lon))
    assert phase[row, col] == pytest.approx(4 * np.pi / 0.05546576 * 0.01, rel=0.1)
    assert (pair / "reference/IW2.xml").is_file() and not (pair / "reference/IW1.xml").exists()


def test_unknown_property_exits_with_isces_message(pair: Path) -> None:
    edit_xml(pair, 'name="region of interest"', 'name="region of intrest"')
    result = run_double(pair, "topsApp.xml", "--end=preprocess")
    assert result.returncode == 1
    assert ('Error. The attribute corresponding to the key "regionofintrest" is not present in '
            "the object \"<class '__main__.TopsInSAR'>\"") in output(result)  # fmt: skip
    assert not (pair / "PICKLE").exists()  # no step ran


def test_unknown_sensor_property_names_sentinel1(pair: Path) -> None:
    edit_xml(pair, 'name="orbit file"', 'name="orbit_file"')
    result = run_double(pair, "topsApp.xml", "--end=preprocess")
    assert result.returncode == 1
    assert "isceobj.Sensor.TOPS.Sentinel1.Sentinel1" in output(result)


def test_step_options_need_the_equals_sign(pair: Path) -> None:
    result = run_double(pair, "topsApp.xml", "--start", "topo")
    assert result.returncode == 1
    assert "neither an input file nor a sequence object.param=val" in output(result)
    result = run_double(pair, "topsApp.xml", "--start=topos")
    assert result.returncode == 1 and "ERROR: start=topos is not one of the named steps" in output(result)


@pytest.mark.parametrize("problem", ["nested zip", "empty tiff", "orbit elsewhere"])
def test_bad_inputs_fail_a_step_late_like_isce(pair: Path, problem: str) -> None:
    zip_path = pair.parent / "slc" / f"{SEC}.zip"
    if problem == "nested zip":
        zip_path.write_bytes(sf.safe_zip_bytes(SEC, FOOTPRINT, ipf="002.72", layout="nested"))
    elif problem == "empty tiff":
        zip_path.write_bytes(sf.safe_zip_bytes(SEC, FOOTPRINT, ipf="002.72", empty_tiffs=[2]))
    else:
        start, stop = sf.granule_times(SEC)
        name, text, _ = sf.eof_text("S1A", start.replace(day=20), stop.replace(day=20))
        orbit = next(p for p in pair.parent.glob("*.EOF") if "20161031" in p.name.split("_V")[1])
        orbit.write_text(text)  # same name, other days: the validity no longer covers the scene
    result = run_double(pair, "topsApp.xml", "--end=preprocess")
    assert result.returncode == 0  # preprocess only prints
    assert "Could not extract swath 2" in output(result)
    assert not (pair / "secondary/IW2.xml").exists()
    result = run_double(pair, "topsApp.xml", "--start=computeBaselines", "--end=topo")
    assert result.returncode == 1 and "IndexError" in output(result)


def test_dem_sidecar_problems(pair: Path) -> None:
    xml = pair.parent / "dem" / "dem.wgs84.xml"
    original = xml.read_text()
    xml.write_text(original.replace('name="reference"', 'name="datum"'))
    result = run_double(pair, "topsApp.xml", "--end=verifyDEM")
    assert result.returncode == 1
    assert 'DemImageBase - ERROR - Error. The attribute corresponding to the key "datum"' in output(result)
    root = ET.fromstring(original)
    coordinate = root.find("component[@name='coordinate1']")
    coordinate.remove(coordinate.find("property[@name='startingvalue']"))
    xml.write_text(ET.tostring(root, encoding="unicode"))
    result = run_double(pair, "topsApp.xml", "--end=verifyDEM")
    assert result.returncode == 1 and "lacks startingValue/delta" in output(result)


def test_false_is_read_as_true(pair: Path) -> None:
    edit_xml(pair, 'name="do ESD">True<', 'name="do ESD">false<')
    result = run_double(pair, "topsApp.xml", "--end=esd")
    assert result.returncode == 0, output(result)
    assert list((pair / "ESD").glob("combined_IW2.*"))  # ESD ran: 'false' is a non-empty string


def test_bare_swath_number_crashes_in_preprocess(pair: Path) -> None:
    edit_xml(pair, ">[2]<", ">2<")
    result = run_double(pair, "topsApp.xml", "--end=preprocess")
    assert result.returncode == 1 and "object of type 'int' has no len()" in output(result)


def test_missing_pickle_is_not_fatal_until_later(pair: Path) -> None:
    result = run_double(pair, "topsApp.xml", "--start=topo", "--end=topo")
    assert "Cannot open" in output(result) and "PICKLE/verifyDEM" in output(result)
    assert result.returncode == 1 and "TypeError" in output(result)


def test_topsapp_xml_in_the_run_directory_is_always_read(pair: Path) -> None:
    shutil.copy(pair / "topsApp.xml", pair / "other.xml")
    edit_xml(pair, 'name="do ESD"', 'name="do esdd"')
    result = run_double(pair, "other.xml", "--end=startup")
    assert result.returncode == 1 and '"doesdd"' in output(result)


def test_other_component_names_are_ignored_silently(pair: Path) -> None:
    edit_xml(pair, 'name="topsinsar"', 'name="insar"')
    result = run_double(pair, "topsApp.xml", "--end=preprocess")
    # no complaint about the component: every setting fell back to ISCE's defaults, and the
    # default output directory (None) fails in preprocess
    assert "not present" not in output(result)
    assert result.returncode == 1 and "NoneType" in output(result)
    assert (pair / "PICKLE/startup").is_file()


def test_injected_failure_and_resume(pair: Path, tmp_path: Path) -> None:
    result = run_double(pair, "topsApp.xml", "--end=geocode", DINSAR_DOUBLE_FAIL_AT="unwrap")
    assert result.returncode == 1 and "injected failure in step unwrap" in output(result)
    assert (pair / "PICKLE/filter").is_file() and not (pair / "PICKLE/unwrap").exists()
    topo = (pair / "PICKLE/topo").stat().st_mtime_ns
    flag = tmp_path / "fail_at"
    flag.write_text("geocode")
    result = run_double(pair, "topsApp.xml", "--start=unwrap", "--end=geocode",
                        DINSAR_DOUBLE_FAIL_FLAG=str(flag))  # fmt: skip
    assert result.returncode == 1 and "step geocode" in output(result)
    flag.unlink()  # "fixed"
    result = run_double(pair, "topsApp.xml", "--start=geocode", "--end=geocode",
                        DINSAR_DOUBLE_FAIL_FLAG=str(flag))  # fmt: skip
    assert result.returncode == 0, output(result)
    assert (pair / "merged/filt_topophase.unw.geo").is_file()
    assert (pair / "PICKLE/topo").stat().st_mtime_ns == topo


def test_intermediate_size_is_configurable(pair: Path) -> None:
    result = run_double(pair, "topsApp.xml", "--end=topo", DINSAR_DOUBLE_BURST_BYTES="100000")
    assert result.returncode == 0, output(result)
    lat = pair / "geom_reference/IW2/lat_01.rdr"
    assert 100000 - 8 * 16 < lat.stat().st_size <= 100000
    image = read_image(lat.with_name(lat.name + ".xml"))
    assert image.expected_size == lat.stat().st_size and image.data_type == "DOUBLE"


def test_without_step_options_everything_runs_without_pickle(pair: Path) -> None:
    edit_xml(pair, 'name="do unwrap">True<', 'name="do unwrap">False<')
    result = run_double(pair, "topsApp.xml")
    assert result.returncode == 0, output(result)
    assert not (pair / "PICKLE").exists()
    assert (pair / "merged/los.rdr.geo").is_file()
    assert not (pair / "merged/filt_topophase.unw").exists()  # do unwrap False
