"""SAFE zips: the factory's layout and determinism, the reader, layout checks, swath choice."""

from __future__ import annotations

import datetime as dt
import shutil
import zipfile
from pathlib import Path

import pytest
from shapely.geometry import Polygon, box

from dinsar import safe
from dinsar.eof import read_eof
from harness import safe_factory as sf

GRANULE = "S1A_IW_SLC__1SDV_20161007T141928_20161007T141956_013385_0155BE_46C1"
SINGLE_POL = "S1B_IW_SLC__1SSV_20170222T141841_20170222T141908_004414_007ADD_824E"
# the scene's real footprint (ASF record), descending
FOOTPRINT = [[-119.418579, 53.037727], [-118.829536, 54.701836], [-122.73793, 55.104259],
             [-123.170937, 53.436081], [-119.418579, 53.037727]]  # fmt: skip
ROI = box(-121.2, 54.5, -120.8, 54.8)


@pytest.fixture(scope="module")
def zip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sf.write_safe_zip(tmp_path_factory.mktemp("slc") / f"{GRANULE}.zip", GRANULE, FOOTPRINT,
                             ipf="002.72")  # fmt: skip


def test_factory_is_deterministic_and_laid_out_like_a_safe(zip_path: Path) -> None:
    again = sf.safe_zip_bytes(GRANULE, FOOTPRINT, ipf="002.72")
    assert zip_path.read_bytes() == again  # same inputs, same bytes: stable md5 for staging
    names = zipfile.ZipFile(zip_path).namelist()
    assert {n.split("/", 1)[0] for n in names} == {f"{GRANULE}.SAFE"}
    annotations = [n for n in names if "/annotation/" in n and n.endswith(".xml")]
    assert len(annotations) == 6  # 1SDV: vv and vh for three swaths
    assert all("s1a-iw" in n and "-20161007t" in n and "-013385-0155be-" in n for n in annotations)
    assert sf.safe_zip_bytes(GRANULE, FOOTPRINT, ipf="003.31") != again


def test_factory_single_polarization_and_mission(tmp_path: Path) -> None:
    path = sf.write_safe_zip(tmp_path / f"{SINGLE_POL}.zip", SINGLE_POL, FOOTPRINT)
    names = zipfile.ZipFile(path).namelist()
    assert not [n for n in names if "-vh-" in n]
    info = safe.read_safe(path, "vv")
    assert info.mission == "S1B"
    with pytest.raises(safe.SafeError, match="no VH annotation"):
        safe.read_safe(path, "vh")


def test_reader_gets_times_bursts_and_ipf_of_the_granule(zip_path: Path) -> None:
    info = safe.read_safe(zip_path, "vv")
    assert info.ipf == "002.72"
    assert sorted(info.swaths) == [1, 2, 3]
    start, stop = sf.granule_times(GRANULE)
    assert start <= info.start < start + dt.timedelta(seconds=2)
    assert info.stop <= stop
    footprint = Polygon(FOOTPRINT)
    for swath in info.swaths.values():
        assert len(swath.bursts) == 9
        assert swath.wavelength == pytest.approx(0.05546576, abs=1e-8)
        assert swath.pass_direction == "DESCENDING"
        assert swath.measurement_bytes > 0
        # the sparse TIFF declares the real raster size
        assert swath.measurement_shape == (swath.samples_per_burst, 9 * swath.lines_per_burst)
        for burst in swath.bursts:
            assert footprint.contains(burst.polygon())
    # bursts run north to south on a descending pass, IW1 is the eastern (near-range) swath
    iw1, iw3 = info.swaths[1], info.swaths[3]
    assert iw1.bursts[0].bounds[3] > iw1.bursts[-1].bounds[3]
    assert iw1.bursts[4].bounds[0] > iw3.bursts[4].bounds[0]


def test_swaths_are_chosen_from_burst_footprints(zip_path: Path) -> None:
    info = safe.read_safe(zip_path, "vv")
    assert safe.roi_bursts([info], ROI) == {2: 3}
    assert safe.select_swaths([info], [info], ROI) == [2]
    west_edge = info.swaths[2].bursts[4].bounds[0]
    straddle = box(west_edge - 0.05, 54.2, west_edge + 0.05, 54.3)
    assert safe.select_swaths([info], [info], straddle) == [2, 3]
    with pytest.raises(safe.SafeError, match="no swath .* has bursts over the ROI"):
        safe.select_swaths([info], [info], box(0, 0, 1, 1))


def test_nested_top_folder_is_refused(tmp_path: Path) -> None:
    nested = tmp_path / f"{GRANULE}.zip"
    nested.write_bytes(sf.safe_zip_bytes(GRANULE, FOOTPRINT, layout="nested"))
    with pytest.raises(safe.SafeError) as err:
        safe.check_layout(nested)
    message = str(err.value)
    assert "'safe/'" in message and f"'{GRANULE}.SAFE/'" in message
    assert "Could not extract swath" in message and "repack" in message


def test_the_real_s1_reader_zip_has_the_bad_layout(tmp_path: Path, shared_dir: Path) -> None:
    source = shared_dir / "fixtures" / "s1-reader" / f"{sf.SOURCE_GRANULE}.zip"
    copy = tmp_path / source.name
    shutil.copy(source, copy)
    with pytest.raises(safe.SafeError, match="holds 'safe/' at its top level"):
        safe.check_layout(copy)


def test_zip_named_after_another_granule_is_refused(tmp_path: Path, zip_path: Path) -> None:
    other = tmp_path / "S1A_IW_SLC__1SDV_20161007T141928_20161007T141956_013385_0155BE_FFFF.zip"
    shutil.copy(zip_path, other)
    with pytest.raises(safe.SafeError, match="topsApp needs 'S1A_.*_FFFF.SAFE/'"):
        safe.check_layout(other)


def test_empty_measurement_tiff_is_refused(tmp_path: Path) -> None:
    path = tmp_path / f"{GRANULE}.zip"
    path.write_bytes(sf.safe_zip_bytes(GRANULE, FOOTPRINT, empty_tiffs=[2]))
    with pytest.raises(safe.SafeError, match=r"empty \(0 bytes\).*swath 2.*download it again"):
        safe.check_layout(path)


def test_not_a_zip_and_missing_zip(tmp_path: Path) -> None:
    bad = tmp_path / f"{GRANULE}.zip"
    bad.write_bytes(b"<html>503 Service Unavailable</html>")
    with pytest.raises(safe.SafeError, match="not a readable zip.*delete it"):
        safe.check_layout(bad)
    with pytest.raises(safe.SafeError, match="missing; run the staging step"):
        safe.check_layout(tmp_path / "absent.zip")


def test_real_annotation_bursts_match_isce_cropping(shared_dir: Path) -> None:
    """The real run's ROI: ISCE kept TIFF bursts 4-6 (bounding-box test); our footprints agree.

    Our footprint test (polygons) must pick a subset of what ISCE keeps, so a swath we choose
    always yields an IW<n>.xml.
    """
    real = shared_dir / "fixtures" / "xarray-sentinel" / (
        "S1B_IW_SLC__1SDV_20210401T052622_20210401T052650_026269_032297_EFA4.zip"
    )
    info = safe.read_safe(real, "vv")
    assert info.ipf == "003.31"
    iw1 = info.swaths[1]
    roi = box(11.50, 46.30, 11.80, 46.45)
    ours = [b.number for b in iw1.bursts_intersecting(roi)]
    isce_like = [b.number for b in iw1.bursts_isce_keeps(roi.bounds)]
    assert isce_like == [4, 5, 6]  # the real run's 3 bursts
    assert ours and set(ours) <= set(isce_like)


def test_burst_geometry_from_the_grid_matches_the_orbit(shared_dir: Path) -> None:
    """The annotation-grid geometry (dinsar.bursts) against a zero-Doppler solution from the
    annotation's own orbit: every corner of every burst, at ISCE's crop heights and between."""
    import xml.etree.ElementTree as ET
    import zipfile

    from harness.radar_geometry import rdr2geo
    from harness.real_stack import _annotation_orbit

    real = shared_dir / "fixtures" / "xarray-sentinel" / (
        "S1B_IW_SLC__1SDV_20210401T052622_20210401T052650_026269_032297_EFA4.zip"
    )
    iw1 = safe.read_safe(real, "vv").swaths[1]
    orbit = _annotation_orbit(ET.fromstring(zipfile.ZipFile(real).read(iw1.annotation)))
    near = iw1.slant_range_time * safe.SPEED_OF_LIGHT / 2
    far = near + (iw1.samples_per_burst - 1) * iw1.range_pixel_spacing
    worst = 0.0
    for burst in iw1.bursts:
        g = burst.geometry
        for height in (-500.0, 0.0, 1500.0, 9000.0):
            for when in (g.first_line, g.last_line):
                for pixel, rng in ((g.first_pixel, near), (g.last_pixel, far)):
                    lat, lon = rdr2geo(orbit, orbit.seconds(when), rng, height)
                    glat, glon = iw1.grid.position(iw1.grid.seconds(when), pixel, height)
                    worst = max(worst, abs(glat - lat) * 111_200,
                                abs(glon - lon) * 111_200 * 0.69)  # fmt: skip
    assert worst < 15.0  # metres


def test_retimed_orbit_covers_its_acquisition_only(tmp_path: Path) -> None:
    start, stop = sf.granule_times(GRANULE)
    name, text, validity = sf.eof_text("S1A", start, stop)
    assert name.startswith("S1A_OPER_AUX_POEORB_OPOD_") and name.endswith(".EOF")
    assert validity[0] < start and validity[1] > stop
    eof = tmp_path / name
    eof.write_text(text)
    assert read_eof(eof).gaps(start, stop, 60) == []
    later = start + dt.timedelta(days=12)
    assert read_eof(eof).gaps(later, later + dt.timedelta(seconds=28), 60)
