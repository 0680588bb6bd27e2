"""Export of a real ISCE2 2.6.5 topsApp run with an injected +2 cm range increase (a Gaussian bump).

The fixture (shared/fixtures/isce2-run-range-increase, read-only) is real topsApp output: its
README and analysis.json give the bump's position and the phase measured there. A range increase
is motion AWAY from the satellite, so the exported displacement must be about -2 cm. topsApp's
filtered unwrapped phase gives -1.86 cm there (the filter lowers the peak by about 7 %); the
exported phase takes only its whole cycles, the rest from the unfiltered interferogram
(dinsar.products.cycles), and gives the 2 cm within 1 %.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import rasterio  # noqa: E402

from dinsar.products import export_pair, pair_info_from_workdir, read_wavelength  # noqa: E402

FIXTURE = "fixtures/isce2-run-range-increase"
CENTRE = (68, 177)  # the pixel holding the bump centre (README)


@pytest.fixture(scope="module")
def run_dir(shared_dir: Path) -> Path:
    path = shared_dir / FIXTURE
    if not (path / "merged").is_dir():
        pytest.fail(f"{path} is missing; it is part of the shared fixtures")
    return path


@pytest.fixture(scope="module")
def analysis(run_dir: Path) -> dict:
    return json.loads((run_dir / "analysis.json").read_text())


@pytest.fixture(scope="module")
def products(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("real") / "products"
    export_pair(run_dir, out)  # the fixture is read-only: nothing may be written beside it
    return out


def band(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_wavelength_comes_from_the_run(run_dir: Path) -> None:
    lam, source = read_wavelength(run_dir)
    assert lam == pytest.approx(0.05546576, abs=1e-10) and "reference/IW1.xml" in source


def test_bump_is_about_minus_two_centimetres_towards_the_satellite(products: Path, analysis: dict) -> None:
    lam = 0.05546576
    geo = analysis["geo_unw"]
    filtered = -band(products / "filtered_unwrapped_phase.tif") * lam / (4 * math.pi)
    # topsApp's filtered unwrap at the measured extremum: -4.2115 rad * lambda / 4pi = -1.859 cm
    row, col = geo["extremum_rc"]
    expected = -geo["extremum_value"] * lam / (4 * math.pi)
    assert filtered[row, col] == pytest.approx(expected, abs=1e-6)
    assert round(float(filtered[row, col]) * 100, 2) == -1.86
    injected = -0.02  # +2 cm range increase = 2 cm away from the satellite
    assert filtered[CENTRE] / injected == pytest.approx(0.93, abs=0.02)  # the filter's loss
    # the exported displacement: the filter's loss taken out, at the same place
    disp = band(products / "los_displacement.tif")
    print(f"at the bump centre: exported {disp[CENTRE] * 100:.3f} cm, filtered "
          f"{filtered[CENTRE] * 100:.3f} cm, injected {injected * 100:.1f} cm")
    assert disp[CENTRE] / injected == pytest.approx(1.0, abs=0.01)
    # its extremum within 2 pixels of the bump centre (the peak is flat, speckle picks the pixel)
    peak = np.unravel_index(np.nanargmin(disp), disp.shape)
    assert max(abs(peak[0] - CENTRE[0]), abs(peak[1] - CENTRE[1])) <= 2, peak


def test_far_field_is_zero(products: Path, analysis: dict) -> None:
    disp = band(products / "los_displacement.tif")
    rows, cols = np.mgrid[0 : disp.shape[0], 0 : disp.shape[1]]
    far = np.hypot(rows - CENTRE[0], (cols - CENTRE[1]) / 2) > 60  # well outside 6 sigma
    assert far.sum() > 20000
    assert abs(np.nanmedian(disp[far])) < 1e-6  # metres
    assert np.nanmax(np.abs(disp[far])) < 2e-4
    assert np.isfinite(disp).all()  # the run covers the whole geocoded grid


def test_geometry_and_quality_at_the_bump(products: Path, analysis: dict) -> None:
    assert band(products / "incidence_angle.tif")[CENTRE] == pytest.approx(33.7, abs=0.05)
    assert band(products / "incidence_angle.tif")[CENTRE] == pytest.approx(
        analysis["los_at_centre"]["band1_incidence_deg"], abs=1e-4
    )
    assert band(products / "azimuth_angle.tif")[CENTRE] == pytest.approx(
        analysis["los_at_centre"]["band2_azimuth_deg"], abs=1e-4
    )
    assert band(products / "coherence.tif")[CENTRE] == pytest.approx(
        analysis["topophase.cor.geo"]["at_centre"], abs=1e-5
    )
    assert band(products / "phase_sigma.tif")[CENTRE] == pytest.approx(
        analysis["phsig.cor.geo"]["at_centre"], abs=1e-5
    )
    assert band(products / "wrapped_phase.tif")[CENTRE] == pytest.approx(
        analysis["filt_topophase.flat.geo"]["phase_at_centre"], abs=1e-4
    )
    assert set(np.unique(band(products / "connected_components.tif")).tolist()) == {1}
    assert (band(products / "coherence_mask.tif") == 1).all()


def test_georeferencing_equals_the_inputs(products: Path, run_dir: Path, analysis: dict) -> None:
    with rasterio.open(run_dir / "merged" / "filt_topophase.unw.geo.vrt") as src:
        transform, crs, shape = src.transform, src.crs, (src.height, src.width)
    assert transform.to_gdal() == tuple(analysis["geo_unw"]["geotransform"])
    for tif in products.glob("*.tif"):
        with rasterio.open(tif) as src:
            assert (src.transform, src.crs, (src.height, src.width)) == (transform, crs, shape), tif
            assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and src.overviews(1)


def test_pair_description_of_a_hand_run(run_dir: Path) -> None:
    info = pair_info_from_workdir(run_dir)
    assert (info.reference, info.secondary, info.track) == ("20210401", "20210401", "168_DESC")
    # the log says nan: ISCE's cosine is 0/0 for coinciding orbits, a zero baseline
    assert info.btemp_days == 0 and info.bperp_m == 0.0 and "orbits coincide" in info.bperp_source
