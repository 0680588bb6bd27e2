"""The track DEM: dem_stitcher from the (mirrored) real GLO-30 tiles, ISCE sidecars, coverage, local DEMs.

Golden data: dem-stitcher's own test set - four GLO-30 crops around Los Angeles, an EGM2008
crop, and ``los_angeles_dem_ellipsoid.tif`` = ``stitch_dem([-118.05, 33.95, -117.95, 34.05],
'glo_30', dst_ellipsoidal_height=True, dst_area_or_point='Point')``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio
import requests
from shapely.geometry import box

from dinsar.config import Dem, Network
from dinsar.dem import (
    DemError,
    block_mean,
    build_dem,
    check_isce_dem,
    dem_requirement,
    fill_voids,
    geocode_factor,
    local_dem,
    mirror_url,
    missing_parts,
    multilooked_spacing,
)
from dinsar.grid import Grid
from dinsar.isce_image import read_band, read_image, read_xml_properties
from dinsar.net import pin_ca_bundle

BOUNDS = (-118.05, 33.95, -117.95, 34.05)
FAST = Network(retries=1, backoff=0.01, timeout=20)
REQUIRED = {  # isce_image_xml.md "Required vs optional fields"
    "coordinate1": ("startingvalue", "delta", "size"),
    "coordinate2": ("startingvalue", "delta", "size"),
}


@pytest.fixture
def golden(shared_dir):
    with rasterio.open(
        shared_dir / "fixtures" / "dem-stitcher" / "los_angeles_dem_ellipsoid.tif"
    ) as ds:
        return ds.read(1), ds.transform


@pytest.fixture
def session(ca_bundle):
    return pin_ca_bundle(requests.Session(), ca_bundle)


@pytest.fixture
def la_dem(dem_tiles, session, ca_bundle, tmp_path):
    """The LA DEM built through the tile mirror, with the geoid read over HTTPS by GDAL."""
    geoid = dem_tiles.geoid_url("egm_08_los_angeles.tif")
    manifest = build_dem(
        Dem(geocode_resample=3, tiles_url=dem_tiles.url, geoid=geoid), "71_DESC", BOUNDS,
        tmp_path / "dem", tmp_path / "tiles", session, FAST.model_copy(update={"ca_bundle": ca_bundle}),
    )  # fmt: skip
    return manifest.model_dump()


def test_golden_ellipsoid_dem_is_reproduced(la_dem, golden, dem_tiles):
    values, transform = golden
    image = read_image(la_dem["dem"] + ".xml")
    dem = read_band(la_dem["dem"], 1, image)
    assert dem.shape == values.shape == (361, 361)
    np.testing.assert_allclose(dem, values, atol=1e-4, rtol=0)
    # pixel-is-point: ISCE's startingvalue is the first sample = GDAL corner + half a pixel
    assert (image.delta_lon, image.delta_lat) == (transform.a, transform.e)
    assert (
        image.first_lon == transform.c + transform.a / 2
        and image.first_lat == transform.f + transform.e / 2
    )
    assert la_dem["extent"] == pytest.approx(list(BOUNDS), abs=1e-12)
    tiles = [e.path.rsplit("/", 1)[1] for e in dem_tiles.requests() if e.path.endswith("_DEM.tif")]
    assert sorted(tiles) == sorted(f"{t}.tif" for t in dem_tiles.tiles)  # the four LA tiles, once
    assert la_dem["source"] == "glo_30" and la_dem["vertical_datum"] == "WGS84"


def test_stitched_transform_is_identical_to_the_golden(
    dem_tiles, session, ca_bundle, tmp_path, golden
):
    from dinsar.dem import fetch_tiles, stitch

    fetch_tiles(BOUNDS, "glo_30", tmp_path / "tiles", session, FAST, dem_tiles.url)
    values, profile = stitch(
        BOUNDS,
        "glo_30",
        tmp_path / "tiles",
        dem_tiles.geoid_url("egm_08_los_angeles.tif"),
        FAST.model_copy(update={"ca_bundle": ca_bundle}),
    )
    assert profile["transform"] == golden[1]
    np.testing.assert_allclose(values, golden[0], atol=1e-4, rtol=0)


def test_isce_xml_has_every_required_field(la_dem):
    for key in ("dem", "geocode_dem"):
        raster = Path(la_dem[key])
        props = read_xml_properties(raster.with_name(raster.name + ".xml"))
        for component, fields in REQUIRED.items():
            assert all(f in props[component] for f in fields), (key, component)
        assert props["data_type"] == "FLOAT"
        assert props["file_name"] == str(raster) and raster.is_absolute()
        assert props["reference"] == "WGS84"  # else ISCE takes it for EGM96 and converts again
        assert props["coordinate1"]["delta"] > 0 > props["coordinate2"]["delta"]
        assert (
            props["coordinate1"]["size"] == props["width"]
            and props["coordinate2"]["size"] == props["length"]
        )
        assert raster.stat().st_size == props["width"] * props["length"] * 4
        vrt = ET.parse(raster.with_name(raster.name + ".vrt")).getroot()
        c1, c2 = props["coordinate1"], props["coordinate2"]
        transform = [float(v) for v in vrt.findtext("GeoTransform").split(",")]
        assert transform == [
            c1["startingvalue"],
            c1["delta"],
            0.0,
            c2["startingvalue"],
            0.0,
            c2["delta"],
        ]
        assert vrt.find("VRTRasterBand/SourceFilename").text == raster.name
        check_isce_dem(raster)
    # full precision: the text of the delta is the float's repr, not a rounded %g
    xml = Path(la_dem["dem"] + ".xml").read_text()
    assert (
        "<value>0.0002777777777777778</value>" in xml
        and "<value>-0.0002777777777777778</value>" in xml
    )


def test_geocoding_dem_is_three_times_coarser_block_mean(la_dem):
    fine = read_band(la_dem["dem"], 1)
    geo_image = read_image(la_dem["geocode_dem"] + ".xml")
    geo = read_band(la_dem["geocode_dem"], 1, geo_image)
    assert geo.shape == (120, 120) and la_dem["geocode_size"] == [120, 120]
    assert geo_image.delta_lon == pytest.approx(3 / 3600, rel=1e-12)
    assert geo_image.first_lon == pytest.approx(
        -118.05 + 1 / 3600, abs=1e-12
    )  # centre of the first 3x3 block
    np.testing.assert_allclose(geo[0, 0], fine[:3, :3].mean(), rtol=1e-6)


def test_a_second_build_reuses_the_tile_cache(la_dem, dem_tiles, session, ca_bundle, tmp_path):
    dem_tiles.server.clear_log()
    build_dem(
        Dem(geocode_resample=1, tiles_url=dem_tiles.url,
            geoid=dem_tiles.geoid_url("egm_08_los_angeles.tif")), "71_DESC", BOUNDS,
        tmp_path / "dem2", tmp_path / "tiles", session, FAST.model_copy(update={"ca_bundle": ca_bundle}),
    )  # fmt: skip
    assert [e for e in dem_tiles.requests() if e.path.endswith("_DEM.tif")] == []


def test_a_broken_tile_is_deleted_and_named(dem_tiles, session, ca_bundle, tmp_path):
    dem_tiles.tiles["Copernicus_DSM_COG_10_N34_00_W118_00_DEM"] = b"<html>not a tiff</html>"
    with pytest.raises(
        DemError,
        match="Copernicus_DSM_COG_10_N34_00_W118_00_DEM.tif from https://.* is not a readable GeoTIFF",
    ):
        build_dem(Dem(tiles_url=dem_tiles.url), "71_DESC", BOUNDS, tmp_path / "dem",
                  tmp_path / "tiles", session, FAST)  # fmt: skip
    assert not (tmp_path / "tiles" / "Copernicus_DSM_COG_10_N34_00_W118_00_DEM.tif").exists()


def test_a_missing_tile_names_the_mirror(dem_tiles, session, tmp_path):
    dem_tiles.synthesize = False
    with pytest.raises(
        DemError, match=r"DEM tile Copernicus_DSM_COG_10_N00_00_E006_00_DEM.tif: .*HTTP 404"
    ):
        build_dem(Dem(tiles_url=dem_tiles.url), "1_ASC", (6.1, 0.1, 6.2, 0.2), tmp_path / "dem",
                  tmp_path / "tiles", session, FAST)  # fmt: skip


def test_mirror_keeps_the_path():
    url = (
        "https://copernicus-dem-30m.s3.amazonaws.com/Copernicus_DSM_COG_10_N34_00_W118_00_DEM/x.tif"
    )
    assert (
        mirror_url(url, "https://mirror.example/dem/")
        == "https://mirror.example/dem/Copernicus_DSM_COG_10_N34_00_W118_00_DEM/x.tif"
    )
    assert mirror_url(url, None) == url


# --- coverage ------------------------------------------------------------------------------------


REAL_ZIP = "S1B_IW_SLC__1SDV_20210401T052622_20210401T052650_026269_032297_EFA4.zip"


def test_dem_covers_the_bursts_topsapp_keeps_not_whole_scenes(shared_dir):
    """The real annotation and the real run's ROI: ISCE kept IW1 bursts 4-6. The DEM must
    cover them at every height they can have (plus the buffer), and nothing of IW2/IW3."""
    from dinsar.bursts import ISCE_CROP_HEIGHTS
    from dinsar.safe import read_safe

    real = read_safe(shared_dir / "fixtures" / "xarray-sentinel" / REAL_ZIP, "vv")
    roi = box(11.50, 46.30, 11.80, 46.45)
    need = dem_requirement([[real]], roi, swaths="auto", buffer=0.05, geocode_margin=0.05,
                           heights=(300.0, 2500.0))  # fmt: skip
    iw1 = real.swaths[1]
    kept = iw1.bursts_isce_keeps(roi.bounds)
    assert [b.number for b in kept] == [4, 5, 6]
    for burst in kept:
        w, s, e, n = burst.geometry.box(iw1.grid, (300.0, 2500.0))
        assert need[0] <= w - 0.05 + 1e-6 and need[2] >= e + 0.05 - 1e-6
        assert need[1] <= s - 0.05 + 1e-6 and need[3] >= n + 0.05 - 1e-6
    scene = box(*iw1.bursts[0].polygon().union(iw1.bursts[-1].polygon()).bounds)
    assert box(*need).area < 0.5 * scene.buffer(0.05).area  # far less than the scene
    # the -500..9000 m of ISCE's crop reach further than the file's own heights
    wide = dem_requirement([[real]], roi, swaths="auto", buffer=0.05, geocode_margin=0.05,
                           heights=ISCE_CROP_HEIGHTS)  # fmt: skip
    assert box(*wide).contains(box(*need)) and box(*wide).area > box(*need).area
    with pytest.raises(DemError, match="no burst of the track meets the ROI"):
        dem_requirement([[real]], box(0, 0, 1, 1), swaths="auto", buffer=0.2,
                        geocode_margin=0.05, heights=(0.0, 100.0))  # fmt: skip


def test_missing_names_only_what_is_missing():
    need = (10.0, 40.0, 11.0, 41.0)
    assert missing_parts((10.0, 40.0, 10.8, 41.0), need) == [
        "lon 10.8000..11.0000, lat 40.0000..41.0000 (east)"]  # fmt: skip
    # a DEM inside the requirement on every side: four strips, not the whole requirement
    parts = missing_parts((10.1, 40.2, 10.9, 40.9), need)
    assert parts == [
        "lon 10.0000..10.1000, lat 40.0000..41.0000 (west)",
        "lon 10.9000..11.0000, lat 40.0000..41.0000 (east)",
        "lon 10.1000..10.9000, lat 40.0000..40.2000 (south)",
        "lon 10.1000..10.9000, lat 40.9000..41.0000 (north)",
    ]
    assert missing_parts(need, need) == []


def test_geocoded_posting_follows_the_looks(shared_dir):
    from dinsar.safe import read_safe

    real = read_safe(shared_dir / "fixtures" / "xarray-sentinel" / REAL_ZIP, "vv")
    spacing = multilooked_spacing(real.swaths.values(), range_looks=19, azimuth_looks=7)
    assert 55 < spacing < 90  # ground range at 19 looks is finer than azimuth at 7 (98 m)
    glo30 = Grid.from_first_sample(11.0, 1 / 3600, 47.0, -1 / 3600, 100, 100)
    three = Grid.from_first_sample(11.0, 3 / 3600, 47.0, -3 / 3600, 100, 100)
    assert geocode_factor("auto", spacing, glo30) == 2  # 62 m: not coarser than the data
    assert geocode_factor("auto", spacing, three) == 1  # a 3" DEM is already coarser
    assert geocode_factor(3, spacing, three) == 3


def test_grid_numerics():
    grid = Grid.from_first_sample(10.0, 0.5, 20.0, -0.5, 7, 5)
    assert grid.sample_bounds() == (10.0, 18.0, 13.0, 20.0)
    coarse = grid.coarsen(3)
    assert (coarse.first_lon, coarse.delta_lon, coarse.width, coarse.length) == (10.5, 1.5, 2, 1)
    values = np.arange(35, dtype=np.float32).reshape(5, 7)
    np.testing.assert_allclose(block_mean(values, 3), [[8.0, 11.0]])
    filled, count = fill_voids(np.array([[np.nan, 1.0], [np.inf, 2.0]]))
    assert count == 2 and filled.tolist() == [[0.0, 1.0], [0.0, 2.0]]


def test_check_catches_a_missing_reference(la_dem):
    xml_path = Path(la_dem["dem"] + ".xml")
    text = xml_path.read_text()
    xml_path.write_text(text.replace('<property name="reference">', '<property name="datum">'))
    with pytest.raises(DemError, match=r"properties ISCE rejects: \['datum'\]"):
        check_isce_dem(Path(la_dem["dem"]))


# --- a local DEM ---------------------------------------------------------------------------------


def write_utm_copy(source: Path, dest: Path) -> Path:
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    with rasterio.open(source) as src:
        transform, width, height = calculate_default_transform(
            src.crs, "EPSG:32611", src.width, src.height, *src.bounds, resolution=30
        )
        profile = {
            **src.profile,
            "crs": "EPSG:32611",
            "transform": transform,
            "width": width,
            "height": height,
        }
        with rasterio.open(dest, "w", **profile) as dst:
            reproject(rasterio.band(src, 1), rasterio.band(dst, 1), resampling=Resampling.bilinear)
    return dest


def test_local_dem_in_utm_is_reprojected_to_lon_lat(shared_dir, tmp_path, golden):
    utm = write_utm_copy(
        shared_dir / "fixtures" / "dem-stitcher" / "los_angeles_dem_ellipsoid.tif",
        tmp_path / "utm.tif",
    )
    inner = (-118.04, 33.96, -117.96, 34.04)
    values, profile = local_dem(utm, "ellipsoid", inner)
    grid = Grid.from_transform(profile["transform"], values.shape[1], values.shape[0])
    assert grid.delta_lon == pytest.approx(1 / 3600)
    assert grid.first_lon <= inner[0] + 1e-9 and grid.last_lon >= inner[2] - 1e-9
    # compare with the golden on the golden's samples (both whole arc-seconds)
    col = round((grid.first_lon - (golden[1].c + golden[1].a / 2)) / golden[1].a)
    row = round((grid.first_lat - (golden[1].f + golden[1].e / 2)) / golden[1].e)
    ref = golden[0][row : row + values.shape[0], col : col + values.shape[1]]
    diff = np.abs(values - ref)
    assert np.nanmedian(diff) < 1.0 and np.nanpercentile(diff, 99) < 8  # two bilinear resamplings
    for shift in (
        (0, 1),
        (1, 0),
        (0, -1),
        (-1, 0),
    ):  # and no half-pixel shift: the fit is best unshifted
        moved = golden[0][
            row + shift[0] : row + shift[0] + values.shape[0],
            col + shift[1] : col + shift[1] + values.shape[1],
        ]
        assert np.nanmedian(np.abs(values - moved)) > np.nanmedian(diff)


def test_local_geoid_dem_is_converted_to_ellipsoidal(shared_dir, tmp_path, golden):
    folder = shared_dir / "fixtures" / "dem-stitcher"
    values, profile = local_dem(
        folder / "los_angeles_dem_geoid.tif",
        "egm08",
        BOUNDS,
        geoid=str(folder / "egm_08_los_angeles.tif"),
    )
    assert profile["transform"] == golden[1]  # a geographic file keeps its own samples
    np.testing.assert_allclose(values, golden[0], atol=1e-3, rtol=0)


def test_local_dem_not_covering_names_the_missing_extent(shared_dir):
    file = shared_dir / "fixtures" / "dem-stitcher" / "los_angeles_dem_ellipsoid.tif"
    with pytest.raises(DemError) as err:
        local_dem(
            file, "ellipsoid", (-118.05, 33.95, -117.90, 34.05), what="the scenes of track 71_DESC"
        )
    message = str(err.value)
    assert "covers lon -118.0501..-117.9499" in message
    assert "the scenes of track 71_DESC need lon -118.0500..-117.9000" in message
    assert "missing: lon -117.9499..-117.9000, lat 33.9500..34.0500 (east)" in message
    assert "lower dem.buffer, or remove dem.file" in message
