"""One grid per track: the grid arithmetic (dinsar.grid), topsApp's geocode box for it
(dinsar.isce_xml.geocode_bbox_snwe), and pairs of different dates and extents exported onto it.

The pairs are synthetic topsApp run directories (tests/isce_synthetic.py): one on the common
lattice, one shorter, one shifted by whole pixels (and reaching past the track grid), and one
half a pixel off, which the export must refuse.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import isce_synthetic as synthetic  # noqa: E402
import rasterio  # noqa: E402

from dinsar.grid import (  # noqa: E402
    Grid,
    GridError,
    GridMisalignedError,
    Overlap,
    overlap,
    track_grid,
)
from dinsar.isce_image import read_band  # noqa: E402
from dinsar.isce_xml import geocode_bbox_snwe  # noqa: E402
from dinsar.products import BYTE_NODATA, PairInfo, export_pair  # noqa: E402

ARCSEC = 1 / 3600


def lattice(step: float = 2 * ARCSEC, west: float = 10.0, north: float = 47.0) -> Grid:
    """A geocoding DEM's grid (transform origin = ISCE's first sample, as IsceImage.grid)."""
    return Grid((west, step, 0.0, north, 0.0, -step), 4000, 3000)


# --- the track grid ---------------------------------------------------------------------------


@pytest.mark.parametrize("bounds", [(10.3, 46.6, 10.55, 46.9), (10.30001, 46.61234, 10.5, 46.7),
                                    (10.0 + 37 * 2 * ARCSEC, 46.8, 10.0 + 90 * 2 * ARCSEC, 46.9)])  # fmt: skip
def test_track_grid_is_the_lattice_cut_outwards_to_whole_pixels(bounds) -> None:
    dem = lattice()
    grid = track_grid(dem, bounds, margin=0.01)
    step = dem.delta_lon
    assert (grid.delta_lon, grid.delta_lat) == (dem.delta_lon, dem.delta_lat)
    # on the lattice: the origin is a whole number of steps from the DEM's
    for shift in ((grid.transform[0] - dem.transform[0]) / step,
                  (dem.transform[3] - grid.transform[3]) / step):  # fmt: skip
        assert abs(shift - round(shift)) < 1e-6
    # covers the area plus its margin, and one pixel less on any side would not
    west, south, east, north = grid.bounds()
    w, s, e, n = bounds[0] - 0.01, bounds[1] - 0.01, bounds[2] + 0.01, bounds[3] + 0.01
    tol = 1e-4 * step
    assert west <= w + tol and south <= s + tol and east >= e - tol and north >= n - tol
    assert west + step > w and south + step > s and east - step < e and north - step < n


def test_track_grid_of_an_empty_area_is_refused() -> None:
    with pytest.raises(GridError, match="is empty"):
        track_grid(lattice(), (10.5, 46.5, 10.4, 46.9))


# --- placing one grid on another --------------------------------------------------------------


def shifted(grid: Grid, rows: float, cols: float, width: int, length: int) -> Grid:
    x0, dx, _, y0, _, dy = grid.transform
    return Grid((x0 + cols * dx, dx, 0.0, y0 + rows * dy, 0.0, dy), width, length)


def test_aligned_grid_inside_lands_at_its_whole_pixel_offset() -> None:
    track = shifted(lattice(), 100, 200, 300, 250)
    pair = shifted(track, 3, 7, 280, 200)
    place = overlap(pair, track)
    assert place == Overlap(row_offset=3, col_offset=7, rows=(3, 203), cols=(7, 287))
    assert not place.empty and not place.is_identity(pair, track)
    assert overlap(track, track).is_identity(track, track)
    # rows of the track grid -> (first row in the window, the pair's row there, count)
    assert place.window(0, 64) == (3, 0, 61)
    assert place.window(64, 64) == (0, 61, 64)
    assert place.window(192, 64) == (0, 189, 11)
    assert place.window(203, 47) == (0, 0, 0)


def test_partial_overlap_is_clipped_on_every_side() -> None:
    track = shifted(lattice(), 100, 200, 300, 250)
    pair = shifted(track, -5, 290, 40, 20)  # above and right of the track grid
    place = overlap(pair, track)
    assert (place.row_offset, place.col_offset) == (-5, 290)
    assert place.rows == (0, 15) and place.cols == (290, 300)
    assert place.window(0, 10) == (0, 5, 10)
    far = overlap(shifted(track, 400, 0, 10, 10), track)
    assert far.empty and far.window(0, 250) == (0, 0, 0)


def test_float_noise_in_the_origin_is_not_an_offset() -> None:
    track = shifted(lattice(), 100, 200, 300, 250)
    x0, dx, _, y0, _, dy = track.transform
    noisy = Grid((x0 + 12 * dx * (1 + 1e-13), dx, 0.0, y0 + 4 * dy + 1e-12, 0.0, dy), 10, 10)
    assert (overlap(noisy, track).row_offset, overlap(noisy, track).col_offset) == (4, 12)


@pytest.mark.parametrize("rows, cols, axis", [(0.5, 0, "latitude"), (0, 0.25, "longitude"),
                                              (3, 7.01, "longitude")])  # fmt: skip
def test_a_fraction_of_a_pixel_is_refused(rows: float, cols: float, axis: str) -> None:
    track = shifted(lattice(), 100, 200, 300, 250)
    with pytest.raises(GridMisalignedError, match=f"of a pixel off the track grid's lattice in "
                                                  f"{axis}.*refuses"):  # fmt: skip
        overlap(shifted(track, rows, cols, 50, 50), track)


def test_another_posting_is_refused() -> None:
    track = shifted(lattice(), 100, 200, 300, 250)
    pair = Grid((track.transform[0], ARCSEC, 0.0, track.transform[3], 0.0, -ARCSEC), 50, 50)
    with pytest.raises(GridMisalignedError, match="posting .* does not resample"):
        overlap(pair, track)


# --- topsApp's geocode box --------------------------------------------------------------------


def geozero_grid(dem: Grid, snwe: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """(first row, first column, rows, columns) of the DEM that ISCE2's geozero.f90 geocodes
    for a bounding box: its index arithmetic, in radians, with Fortran's truncation."""
    south, north, west, east = (math.radians(v) for v in snwe)
    lat0, lon0 = math.radians(dem.transform[3]), math.radians(dem.transform[0])
    dlat, dlon = math.radians(dem.delta_lat), math.radians(dem.delta_lon)
    min_lat_idx = int((south - lat0) / dlat) + 1
    min_lon_idx = int((west - lon0) / dlon)
    max_lat_idx = int((north - lat0) / dlat)
    max_lon_idx = int((east - lon0) / dlon) + 1
    return max_lat_idx, min_lon_idx, min_lat_idx - max_lat_idx, max_lon_idx - min_lon_idx


@pytest.mark.parametrize("step", [ARCSEC, 2 * ARCSEC, 3 * ARCSEC, 1 / 1200])
@pytest.mark.parametrize("bounds", [(10.3, 46.6, 10.55, 46.9), (10.25, 46.5, 10.75, 46.75),
                                    (10.123456, 46.54321, 10.2, 46.6)])  # fmt: skip
def test_geocode_box_makes_isce_write_exactly_the_track_grid(step: float, bounds) -> None:
    dem = Grid((10.0 + step / 3, step, 0.0, 47.0 - step / 7, 0.0, -step), 10**6, 10**6)
    grid = track_grid(dem, bounds, margin=0.05)
    row0 = round((dem.transform[3] - grid.transform[3]) / step)
    col0 = round((grid.transform[0] - dem.transform[0]) / step)
    assert geozero_grid(dem, geocode_bbox_snwe(grid)) == (row0, col0, grid.length, grid.width)


# --- pairs of one track exported onto its grid ------------------------------------------------

# The track grid: the synthetic lattice from 4 rows above and 5 columns left of the first pair
TRACK = Grid((synthetic.LON0 - 5 * synthetic.DLON, synthetic.DLON, 0.0,
              synthetic.LAT0 - 4 * synthetic.DLAT, 0.0, synthetic.DLAT), 250, 170)  # fmt: skip
FLOAT_PRODUCTS = ("los_displacement.tif", "unwrapped_phase.tif", "coherence.tif",
                  "incidence_angle.tif", "azimuth_angle.tif", "wrapped_phase.tif")  # fmt: skip


@pytest.fixture(scope="module")
def track_pairs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Three pairs of different dates: full, shorter, shifted by whole pixels."""
    root = tmp_path_factory.mktemp("track")
    pairs = {
        "20210401_20210413": dict(origin=(0, 0)),
        "20210413_20210425": dict(origin=(0, 0), length=130),  # a shorter geocoded output
        "20210425_20210507": dict(origin=(3, 7)),  # shifted: reaches past the track grid's edge
    }
    out = {}
    for pair, kwargs in pairs.items():
        ref, sec = pair.split("_")
        run = synthetic.write_run(root / pair / "work", reference_date=ref, secondary_date=sec,
                                  **kwargs)  # fmt: skip
        result = export_pair(run.workdir, root / pair / "products", track_grid=TRACK,
                             pair_info=PairInfo(pair=pair, reference=ref, secondary=sec))  # fmt: skip
        out[pair] = (run, result, kwargs["origin"])
    return out


def on_track(values: np.ndarray, origin: tuple[int, int], fill: float) -> np.ndarray:
    """A pair's raster placed on TRACK at its whole-pixel origin, ``fill`` elsewhere."""
    placed = np.full((TRACK.length, TRACK.width), fill, dtype=values.dtype)
    r0, c0 = origin[0] + 4, origin[1] + 5
    rows = min(values.shape[0], TRACK.length - r0)
    cols = min(values.shape[1], TRACK.width - c0)
    placed[r0 : r0 + rows, c0 : c0 + cols] = values[:rows, :cols]
    return placed


def test_every_product_of_every_pair_is_on_the_track_grid(track_pairs) -> None:
    transforms = set()
    for _, result, _ in track_pairs.values():
        for name, path in result.files.items():
            if not name.endswith(".tif"):
                continue
            with rasterio.open(path) as src:
                assert (src.width, src.height) == (TRACK.width, TRACK.length), (path, src.shape)
                assert src.crs.to_epsg() == 4326
                transforms.add(src.transform.to_gdal())
        grid = result.metadata["grid"]
        assert (grid["width"], grid["length"]) == (TRACK.width, TRACK.length)
        assert grid["pair_placement"]["track_grid"] is True
    assert transforms == {TRACK.transform}  # bit for bit the same transform


def test_values_land_in_their_pixels_with_no_data_around(track_pairs) -> None:
    for run, result, origin in track_pairs.values():
        merged = run.workdir / "merged"
        amplitude = read_band(merged / "topophase.cor.geo", 1)
        coherence = read_band(merged / "topophase.cor.geo", 2)
        valid = np.isfinite(amplitude) & ((amplitude != 0) | (coherence != 0))
        expected = on_track(np.where(valid, coherence, np.nan).astype(np.float32), origin, np.nan)
        with rasterio.open(result.files["coherence.tif"]) as src:
            got = src.read(1)
        np.testing.assert_array_equal(got, expected)
        incidence = read_band(merged / "los.rdr.geo", 1)
        with rasterio.open(result.files["incidence_angle.tif"]) as src:
            got = src.read(1)
        np.testing.assert_array_equal(
            got, on_track(np.where(incidence != 0, incidence, np.nan).astype(np.float32), origin,
                          np.nan))  # fmt: skip
        # the padding is no data in every product, the byte ones included
        outside = ~np.isfinite(on_track(np.ones(run.los_truth.shape, np.float32), origin, np.nan))
        assert outside.any()
        for name in FLOAT_PRODUCTS:
            with rasterio.open(result.files[name]) as src:
                assert np.isnan(src.read(1)[outside]).all(), name
        with rasterio.open(result.files["connected_components.tif"]) as src:
            assert (src.read(1)[outside] == BYTE_NODATA).all()
        # the displacement keeps its place too: the truth placed on the track grid
        with rasterio.open(result.files["los_displacement.tif"]) as src:
            los = src.read(1)
        truth = on_track(run.los_truth.astype(np.float32), origin, np.nan)
        both = np.isfinite(los) & np.isfinite(truth)
        assert both.sum() > 0.5 * np.isfinite(truth).sum()
        np.testing.assert_allclose(los[both], truth[both], atol=2e-4)


def test_a_pair_off_the_lattice_is_refused_not_resampled(tmp_path: Path) -> None:
    run = synthetic.write_run(tmp_path / "work", origin=(0.5, 0))
    out = tmp_path / "products"
    with pytest.raises(GridMisalignedError, match="0.5000 of a pixel off the track grid's "
                                                  "lattice in latitude"):  # fmt: skip
        export_pair(run.workdir, out, track_grid=TRACK)
    assert not list(out.glob("*.tif")) and not list(out.glob(".*"))


def test_a_pair_on_the_track_grid_is_exported_as_before(tmp_path: Path) -> None:
    run = synthetic.write_run(tmp_path / "work")
    own = Grid(run.geotransform, run.width, run.length)
    on_grid = export_pair(run.workdir, tmp_path / "a", track_grid=own)
    alone = export_pair(run.workdir, tmp_path / "b")
    assert on_grid.metadata["grid"]["pair_placement"]["row_offset"] == 0
    for name in ("coherence.tif", "los_displacement.tif", "incidence_angle.tif"):
        with rasterio.open(on_grid.files[name]) as a, rasterio.open(alone.files[name]) as b:
            assert a.transform == b.transform
            np.testing.assert_array_equal(a.read(1), b.read(1))


# --- the plan's estimate ----------------------------------------------------------------------


def test_plan_states_the_grid_it_will_use() -> None:
    from dinsar.config import validate_config
    from dinsar.dem import planned_track_grid
    from dinsar.plan import grid_lines

    roi = [10.3, 46.6, 10.55, 46.9]
    cfg = validate_config({"roi": roi, "dates": {"start": "2021-01-01", "end": "2021-03-01"},
                           "dem": {"source": "glo_90", "geocode_resample": 1}})  # fmt: skip
    planned = planned_track_grid(cfg.dem, cfg)
    assert planned is not None
    grid, how = planned
    assert grid.delta_lon == pytest.approx(3 * ARCSEC) and how.startswith("glo_90 x 1")
    west, south, east, north = grid.bounds()
    margin = cfg.isce.geocode_margin
    assert west <= roi[0] - margin < west + grid.delta_lon
    assert north >= roi[3] + margin > north + grid.delta_lat
    text = "\n".join(grid_lines(planned, margin))
    assert "EPSG:4326" in text and f"{grid.width} x {grid.length} pixels" in text
    own_file = cfg.dem.model_copy(update={"file": "my_dem.tif"})  # its posting is its own
    assert planned_track_grid(own_file, cfg) is None
    assert "posting: dem.file's" in "\n".join(grid_lines(None, margin))
