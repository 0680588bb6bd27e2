"""The DEM of a track, in ISCE format: stitched with dem_stitcher, or converted from the user's file.

Coverage. topo maps every pixel of the bursts topsApp keeps, and geocode reads the DEM over the
geocoding box. So the DEM covers, for every used date of the track, the bursts ISCE's crop
keeps for the ROI in the swaths that meet it (dinsar.bursts: exact, from the annotations in the
zips), mapped at the heights they can have, plus the geocoding box (ROI + isce.geocode_margin),
plus ``dem.buffer`` degrees. The heights are the user DEM's own range (``dem.file``), or the
-500..9000 m ISCE uses for its crop (a downloaded DEM). So the "DEM outside coverage" and
runTopo edge failures cannot happen, and a user DEM that covers the processed bursts is
accepted even when it does not cover whole scenes. Before the download the plan estimates the
DEM from the scene footprints and says so.

Heights are ellipsoidal (WGS84): dem_stitcher removes the geoid with ``dst_ellipsoidal_height``;
a user DEM declared ``egm08``/``egm96`` is converted the same way (``remove_geoid``).

Registration. dem_stitcher with ``dst_area_or_point='Point'`` keeps GLO-30's native grid, whose
samples sit on whole arc-seconds; its (GDAL) transform names the corner half a pixel up-left of
the first sample. ISCE treats ``startingvalue`` as the position of the first *sample*
(topozero: lon = start + i*delta; ISCE's own SRTM stitcher writes the integer-degree tile edge
where the first SRTM sample lies), so we write ``corner + delta/2``. GDAL's ISCE driver (used
by HyP3) writes the corner instead: half a pixel (15 m) off.

Tiles. dem_stitcher finds tiles through its tile index (``data/<dataset>.parquet``: tile id,
footprint, URL) and, given ``dst_tile_dir``, reads tiles already present there instead of
downloading them. We fetch the tiles ourselves into the shared ``cache/dem_tiles`` first
(resumable, locked, CA bundle, retries; ``dem.tiles_url`` replaces the scheme and host of each
URL), so dem_stitcher itself makes no tile request. The geoid is read by GDAL from
``dem.geoid`` (a path or URL) or dem_stitcher's default.
"""

from __future__ import annotations

import logging
import math
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any
from urllib.parse import urlsplit

import numpy as np
import requests
from shapely.geometry import MultiPolygon, Polygon, box

from .config import Config, Dem, Network
from .download import DEFAULT_NETWORK, DownloadError, Target, download
from .errors import DinsarError
from .grid import Grid, GridError, track_grid
from .isce_image import IsceImage, IsceImageError, read_image, write_raster
from .records import DemManifest
from .roi import parse_roi

log = logging.getLogger(__name__)

DEM_NAME = "dem.wgs84"
GEOCODE_DEM_NAME = "geocode_dem.wgs84"
ZIPPED_DATASETS = ("srtm_v3", "nasadem")  # tiles come as .zip and need Earthdata login
# Each dataset's posting in arc-seconds (dem_stitcher's tiles), for the plan's estimate of the
# track grid before the DEM exists; the DEM step reads the real one from the tiles.
DATASET_POSTING_ARCSEC: dict[str, float] = {
    "glo_30": 1, "glo_90": 3, "srtm_v3": 1, "nasadem": 1, "3dep": 1 / 3,
}  # fmt: skip
# Nominal Sentinel-1 IW pixel spacings (m) and mid-swath incidences (deg), for the same estimate;
# the DEM step takes the real ones from the annotations (multilooked_spacing).
NOMINAL_IW_SPACING_M = {"azimuth": 13.9, "slant_range": 2.33}
NOMINAL_IW_INCIDENCE_DEG = (33.7, 38.9, 43.1)
ARCSEC = 1 / 3600
# property names ISCE accepts in a DEM's XML (isce_image_xml.md); anything else is fatal there
ISCE_DEM_PROPERTIES = frozenset(
    {
        "isce_version", "access_mode", "byte_order", "data_type", "extra_file_name", "family",
        "file_name", "image_type", "length", "name", "number_bands", "reference", "scheme",
        "width", "xmax", "xmin", "metadata_location",
    }
)  # fmt: skip
ISCE_COORDINATE_PROPERTIES = frozenset(
    {"delta", "endingvalue", "family", "name", "size", "startingvalue"}
)


class DemError(DinsarError):
    """The DEM cannot be made (coverage, tiles, local file) or came out wrong."""


# --- coverage (pure) --------------------------------------------------------------------------


def dem_requirement(
    dates: Sequence[Sequence[Any]],
    roi: Polygon | MultiPolygon,
    *,
    swaths: str | Sequence[int],
    buffer: float,
    geocode_margin: float,
    heights: Sequence[float],
    what: str = "the track",
) -> tuple[float, float, float, float]:
    """[W, S, E, N] the DEM must cover: see the module docstring.

    dates: per used date, its SAFEs (``dinsar.safe.Safe``); swaths: ``isce.swaths``. Rounded
    outwards to 1e-6 degree so that the same inputs always give the same bounds.
    """
    from .bursts import union_box
    from .safe import roi_bursts

    roi_box = roi.bounds
    boxes = []
    for safes in dates:
        chosen = sorted(roi_bursts(safes, roi)) if swaths == "auto" else list(swaths)
        for safe in safes:
            for number in chosen:
                swath = safe.swaths.get(number)
                if swath is None:
                    continue
                boxes += [b.geometry.box(swath.grid, heights)
                          for b in swath.bursts_isce_keeps(roi_box)]  # fmt: skip
    if not boxes:
        raise DemError(f"no burst of {what} meets the ROI; the DEM would be empty")
    w, s, e, n = roi_box
    geocode = (w - geocode_margin, s - geocode_margin, e + geocode_margin, n + geocode_margin)
    west, south, east, north = union_box([*boxes, geocode])  # type: ignore[misc]
    return (
        max(math.floor((west - buffer) * 1e6) / 1e6, -180.0),
        max(math.floor((south - buffer) * 1e6) / 1e6, -90.0),
        min(math.ceil((east + buffer) * 1e6) / 1e6, 180.0),
        min(math.ceil((north + buffer) * 1e6) / 1e6, 90.0),
    )


def file_height_range(file: str | Path, bounds: Sequence[float]) -> tuple[float, float] | None:
    """Lowest and highest height of a DEM file within [W, S, E, N] (None: no overlap)."""
    import rasterio
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    with rasterio.open(file) as src:
        if src.crs is None:
            return None
        w, s, e, n = transform_bounds("EPSG:4326", src.crs, *bounds, densify_pts=21)
        window = from_bounds(w, s, e, n, src.transform).intersection(
            rasterio.windows.Window(0, 0, src.width, src.height)
        )
        values = src.read(1, window=window, masked=True).astype(np.float64)
    values = values.filled(np.nan) if np.ma.isMaskedArray(values) else values
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    return float(finite.min()), float(finite.max())


def missing_parts(have: Sequence[float], need: Sequence[float]) -> list[str]:
    """The strips of ``need`` outside ``have`` (both [W, S, E, N]), side by side, in words."""
    hw, hs, he, hn = have
    nw, ns, ne, nn = need
    parts = []
    if nw < hw:
        parts.append(f"lon {nw:.4f}..{min(hw, ne):.4f}, lat {ns:.4f}..{nn:.4f} (west)")
    if ne > he:
        parts.append(f"lon {max(he, nw):.4f}..{ne:.4f}, lat {ns:.4f}..{nn:.4f} (east)")
    inner_w, inner_e = max(nw, hw), min(ne, he)
    if ns < hs and inner_w < inner_e:
        parts.append(f"lon {inner_w:.4f}..{inner_e:.4f}, lat {ns:.4f}..{min(hs, nn):.4f} (south)")
    if nn > hn and inner_w < inner_e:
        parts.append(f"lon {inner_w:.4f}..{inner_e:.4f}, lat {max(hn, ns):.4f}..{nn:.4f} (north)")
    return parts


def block_mean(values: np.ndarray, k: int) -> np.ndarray:
    """Mean of k x k blocks (the partial blocks at the far edges are dropped)."""
    if k == 1:
        return values.astype(np.float32, copy=True)
    length, width = (values.shape[0] // k) * k, (values.shape[1] // k) * k
    trimmed = values[:length, :width].astype(np.float64)
    coarse = trimmed.reshape(length // k, k, width // k, k).mean(axis=(1, 3))
    return coarse.astype(np.float32)


def fill_voids(values: np.ndarray) -> tuple[np.ndarray, int]:
    """NaN (ocean, voids) -> 0, as ISCE needs finite heights; returns the count replaced."""
    voids = ~np.isfinite(values)
    count = int(voids.sum())
    out = values.astype(np.float32, copy=True)
    out[voids] = 0.0
    return out, count


# --- ISCE files -------------------------------------------------------------------------------


def write_isce_dem(path: Path, values: np.ndarray, grid: Grid) -> IsceImage:
    """Write the float32 raster with its .xml and .vrt, then check them (see check_isce_dem)."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    if values.shape != (grid.length, grid.width):
        raise DemError(f"internal: DEM array {values.shape} does not match its grid {grid}")
    image = IsceImage(
        file_name=str(path),
        width=grid.width,
        length=grid.length,
        data_type="FLOAT",
        first_lon=float(grid.first_lon),
        delta_lon=float(grid.delta_lon),
        first_lat=float(grid.first_lat),
        delta_lat=float(grid.delta_lat),
        image_type="dem",
        reference="WGS84",
    )
    write_raster(path, [values], image)
    check_isce_dem(path, grid)
    return image


def check_isce_dem(path: Path, grid: Grid | None = None) -> None:
    """Raise DemError unless the DEM's XML, VRT and raster are what topsApp needs.

    Checks every field isce_image_xml.md marks required, that no property ISCE would reject
    is present, that the XML and the VRT agree exactly (GeoTransform = start1, delta1, 0,
    start2, 0, delta2) and that the file holds width x length x 4 bytes.
    """
    from .isce_image import read_xml_properties

    path = Path(path)
    xml_path = path.with_name(path.name + ".xml")
    vrt_path = path.with_name(path.name + ".vrt")
    problems: list[str] = []
    props = read_xml_properties(xml_path)
    unknown = sorted(
        k for k, v in props.items() if not isinstance(v, dict) and k not in ISCE_DEM_PROPERTIES
    )
    if unknown:
        problems.append(f"properties ISCE rejects: {unknown}")
    for name in ("coordinate1", "coordinate2"):
        comp = props.get(name)
        if not isinstance(comp, dict):
            problems.append(f"component {name} missing")
            continue
        problems += [
            f"{name}.{k} missing" for k in ("startingvalue", "delta", "size") if k not in comp
        ]
        problems += [f"{name}.{k} not allowed" for k in comp if k not in ISCE_COORDINATE_PROPERTIES]
    if problems:
        raise DemError(f"{xml_path}: " + "; ".join(problems))
    image = read_image(xml_path)
    if image.reference != "WGS84":
        problems.append(
            f"reference is {image.reference!r}, not 'WGS84' (ISCE would treat it as EGM96)"
        )
    if image.file_name != str(path.resolve()):
        problems.append(f"file_name {image.file_name!r} is not the raster's absolute path")
    if not (image.delta_lon > 0 and image.delta_lat < 0):
        problems.append("deltas must be > 0 (lon) and < 0 (lat)")
    if path.stat().st_size != image.expected_size:
        problems.append(
            f"raster has {path.stat().st_size} bytes, the XML implies {image.expected_size}"
        )
    if grid is not None:
        wanted = (
            grid.first_lon,
            grid.delta_lon,
            grid.first_lat,
            grid.delta_lat,
            grid.width,
            grid.length,
        )
        got = (
            image.first_lon,
            image.delta_lon,
            image.first_lat,
            image.delta_lat,
            image.width,
            image.length,
        )
        if wanted != got:  # exact: the deltas must survive the text round trip at full precision
            problems.append(f"XML grid {got} differs from the intended {wanted}")
    vrt = ET.parse(vrt_path).getroot()
    transform = tuple(float(v) for v in (vrt.findtext("GeoTransform") or "").split(","))
    if transform != image.geotransform():
        problems.append(f"VRT GeoTransform {transform} differs from the XML {image.geotransform()}")
    if (vrt.get("rasterXSize"), vrt.get("rasterYSize")) != (str(image.width), str(image.length)):
        problems.append("VRT size differs from the XML")
    source = vrt.find("VRTRasterBand/SourceFilename")
    if source is None or source.text != path.name or source.get("relativeToVRT") != "1":
        problems.append("VRT SourceFilename is not the raster's name relative to the VRT")
    if problems:
        raise DemError(f"{path}: " + "; ".join(problems))


# --- tiles ------------------------------------------------------------------------------------


def mirror_url(url: str, tiles_url: str | None) -> str:
    """Replace scheme and host of a tile URL with ``tiles_url`` (its path prefix is kept)."""
    if not tiles_url:
        return url
    path = urlsplit(url).path
    return tiles_url.rstrip("/") + path


def tile_urls(bounds: Sequence[float], dem_name: str) -> list[str]:
    """URLs of the dataset tiles dem_stitcher will read for ``bounds`` (its own tile index)."""
    from dem_stitcher.datasets import get_overlapping_dem_tiles, intersects_missing_glo_30_tiles

    urls = get_overlapping_dem_tiles(list(bounds), dem_name).url.tolist()
    if dem_name == "glo_30" and intersects_missing_glo_30_tiles(list(bounds)):
        # dem_stitcher patches GLO-30's gaps (Armenia, Azerbaijan) with GLO-90 tiles
        urls += get_overlapping_dem_tiles(list(bounds), "glo_90_missing").url.tolist()
    return urls


def fetch_tiles(
    bounds: Sequence[float],
    dem_name: str,
    tile_dir: Path,
    session: requests.Session,
    network: Network = DEFAULT_NETWORK,
    tiles_url: str | None = None,
    progress: IO[str] | None = None,
) -> list[Path]:
    """Put every tile dem_stitcher needs for ``bounds`` into ``tile_dir`` (already there: no request)."""
    import rasterio

    tile_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    urls = tile_urls(bounds, dem_name)
    if not urls:
        raise DemError(f"{dem_name} has no tile within {list(bounds)} (open ocean?); use dem.file")
    for url in urls:
        name = url.rsplit("/", 1)[-1]
        final = tile_dir / (name.replace(".zip", ".tif") if name.endswith(".zip") else name)
        if not final.exists():
            dest = tile_dir / name
            try:
                # no progress bar: a tile is small, its one log line is enough
                download(Target(mirror_url(url, tiles_url), dest, label=name), session, network)
            except DownloadError as exc:
                raise DemError(f"DEM tile {exc}") from None  # the message starts with the name
            if name.endswith(".zip"):
                from dem_stitcher.stitcher import download_tiles_to_gtiff

                download_tiles_to_gtiff([str(dest)], dem_name, tile_dir)  # reads the local zip
                dest.unlink(missing_ok=True)
            try:
                with rasterio.open(final) as ds:
                    ds.read(1, window=((0, 1), (0, 1)))
            except rasterio.errors.RasterioError as exc:
                final.unlink(missing_ok=True)
                raise DemError(
                    f"DEM tile {name} from {mirror_url(url, tiles_url)} is not a readable "
                    f"GeoTIFF ({exc}); it was deleted: check dem.tiles_url and run again"
                ) from None
        paths.append(final)
    return paths


def gdal_env(network: Network = DEFAULT_NETWORK) -> dict[str, Any]:
    """GDAL options for remote reads (the geoid): our CA bundle, the network.timeout/retries/
    backoff of every other download (GDAL's own default waits forever), no directory listing."""
    env: dict[str, Any] = {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "GDAL_HTTP_MAX_RETRY": str(network.retries),
        "GDAL_HTTP_RETRY_DELAY": str(network.backoff),
        "GDAL_HTTP_TIMEOUT": str(max(1, math.ceil(network.timeout))),
        "GDAL_HTTP_CONNECTTIMEOUT": str(max(1, math.ceil(network.timeout))),
    }
    if network.ca_bundle:
        # GDAL_CURL_CA_BUNDLE wins over a CURL_CA_BUNDLE set in the environment (as on many
        # clusters), like pin_ca_bundle does for requests
        env["GDAL_CURL_CA_BUNDLE"] = network.ca_bundle
        env["CURL_CA_BUNDLE"] = network.ca_bundle
    return env


def _geoid_for(dem_name: str, geoid: str | None) -> str | None:
    if geoid is None:
        return None
    if "://" in geoid or geoid.startswith("/vsi"):
        return geoid  # read remotely by GDAL (a window only)
    if not Path(geoid).is_file():
        raise DemError(f"dem.geoid {geoid!r} not found; give a geoid GeoTIFF path or URL, or null")
    return str(Path(geoid).resolve())


def stitch(
    bounds: Sequence[float],
    dem_name: str,
    tile_dir: Path,
    geoid: str | None = None,
    network: Network = DEFAULT_NETWORK,
) -> tuple[np.ndarray, dict[str, Any]]:
    """dem_stitcher's ellipsoidal, pixel-is-point DEM from the tiles in ``tile_dir`` (2-D float32)."""
    import rasterio
    from dem_stitcher import stitch_dem
    from dem_stitcher.exceptions import NoDEMCoverage

    try:
        with rasterio.Env(**gdal_env(network)), warnings.catch_warnings():
            # "The directory ... exists; We are writing new files to this directory": the tile
            # cache is meant to exist (it is shared); the warning would only alarm users
            warnings.filterwarnings(
                "ignore", message="The directory .* exists", category=UserWarning
            )
            values, profile = stitch_dem(
                list(bounds),
                dem_name,
                dst_ellipsoidal_height=True,
                dst_area_or_point="Point",
                dst_tile_dir=tile_dir,
                geoid_path=_geoid_for(dem_name, geoid),
                n_threads_downloading=4,
            )
    except NoDEMCoverage as exc:
        raise DemError(f"{dem_name} does not cover {list(bounds)} ({exc}); use dem.file") from None
    except rasterio.errors.RasterioError as exc:
        raise DemError(
            f"stitching the DEM failed while reading a tile or the geoid ({exc}); the geoid is "
            f"read over the network ({geoid or 'dem_stitcher default'}) unless dem.geoid is a "
            "local file: run again (raise network.retries or network.timeout for a flaky "
            "connection), or download the geoid once and set dem.geoid to that file"
        ) from None
    return np.asarray(values, dtype=np.float32), profile


# --- a local DEM ------------------------------------------------------------------------------


def _target_resolution(src: Any) -> tuple[float, float]:
    if src.crs.is_geographic:
        return abs(src.res[0]), abs(src.res[1])
    # projected metres: the nearest whole arc-second posting (1" ~ 30.9 m)
    arcsec = max(1, round(float(np.mean(src.res)) / 30.87))
    return arcsec * ARCSEC, arcsec * ARCSEC


def local_dem(
    file: str | Path,
    vertical_datum: str,
    bounds: Sequence[float],
    geoid: str | None = None,
    network: Network = DEFAULT_NETWORK,
    what: str = "the scenes",
) -> tuple[np.ndarray, dict[str, Any]]:
    """The user's DEM over ``bounds`` on an EPSG:4326 point grid, with ellipsoidal heights.

    Any CRS is accepted; a geographic file keeps its own sample positions (no resampling
    beyond the crop); a projected one is resampled bilinearly to the nearest whole-arc-second
    posting. A file not covering ``bounds`` is an error naming the missing extent.
    """
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import Affine
    from rasterio.warp import Resampling, reproject, transform_bounds

    file = Path(file)
    west, south, east, north = bounds
    with rasterio.open(file) as src:
        if src.crs is None:
            raise DemError(
                f"dem.file {file} has no coordinate reference system; add one (gdal_edit.py -a_srs)"
            )
        fw, fs, fe, fn = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=51)
        have, need = box(fw, fs, fe, fn), box(west, south, east, north)
        if not have.buffer(1e-9).contains(need):
            missing = "; ".join(missing_parts((fw, fs, fe, fn), bounds))
            raise DemError(
                f"dem.file {file} covers lon {fw:.4f}..{fe:.4f}, lat {fs:.4f}..{fn:.4f} but "
                f"{what} need lon {west:.4f}..{east:.4f}, lat {south:.4f}..{north:.4f} (the "
                f"bursts topsApp processes + dem.buffer); missing: {missing}. Give a DEM that "
                "covers it, lower dem.buffer, or remove dem.file to download one"
            )
        rx, ry = _target_resolution(src)
        if src.crs.is_geographic:
            # stay on the file's own samples: first sample position + whole steps
            x0, y0 = src.transform.c + rx / 2, src.transform.f - ry / 2
        else:
            x0 = y0 = 0.0
        first_lon = x0 + math.floor((west - x0) / rx) * rx
        first_lat = y0 + math.ceil((north - y0) / ry) * ry
        width = int(math.ceil((east - first_lon) / rx - 1e-9)) + 1
        length = int(math.ceil((first_lat - south) / ry - 1e-9)) + 1
        transform = Affine(rx, 0.0, first_lon - rx / 2, 0.0, -ry, first_lat + ry / 2)
        values = np.full((length, width), np.nan, dtype=np.float32)
        reproject(
            source=rasterio.band(src, 1),
            destination=values,
            src_nodata=src.nodata,
            dst_transform=transform,
            dst_crs=CRS.from_epsg(4326),
            dst_nodata=np.nan,
            resampling=Resampling.bilinear,
        )
    profile = {
        "driver": "GTiff",
        "dtype": "float32",
        "count": 1,
        "width": width,
        "height": length,
        "crs": CRS.from_epsg(4326),
        "transform": transform,
        "nodata": np.nan,
    }
    if vertical_datum in ("egm08", "egm96"):
        from dem_stitcher.geoid import get_geoid_path, remove_geoid

        geoid_path = _geoid_for("", geoid) or get_geoid_path(
            "egm_08" if vertical_datum == "egm08" else "egm_96"
        )
        log.info("converting %s heights to ellipsoidal with geoid %s", vertical_datum, geoid_path)
        with rasterio.Env(**gdal_env(network)):
            values = remove_geoid(values[np.newaxis, ...], profile, geoid_path)[0].astype(
                np.float32
            )
    return values, profile


# --- the whole DEM step -----------------------------------------------------------------------


def geocode_factor(resample: int | str, product_spacing_m: float | None, grid: Grid) -> int:
    """How many DEM samples make one geocoding-DEM sample (topsApp geocodes onto that grid).

    auto: the largest whole factor whose posting stays within the multilooked pixel spacing
    (``multilooked_spacing``), so the products keep the data's resolution: 2 for GLO-30
    (1") at 7 x 19 looks (62..98 m pixels), 1 for a 3" DEM.
    """
    if resample != "auto":
        return int(resample)
    if not product_spacing_m:
        return 1
    posting_m = abs(grid.delta_lat) * 111_320.0
    return max(1, int(math.floor(product_spacing_m / posting_m + 1e-6)))


def multilooked_spacing(swaths: Iterable[Any], range_looks: int, azimuth_looks: int) -> float:
    """The finest ground spacing (m) of the multilooked data over the swaths (``safe.Swath``):
    azimuth spacing x azimuth looks, or slant-range spacing / sin(incidence) x range looks."""
    spacings = []
    for swath in swaths:
        ground_range = swath.range_pixel_spacing / math.sin(math.radians(swath.mid_incidence))
        spacings += [swath.azimuth_pixel_spacing * azimuth_looks, ground_range * range_looks]
    if not spacings:
        raise DemError("internal: no swath to take the multilooked pixel spacing from")
    return min(spacings)


def build_dem(
    settings: Dem,
    track: str,
    bounds: Sequence[float],
    out_dir: Path,
    tile_dir: Path,
    session: requests.Session | None = None,
    network: Network = DEFAULT_NETWORK,
    product_spacing_m: float | None = None,
    progress: IO[str] | None = None,
) -> DemManifest:
    """Write ``dem.wgs84`` and ``geocode_dem.wgs84`` (+ .xml/.vrt) over ``bounds`` [W, S, E, N]
    and return the manifest. ``product_spacing_m``: the multilooked pixel spacing that
    ``dem.geocode_resample: auto`` follows."""
    out_dir = out_dir.resolve()
    bounds = tuple(bounds)
    tiles: list[str] = []
    if settings.file:
        values, profile = local_dem(
            settings.file, settings.file_vertical_datum or "ellipsoid", bounds, settings.geoid,
            network, what=f"the scenes of track {track}",
        )  # fmt: skip
        source = "file"
    else:
        if session is None:
            raise DemError("internal: a session is needed to fetch DEM tiles")
        tiles = [
            p.name
            for p in fetch_tiles(
                bounds, settings.source, tile_dir, session, network, settings.tiles_url, progress
            )
        ]
        values, profile = stitch(bounds, settings.source, tile_dir, settings.geoid, network)
        source = settings.source
    try:
        grid = Grid.from_transform(profile["transform"], values.shape[1], values.shape[0])
    except GridError as exc:
        raise DemError(f"the DEM of track {track}: {exc}") from None
    _check_extent(grid, track, bounds)
    filled, voids = fill_voids(values)
    if voids:
        log.info("%d DEM samples without data (ocean, voids) set to 0 m", voids)
    dem_path = out_dir / DEM_NAME
    write_isce_dem(dem_path, filled, grid)
    k = geocode_factor(settings.geocode_resample, product_spacing_m, grid)
    geo_grid = grid.coarsen(k)
    geo_path = out_dir / GEOCODE_DEM_NAME
    write_isce_dem(geo_path, block_mean(filled, k), geo_grid)
    log.info(
        "DEM for track %s: %d x %d samples at %.2f\" (geocoding DEM %d x %d at %.2f\")",
        track, grid.width, grid.length, grid.delta_lon * 3600,
        geo_grid.width, geo_grid.length, geo_grid.delta_lon * 3600,
    )  # fmt: skip
    return DemManifest(
        track=track,
        dem=str(dem_path),
        geocode_dem=str(geo_path),
        bounds=list(bounds),
        source=source,
        file=str(Path(settings.file).resolve()) if settings.file else None,
        vertical_datum="WGS84",
        input_vertical_datum=settings.file_vertical_datum if settings.file else "geoid (removed)",
        geoid=settings.geoid,
        registration="point",
        extent=list(grid.sample_bounds()),
        posting=[grid.delta_lon, grid.delta_lat],
        size=[grid.width, grid.length],
        geocode_posting=[geo_grid.delta_lon, geo_grid.delta_lat],
        geocode_size=[geo_grid.width, geo_grid.length],
        geocode_resample=k,
        product_spacing_m=product_spacing_m,
        voids_set_to_zero=voids,
        tiles=tiles,
    )


def geocode_lattice(manifest: DemManifest) -> Grid:
    """The grid of the track's geocoding DEM, whose samples topsApp's geocode writes, read from
    its ISCE XML as the geocoded products are read (``IsceImage.grid``)."""
    xml = Path(manifest.geocode_dem + ".xml")
    try:
        return read_image(xml).grid()
    except (OSError, IsceImageError, GridError) as exc:
        raise DemError(f"the geocoding DEM of track {manifest.track} ({xml}): {exc}; "
                       "re-make the DEM (delete its dem.json)") from None  # fmt: skip


def track_grid_for(manifest: DemManifest, cfg: Config) -> Grid:
    """The one grid of every pair of the track: the geocoding DEM's pixels that cover the area
    plus ``isce.geocode_margin`` (dinsar.grid.track_grid). topsApp's geocode bounding box
    (dinsar.isce_xml.geocode_bbox_snwe) and the export (dinsar.products.export) both take it."""
    lattice = geocode_lattice(manifest)
    grid = track_grid(lattice, parse_roi(cfg.roi).bounds, cfg.isce.geocode_margin)
    (w, s, e, n), (dw, ds, de, dn) = grid.bounds(), lattice.bounds()
    if w < dw or s < ds or e > de or n > dn:
        log.warning("the track grid %s reaches past the geocoding DEM %s of track %s: no data "
                    "there; raise dem.buffer", grid.bounds(), lattice.bounds(), manifest.track)  # fmt: skip
    return grid


def planned_track_grid(settings: Dem, cfg: Config) -> tuple[Grid, str] | None:
    """The plan's estimate of the track grid (before the DEM exists), and how it was estimated;
    None for a ``dem.file``, whose posting is known only once it is read.

    The dataset's posting times ``dem.geocode_resample`` (``auto``: from nominal IW spacings),
    on a lattice of whole postings; the real lattice is the geocoding DEM's (track_grid_for),
    which can sit a fraction of this posting away, so the bounds may differ by a pixel.
    """
    if settings.file:
        return None
    step = DATASET_POSTING_ARCSEC[settings.source] * ARCSEC
    lattice = Grid((0.0, step, 0.0, 0.0, 0.0, -step), 1, 1)
    if settings.geocode_resample == "auto":
        swaths = [SimpleNamespace(azimuth_pixel_spacing=NOMINAL_IW_SPACING_M["azimuth"],
                                  range_pixel_spacing=NOMINAL_IW_SPACING_M["slant_range"],
                                  mid_incidence=incidence)
                  for incidence in NOMINAL_IW_INCIDENCE_DEG]  # fmt: skip
        spacing = multilooked_spacing(swaths, cfg.isce.range_looks, cfg.isce.azimuth_looks)
        k = geocode_factor("auto", spacing, lattice)
        how = f"{settings.source} x {k} (auto, from nominal IW pixels of ~{spacing:.0f} m)"
    else:
        k = int(settings.geocode_resample)
        how = f"{settings.source} x {k} (dem.geocode_resample)"
    grid = track_grid(lattice.coarsen(k), parse_roi(cfg.roi).bounds, cfg.isce.geocode_margin)
    return grid, how


def _check_extent(grid: Grid, track: str, bounds: Sequence[float]) -> None:
    """The samples must reach the requested bounds (within one posting)."""
    west, south, east, north = grid.sample_bounds()
    w, s, e, n = bounds
    tol_x, tol_y = abs(grid.delta_lon) * 1.01, abs(grid.delta_lat) * 1.01
    if west > w + tol_x or east < e - tol_x or south > s + tol_y or north < n - tol_y:
        raise DemError(
            f"the DEM of track {track} reaches lon {west:.4f}..{east:.4f}, lat "
            f"{south:.4f}..{north:.4f}, short of the needed {list(bounds)}"
        )
