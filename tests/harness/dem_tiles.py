"""A DEM tile mirror on the local HTTPS server: real dem-stitcher fixture tiles, synthetic elsewhere.

Serves ``<prefix>/<tile id>/<tile id>.tif`` - the path part of dem_stitcher's tile URLs, so the
workflow's ``dem.tiles_url: <server>/<prefix>`` points dem_stitcher's tile index here. The
four Los Angeles crops of real GLO-30 tiles are served under their Copernicus names (as
SOURCES.md says); any other Copernicus tile id is answered with a small synthetic tile
(0.5 arc-minute, point-registered like GLO-30, smooth heights), so a workflow anywhere on Earth
gets a DEM without fixture data. Geoid rasters are served under ``<prefix>/geoid/<name>``.
Every response supports Range (GDAL reads the geoid with ranged requests).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from .server import FaultQueue, LocalHTTPSServer, Request, Response, bytes_response, text_response

LA_TILES = {
    "Copernicus_DSM_COG_10_N33_00_W118_00_DEM": "los_angeles_tile_0.tif",
    "Copernicus_DSM_COG_10_N33_00_W119_00_DEM": "los_angeles_tile_1.tif",
    "Copernicus_DSM_COG_10_N34_00_W118_00_DEM": "los_angeles_tile_2.tif",
    "Copernicus_DSM_COG_10_N34_00_W119_00_DEM": "los_angeles_tile_3.tif",
}
TILE_ID = re.compile(r"Copernicus_DSM_COG_(10|30)_([NS])(\d\d)_00_([EW])(\d\d\d)_00_DEM")
SYNTHETIC_SAMPLES = 120  # per degree: 30 arc-seconds


def synthetic_height(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Smooth, deterministic terrain (metres) for synthetic tiles."""
    return (800 + 300 * np.sin(np.radians(lat) * 40) * np.cos(np.radians(lon) * 30)).astype(
        np.float32
    )


def synthetic_geoid_height(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (15 * np.sin(np.radians(lat) * 2) + 8 * np.cos(np.radians(lon))).astype(np.float32)


def _geotiff(values: np.ndarray, transform: object, point: bool) -> bytes:
    import rasterio
    from rasterio.io import MemoryFile

    profile = {
        "driver": "GTiff",
        "dtype": "float32",
        "count": 1,
        "width": values.shape[1],
        "height": values.shape[0],
        "crs": "EPSG:4326",
        "transform": transform,
        "compress": "deflate",
        "tiled": True,
        "blockxsize": 128,
        "blockysize": 128,
    }
    with rasterio.Env(), MemoryFile() as memfile:
        with memfile.open(**profile) as ds:
            ds.write(values, 1)
            ds.update_tags(AREA_OR_POINT="Point" if point else "Area")
        return bytes(memfile.read())


@functools.lru_cache(maxsize=256)
def synthetic_tile(tile_id: str) -> bytes:
    """A 1x1 degree tile like GLO-30's: first sample on the tile's NW integer corner, Point."""
    from rasterio.transform import Affine

    match = TILE_ID.fullmatch(tile_id)
    if not match:
        raise ValueError(f"not a Copernicus tile id: {tile_id}")
    south = int(match[3]) * (1 if match[2] == "N" else -1)
    west = int(match[5]) * (1 if match[4] == "E" else -1)
    n = SYNTHETIC_SAMPLES
    res = 1.0 / n
    lon = west + res * np.arange(n)
    lat = south + 1 - res * np.arange(n)
    lon2, lat2 = np.meshgrid(lon, lat)
    transform = Affine(res, 0, west - res / 2, 0, -res, south + 1 + res / 2)
    return _geotiff(synthetic_height(lon2, lat2), transform, point=True)


@functools.lru_cache(maxsize=4)
def synthetic_geoid(step: float = 1.0) -> bytes:
    """A global geoid-like raster (Area registered, ``step`` degrees)."""
    from rasterio.transform import Affine

    nx, ny = int(round(360 / step)), int(round(180 / step))
    lon = -180 + step * (np.arange(nx) + 0.5)
    lat = 90 - step * (np.arange(ny) + 0.5)
    lon2, lat2 = np.meshgrid(lon, lat)
    return _geotiff(
        synthetic_geoid_height(lon2, lat2), Affine(step, 0, -180, 0, -step, 90), point=False
    )


class DemTileServer:
    """Copernicus-style DEM tiles and geoid files under ``prefix`` on the shared server."""

    def __init__(
        self, server: LocalHTTPSServer, prefix: str = "/dem", synthesize: bool = True
    ) -> None:
        self.server = server
        self.prefix = prefix.rstrip("/")
        self.synthesize = synthesize
        self.tiles: dict[str, bytes | Path] = {}
        self.files: dict[str, bytes | Path] = {}
        self.faults = FaultQueue()
        # the geoid route is added last: the most recent matching route wins
        self._routes = [
            server.add_route(
                "GET",
                re.compile(re.escape(self.prefix) + r"/(?P<id>[^/]+)/(?P<file>[^/]+)\.tif"),
                self._tile,
                name="dem-tiles",
            ),  # fmt: skip
            server.add_route(
                "GET",
                re.compile(re.escape(self.prefix) + r"/geoid/(?P<name>[^/]+)"),
                self._geoid,
                name="dem-geoid",
            ),  # fmt: skip
        ]

    @property
    def url(self) -> str:
        """What ``dem.tiles_url`` should be."""
        return self.server.url + self.prefix

    def geoid_url(self, name: str) -> str:
        return f"{self.server.url}{self.prefix}/geoid/{name}"

    def add_los_angeles(self, shared_dir: Path) -> None:
        """The dem-stitcher golden-test tiles under their Copernicus names, and the EGM08 crop."""
        folder = shared_dir / "fixtures" / "dem-stitcher"
        for tile_id, name in LA_TILES.items():
            self.tiles[tile_id] = folder / "los_angeles_tiles" / name
        self.files["egm_08_los_angeles.tif"] = folder / "egm_08_los_angeles.tif"

    def add_synthetic_geoid(self, name: str = "synthetic_geoid.tif") -> str:
        self.files[name] = synthetic_geoid()
        return self.geoid_url(name)

    def reset(self) -> None:
        self.faults.clear()

    def close(self) -> None:
        self.faults.clear()
        for route in self._routes:
            route.remove()

    def requests(self) -> list:
        return self.server.requests(self.prefix + "/")

    def _tile(self, request: Request) -> Response:
        assert request.match is not None
        tile_id, file = request.match["id"], request.match["file"]
        if tile_id != file:
            return text_response("no such key\n", 404)
        faulted = self.faults.next_response(lambda status: text_response("fault\n", status))
        if faulted is not None:
            return faulted
        data = self.tiles.get(tile_id)
        if data is None and self.synthesize and TILE_ID.fullmatch(tile_id):
            data = synthetic_tile(tile_id)
        if data is None:
            return text_response("no such key\n", 404)
        return bytes_response(request, data, content_type="image/tiff")

    def _geoid(self, request: Request) -> Response:
        assert request.match is not None
        data = self.files.get(request.match["name"])
        if data is None:
            return text_response("no such key\n", 404)
        return bytes_response(request, data, content_type="image/tiff")


def write_tile(path: Path, tile_id: str) -> Path:
    """Write a synthetic tile to ``path`` (e.g. to pre-seed a tile cache)."""
    path.write_bytes(synthetic_tile(tile_id))
    return path


__all__ = ["DemTileServer", "LA_TILES", "synthetic_geoid", "synthetic_tile", "write_tile"]
