"""Products: sign and magnitude of a known deformation, nodata, COG structure, reference points.

Inputs are synthetic ISCE-format run directories (tests/isce_synthetic.py) holding a Mogi uplift
written with ISCE's phase sign convention: an uplift is a range decrease, i.e. negative phase.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import isce_synthetic as synthetic  # noqa: E402
import rasterio  # noqa: E402

from dinsar.errors import DinsarError  # noqa: E402
from dinsar.grid import Grid  # noqa: E402
from dinsar.isce_image import IsceImage, read_band, read_image, write_raster  # noqa: E402
from dinsar.products import (  # noqa: E402
    BYTE_NODATA,
    SENTINEL1_WAVELENGTH_M,
    BlockStats,
    IsceRowReader,
    PairInfo,
    ProductError,
    choose_reference_block,
    coherence_mask,
    downsample2,
    expected_products,
    export_pair,
    label_components,
    los_displacement_to_phase,
    phase_to_los_displacement,
    read_orbit_types,
    read_wavelength,
    rowcol_of,
    window_rows,
)
from dinsar.products.reference import outside_message  # noqa: E402
from dinsar.quicklooks import robust_symmetric_limit  # noqa: E402
from dinsar.records import OrbitEntry, OrbitManifest, RecordError  # noqa: E402

FLOAT_PRODUCTS = [
    "los_displacement.tif",
    "unwrapped_phase.tif",
    "filtered_unwrapped_phase.tif",
    "wrapped_phase.tif",
    "coherence.tif",
    "phase_sigma.tif",
    "incidence_angle.tif",
    "azimuth_angle.tif",
]


@pytest.fixture(scope="module")
def mogi(tmp_path_factory: pytest.TempPathFactory) -> tuple[synthetic.SyntheticRun, Path]:
    root = tmp_path_factory.mktemp("mogi")
    run = synthetic.write_run(root / "work")
    out = root / "products"
    export_pair(run.workdir, out)
    return run, out


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


# --- pure numerics --------------------------------------------------------------------------


def test_positive_phase_is_motion_away_from_the_satellite() -> None:
    lam = 0.0555
    # +4*pi/lambda * 1 cm of range increase (ISCE's sign) -> 1 cm AWAY -> d = -0.01
    assert phase_to_los_displacement(np.array([4 * math.pi / lam * 0.01]), lam)[0] == pytest.approx(-0.01)
    d = np.array([0.02, -0.005, np.nan])
    back = phase_to_los_displacement(los_displacement_to_phase(d, lam), lam)
    np.testing.assert_allclose(back, d, rtol=1e-6)
    with pytest.raises(ProductError):
        phase_to_los_displacement(np.zeros(2), 0.0)


def test_coherence_mask_keeps_nodata_apart() -> None:
    coh = np.array([[0.1, 0.3, 0.9, np.nan]], dtype=np.float32)
    assert coherence_mask(coh, 0.3).tolist() == [[0, 1, 1, BYTE_NODATA]]


def test_downsample2_matches_nanmean_and_nearest() -> None:
    values = np.arange(35, dtype=np.float32).reshape(5, 7)
    values[0, 0] = np.nan
    values[4, 6] = np.nan  # an odd-edge block with no valid pixel stays nodata
    padded = np.pad(values, ((0, 1), (0, 1)), constant_values=np.nan).reshape(3, 2, 4, 2)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmean(padded, axis=(1, 3))
    np.testing.assert_allclose(downsample2(values, "AVERAGE", np.nan), expected, equal_nan=True)
    assert downsample2(values, "NEAREST", np.nan).shape == (3, 4)
    labels = np.array([[1, 255], [2, 2]], dtype=np.uint8)
    assert downsample2(labels, "NEAREST", 255).tolist() == [[1]]


def test_label_components_four_connected() -> None:
    mask = np.array(
        [
            [1, 1, 0, 1],
            [0, 1, 0, 1],
            [1, 0, 0, 1],
            [1, 1, 1, 1],
        ],
        dtype=bool,
    )
    labels, count = label_components(mask)
    assert count == 2  # the U on the right joins the bottom row and the left column
    assert labels[0, 0] == labels[1, 1] != labels[3, 3]
    assert labels[2, 0] == labels[0, 3] == labels[3, 0]
    assert (labels[~mask] == 0).all()


def test_auto_reference_picks_the_most_coherent_block_of_the_largest_component() -> None:
    coh = np.array([[0.9, 0.95, 0.2, 0.99], [0.8, 0.85, 0.2, 0.2]], dtype=np.float32)
    ok = np.ones_like(coh, dtype=bool)
    # without conncomp: two coherent areas; the left one (4 blocks) beats the 0.99 singleton
    stats = BlockStats(coh, ok, np.full(coh.shape, -1, dtype=np.int32), None)
    assert choose_reference_block(stats, 0.3)[:2] == (0, 1)
    # with snaphu's labels: component 2 is the largest -> its best block, even if less coherent
    labels = np.array([[1, 1, 2, 2], [2, 2, 2, 2]], dtype=np.int32)
    sizes = np.zeros(256, dtype=np.int64)
    sizes[1], sizes[2] = 128, 384
    assert choose_reference_block(BlockStats(coh, ok, labels, sizes), 0.3)[:2] == (0, 3)
    with pytest.raises(ProductError, match="reference_point"):
        choose_reference_block(BlockStats(coh, np.zeros_like(ok), labels, sizes), 0.3)


def test_robust_limit_and_rowcol() -> None:
    values = np.r_[np.linspace(-1, 1, 1000), 50.0, np.nan]
    assert 0.9 < robust_symmetric_limit(values, 98) < 1.0
    assert robust_symmetric_limit([np.nan]) == 1.0
    assert rowcol_of((11.5, 1 / 1200, 0, 46.45, 0, -1 / 1200), 46.45 - 68.5 / 1200, 11.5 + 177.5 / 1200) == (68, 177)


def test_window_rows_bounded_and_tile_aligned() -> None:
    rows = window_rows(20000, 20, 192, 15000)
    assert rows % 256 == 0 and rows * 20000 * 20 <= 192 * 2**20
    assert window_rows(361, 20, 192, 182) == 182


def test_expected_products_follow_the_geocode_list() -> None:
    listed = ["merged/filt_topophase.unw", "merged/filt_topophase.flat", "merged/topophase.flat",
              "merged/topophase.cor", "merged/phsig.cor", "merged/los.rdr",
              "merged/filt_topophase.unw.conncomp"]  # fmt: skip
    full = expected_products(listed)
    assert set(full) == {"los_displacement", "unwrapped_phase", "filtered_unwrapped_phase",
                         "wrapped_phase", "coherence", "coherence_mask", "phase_sigma",
                         "connected_components", "incidence_angle", "azimuth_angle"}  # fmt: skip
    # without the unfiltered interferogram: the filtered unwrap only, no displacement
    assert set(full) - set(expected_products([e for e in listed if e != "merged/topophase.flat"])) == {
        "unwrapped_phase", "los_displacement"}  # fmt: skip
    assert set(expected_products(["merged/filt_topophase.flat", "merged/topophase.cor"])) == {
        "wrapped_phase", "coherence", "coherence_mask"}  # fmt: skip


def test_orbit_records(tmp_path: Path) -> None:
    def entry(platform: str, kind: str) -> OrbitEntry:
        return OrbitEntry(platform=platform, type=kind, file=f"/orbits/{kind}.EOF",
                          validity=["2021-03-31T22:59:42", "2021-04-02T00:59:42"], granules=[])  # fmt: skip

    OrbitManifest(date="20210401", orbits=[entry("S1A", "POEORB")]).write(tmp_path / "20210401.json")
    OrbitManifest(date="20210413", orbits=[entry("S1B", "RESORB"), entry("S1A", "POEORB")]).write(
        tmp_path / "20210413.json")  # fmt: skip
    assert read_orbit_types(sorted(tmp_path.glob("*.json"))) == {
        "20210401": "POEORB", "20210413": "POEORB+RESORB"}  # fmt: skip
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RecordError, match=r"bad.json is not a valid orbit manifest.*rerun the orbit step"):
        read_orbit_types([tmp_path / "bad.json"])


# --- the known deformation ------------------------------------------------------------------


def test_mogi_uplift_recovered_with_sign_and_magnitude(mogi) -> None:
    run, out = mogi
    disp = read(out / "los_displacement.tif")
    truth = run.los_truth
    peak = np.nanmax(truth)
    assert peak > 0.04  # an uplift seen as motion towards the satellite
    r, c = run.centre_rc
    assert disp[r, c] > 0 and abs(disp[r, c] - truth[r, c]) <= 0.01 * abs(truth[r, c])
    # everywhere within 1 % of the peak, and the location of the maximum is unchanged
    assert np.nanmax(np.abs(disp - truth)) <= 0.01 * peak
    assert np.unravel_index(np.nanargmax(disp), disp.shape) == np.unravel_index(
        np.nanargmax(truth), truth.shape
    )
    # the wavelength came from reference/IW1.xml (the nominal one would be 1.3 % off)
    with rasterio.open(out / "los_displacement.tif") as src:
        assert float(src.tags()["WAVELENGTH_M"]) == pytest.approx(synthetic.WAVELENGTH)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["wavelength_m"] == pytest.approx(synthetic.WAVELENGTH)


def lake(run: synthetic.SyntheticRun) -> np.ndarray:
    out = np.zeros((run.length, run.width), dtype=bool)
    out[run.low_coherence] = True
    return out


# the products from the unfiltered phase: no data below the coherence threshold (cycles.py)
MASKED_BY_COHERENCE = {"los_displacement.tif", "unwrapped_phase.tif"}


def test_nodata_stays_nodata(mogi) -> None:
    run, out = mogi
    disp = read(out / "los_displacement.tif")
    # zero-fill (outside the swath), NaN inputs and the incoherent lake are NaN, nothing else is
    np.testing.assert_array_equal(np.isnan(disp), ~run.valid | lake(run))
    assert np.isnan(read(out / "unwrapped_phase.tif")[run.nan_patch]).all()
    zero_fill = ~run.valid
    zero_fill[run.nan_patch] = False  # only the unw carried NaN there
    for name in FLOAT_PRODUCTS:
        values = read(out / name)
        assert np.isnan(values[zero_fill]).all(), name
        kept = ~zero_fill & run.valid
        if name in MASKED_BY_COHERENCE:
            kept &= ~lake(run)
        assert np.isfinite(values[kept]).all(), name
    # the filtered unwrap keeps the lake (its values are the filter's, not measured phase)
    assert np.isfinite(read(out / "filtered_unwrapped_phase.tif")[run.low_coherence]).all()
    meta = json.loads((out / "metadata.json").read_text())
    masked = meta["stats"]["cycle_transfer"]["masked_pixels"]
    assert masked["incoherent"] == lake(run)[run.valid].sum() and masked["ambiguous"] == 0
    mask = read(out / "coherence_mask.tif")
    assert (mask[zero_fill] == BYTE_NODATA).all()
    assert (mask[run.low_coherence] == 0).all()  # flagged, and the data kept:
    assert np.nanmax(read(out / "coherence.tif")[run.low_coherence]) == pytest.approx(0.1)
    labels = read(out / "connected_components.tif")
    assert (labels[~run.valid] == BYTE_NODATA).all()
    assert set(np.unique(labels[run.valid]).tolist()) == {0, 1, 2}


def test_outputs_are_valid_cogs_on_the_input_grid(mogi) -> None:
    run, out = mogi
    vrt = run.workdir / "merged" / "filt_topophase.unw.geo.vrt"
    with rasterio.open(vrt) as src:
        transform, crs = src.transform, src.crs
    for name in [*FLOAT_PRODUCTS, "coherence_mask.tif", "connected_components.tif"]:
        with rasterio.open(out / name) as src:
            assert src.driver == "GTiff"
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG", name
            assert src.profile["tiled"] and src.block_shapes[0] == (512, 512)
            assert src.overviews(1), name
            assert src.transform == transform and src.crs == crs, name
            assert src.nodata is not None
            assert src.units[0] and src.descriptions[0]
    with rasterio.open(out / "los_displacement.tif") as src:
        tags = src.tags()
        assert "positive towards the satellite" in tags["SIGN_CONVENTION"]
        assert src.units == ("m",)
        assert tags["PAIR"] == "20210401_20210413" and tags["TRACK"] == "168_DESC"
        # the overviews are averages of the valid pixels (what quicklooks and GIS viewers show)
        overview = src.read(1, out_shape=(src.height // 2, src.width // 2))
        full = src.read(1)
    quad = full[:2 * overview.shape[0], :2 * overview.shape[1]].reshape(overview.shape[0], 2, overview.shape[1], 2)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmean(quad, axis=(1, 3))
    np.testing.assert_allclose(overview, expected, rtol=1e-5, equal_nan=True)
    with rasterio.open(out / "incidence_angle.tif") as src:
        assert "vertical" in src.descriptions[0]
    with rasterio.open(out / "azimuth_angle.tif") as src:
        assert "anticlockwise" in src.descriptions[0]


def test_reference_point_latlon_and_auto_remove_the_unwrapper_offset(tmp_path: Path) -> None:
    offset = 2 * math.pi * 3 + 0.7  # snaphu leaves an arbitrary constant
    run = synthetic.write_run(tmp_path / "work", phase_offset=offset)
    row, col = 40, 60
    lat, lon = run.lat_lon(row, col)
    meta = export_pair(run.workdir, tmp_path / "point", reference_point=[lat, lon]).metadata
    disp = read(tmp_path / "point" / "los_displacement.tif")
    assert meta["reference_point"]["method"] == "point"
    assert abs(disp[row, col]) < 1e-5
    window = run.los_truth[row - 1 : row + 2, col - 1 : col + 2]
    truth = np.where(lake(run), np.nan, run.los_truth)
    np.testing.assert_allclose(disp, truth - np.median(window), atol=1e-6)

    meta = export_pair(run.workdir, tmp_path / "auto", reference_point="auto").metadata
    ref = meta["reference_point"]
    assert ref["method"] == "auto" and "component 1" in ref["detail"]
    r0, c0 = ref["row"], ref["col"]
    # in the largest snaphu component (label 1) and not in the low-coherence lake
    assert not (run.low_coherence[0].start <= r0 < run.low_coherence[0].stop
                and run.low_coherence[1].start <= c0 < run.low_coherence[1].stop)  # fmt: skip
    disp = read(tmp_path / "auto" / "los_displacement.tif")
    shift = disp - run.los_truth
    assert np.nanstd(shift) < 1e-6  # a pure constant shift: the offset is gone, the shape kept
    assert abs(disp[r0, c0]) < 2e-3

    with pytest.raises(ProductError, match="outside the geocoded area") as outside:
        export_pair(run.workdir, tmp_path / "outside", reference_point=[10.0, 10.0])
    west, north = run.geotransform[0], run.geotransform[3]
    east, south = west + run.width * synthetic.DLON, north + run.length * synthetic.DLAT
    # the grid's extent, and the question
    assert f"lat {south:.4f}..{north:.4f}, lon {west:.4f}..{east:.4f}" in str(outside.value)
    assert "are lat and lon swapped? products.reference_point is [lat, lon]" in str(outside.value)


def test_reference_point_given_as_lon_lat_is_called_swapped() -> None:
    grid = Grid.from_transform((40.0, 0.01, 0.0, 46.0, 0.0, -0.01), 100, 100)  # lat 45..46
    message = outside_message(grid, 40.5, 45.5)
    assert "lat 45.0000..46.0000, lon 40.0000..41.0000" in message
    assert "lat and lon look swapped: [45.5, 40.5] lies inside" in message


def test_icu_style_run_without_conncomp(tmp_path: Path) -> None:
    run = synthetic.write_run(tmp_path / "work", conncomp=False)
    result = export_pair(run.workdir, tmp_path / "out", reference_point="auto")
    assert "connected_components.tif" not in result.files
    assert "coherence >=" in result.metadata["reference_point"]["detail"]


# --- products translated straight from the ISCE rasters -------------------------------------


def whole_grid_run(workdir: Path) -> synthetic.SyntheticRun:
    """The synthetic run with data everywhere: no zero-fill, no NaN (as the real fixture)."""
    run = synthetic.write_run(workdir)
    for raster in sorted((workdir / "merged").glob("*.geo")):
        image = read_image(raster.with_name(raster.name + ".xml"))
        bands = [read_band(raster, b + 1, image) for b in range(image.bands)]
        if image.data_type != "BYTE":
            bands = [np.where((b == 0) | np.isnan(b), 0.5, b) for b in bands]
        write_raster(raster, bands, image)
    return run


def computed(run: synthetic.SyntheticRun) -> dict[str, np.ndarray]:
    """What the plain band products must hold, computed from the inputs with numpy."""
    merged = run.workdir / "merged"
    unw = [read_band(merged / "filt_topophase.unw.geo", b) for b in (1, 2)]
    cor = [read_band(merged / "topophase.cor.geo", b) for b in (1, 2)]
    inc, az = (read_band(merged / "los.rdr.geo", b) for b in (1, 2))
    phsig = read_band(merged / "phsig.cor.geo", 1)

    def two_band(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.isfinite(a) & np.isfinite(b) & ((a != 0) | (b != 0))

    unw_valid = np.isfinite(unw[1]) & np.isfinite(unw[0]) & (unw[0] != 0)
    labels = read_band(merged / "filt_topophase.unw.conncomp.geo", 1)
    return {
        "filtered_unwrapped_phase.tif": np.where(unw_valid, unw[1], np.nan),
        "coherence.tif": np.where(two_band(*cor), cor[1], np.nan),
        "incidence_angle.tif": np.where(two_band(inc, az), inc, np.nan),
        "azimuth_angle.tif": np.where(two_band(inc, az), az, np.nan),
        "phase_sigma.tif": np.where(np.isfinite(phsig) & (phsig != 0), phsig, np.nan),
        "connected_components.tif": np.where(unw_valid, labels, BYTE_NODATA),
    }


def translated_from(caplog: pytest.LogCaptureFixture) -> set[str]:
    return {r.getMessage().split()[1] for r in caplog.records
            if "(from the ISCE raster)" in r.getMessage()}  # fmt: skip


def test_band_products_come_straight_from_the_isce_rasters_where_their_bytes_are_right(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = whole_grid_run(tmp_path / "whole")
    with caplog.at_level(logging.DEBUG, logger="dinsar"):
        export_pair(run.workdir, tmp_path / "out")
    expected = computed(run)
    assert translated_from(caplog) == set(expected)
    for name, values in expected.items():
        np.testing.assert_array_equal(read(tmp_path / "out" / name), values, err_msg=name)

    # zero-fill (NaN in the products) and a coherence of 0 beside an amplitude (data) from row
    # 96 on: the rows before come from the raster, the rest from the computed values
    cor = run.workdir / "merged" / "topophase.cor.geo"
    bands = np.fromfile(cor, dtype="<f4").reshape(run.length, 2, run.width)
    bands[100, 1, 50:60] = 0.0
    bands[110, :, 50:60] = 0.0
    bands.tofile(cor)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="dinsar"):
        export_pair(run.workdir, tmp_path / "again", memory_budget_mb=0)  # 16-row windows
    assert translated_from(caplog) == set(expected) - {"coherence.tif"}
    coherence = read(tmp_path / "again" / "coherence.tif")
    np.testing.assert_array_equal(coherence, computed(run)["coherence.tif"])
    assert (coherence[100, 50:60] == 0).all() and np.isnan(coherence[110, 50:60]).all()


def test_a_layout_gdal_would_read_otherwise_is_not_translated_from_the_raster(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = whole_grid_run(tmp_path / "work")
    expected = computed(run)["phase_sigma.tif"]
    xml = run.workdir / "merged" / "phsig.cor.geo.xml"
    # "L" is little-endian to our reader; written into a VRT it would say MSB
    xml.write_text(xml.read_text().replace("<value>l</value>", "<value>L</value>"))
    with caplog.at_level(logging.DEBUG, logger="dinsar"):
        export_pair(run.workdir, tmp_path / "out")
    assert "phase_sigma.tif" not in translated_from(caplog)
    np.testing.assert_array_equal(read(tmp_path / "out" / "phase_sigma.tif"), expected)


# --- bad inputs -----------------------------------------------------------------------------


def one_line(exc: DinsarError) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_bad_inputs_are_one_line_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProductError) as err:
        export_pair(tmp_path / "empty", tmp_path / "o1")
    assert "no geocoded products" in one_line(err.value) and "--end=geocode" in str(err.value)

    with pytest.raises(ProductError, match="not a directory"):
        export_pair(tmp_path / "missing", tmp_path / "o2")

    run = synthetic.write_run(tmp_path / "nolam", wavelength=None)
    with pytest.raises(ProductError) as err:
        export_pair(run.workdir, tmp_path / "o3")
    assert "radarwavelength" in one_line(err.value) and "--wavelength" in str(err.value)
    with caplog.at_level(logging.WARNING, logger="dinsar"):
        lam, source = read_wavelength(run.workdir, fallback=SENTINEL1_WAVELENGTH_M)
    assert lam == SENTINEL1_WAVELENGTH_M and "fallback" in source
    assert any("fallback" in r.getMessage() for r in caplog.records)

    run = synthetic.write_run(tmp_path / "trunc")
    unw = run.workdir / "merged" / "filt_topophase.unw.geo"
    unw.write_bytes(unw.read_bytes()[:-100])
    with pytest.raises(ProductError) as err:
        export_pair(run.workdir, tmp_path / "o4")
    assert "truncated" in one_line(err.value)

    run = synthetic.write_run(tmp_path / "noxml")
    (run.workdir / "merged" / "topophase.cor.geo.xml").unlink()
    with pytest.raises(ProductError, match="sidecar"):
        export_pair(run.workdir, tmp_path / "o5")

    run = synthetic.write_run(tmp_path / "radar")
    image = IsceImage("merged/phsig.cor.geo", run.width, run.length, "FLOAT")  # start 0, step 1
    write_raster(run.workdir / "merged" / "phsig.cor.geo", [np.ones((run.length, run.width))], image)
    with pytest.raises(ProductError, match="radar geometry"):
        export_pair(run.workdir, tmp_path / "o6")
    assert not list((tmp_path / "o6").glob("*.tif"))  # nothing half-written is left


def test_failed_export_leaves_no_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = synthetic.write_run(tmp_path / "work")
    import dinsar.products.wrapped as wrapped

    def boom(values: np.ndarray) -> np.ndarray:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(wrapped, "wrapped_phase", boom)
    with pytest.raises(RuntimeError):
        export_pair(run.workdir, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []


def test_row_reader_handles_every_interleave(tmp_path: Path) -> None:
    bands = [np.arange(12, dtype=np.float32).reshape(3, 4) + 100 * b for b in range(3)]
    for scheme in ("BIL", "BIP", "BSQ"):
        path = tmp_path / f"x_{scheme}.geo"
        image = IsceImage(path.name, 4, 3, "FLOAT", 3, scheme, 11.0, 0.1, 47.0, -0.1)
        write_raster(path, bands, image)
        with IsceRowReader(path) as reader:
            got = reader.read_rows(1, 2)
        np.testing.assert_array_equal(got, np.stack(bands)[:, 1:3], err_msg=scheme)


def test_pair_info_title() -> None:
    info = PairInfo("20210401_20210413", "20210401", "20210413", 12, 35.4, "168_DESC")
    assert info.title() == "20210401 \u2192 20210413   Btemp 12 d   Bperp 35 m   track 168_DESC"
    assert "Bperp n/a" in PairInfo("x", bperp_m=float("nan")).title()
