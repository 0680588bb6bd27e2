"""Writing a product as a Cloud-Optimized GeoTIFF, window by window.

The overview pyramid is reduced from the windows as they are written; GDAL's COG driver gets it
ready-made through a VRT (<Overview> elements), so it never reads the full raster a second time
to compute overviews. The full resolution comes from a tiled temporary GeoTIFF of the computed
values, or, for a product whose values are the bytes of a band of its ISCE raster as they stand
(``ProductSpec.source_band``, checked window by window), straight from that raster: GDAL 3.10's
COG driver compresses its source again whatever it is, so a copy of unchanged bytes is only I/O.
"""

from __future__ import annotations

import logging
import math
import time
import xml.etree.ElementTree as ET
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path, write_text
from ..grid import Grid
from ..isce_image import render_vrt
from .isce_input import IsceRowReader
from .spec import ProductSpec

log = logging.getLogger(__name__)

# COG settings. ZSTD with the floating-point predictor packs these rasters about as well as
# DEFLATE at a fraction of the CPU time; every GDAL >= 2.3 (QGIS, rasterio, xarray) reads it.
# 512-pixel tiles are the COG default.
COG_OPTIONS: dict[str, str] = {
    "COMPRESS": "ZSTD",
    "LEVEL": "1",
    "PREDICTOR": "YES",
    "BLOCKSIZE": "512",
    "BIGTIFF": "IF_SAFER",
    "NUM_THREADS": "ALL_CPUS",
}
# GDAL block cache during export (MB): big enough for a row of tiles, small enough for 1 GB jobs.
GDAL_CACHE_MB = 128
TEMP_TILE = 256


def gdal_env() -> Any:
    import rasterio

    # rasterio passes GDAL_CACHEMAX to GDALSetCacheMax64: bytes, not MB
    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 2**20, GDAL_NUM_THREADS="ALL_CPUS")


def overview_count(width: int, length: int, smallest: int = 64) -> int:
    """Overview levels (factor 2 each) until the image fits in ``smallest`` pixels.

    GDAL's COG default stops at one tile (512 px), which leaves small products with no overview
    at all; quicklooks and GIS viewers read these levels instead of the full raster.
    """
    levels, size = 0, max(width, length)
    while size > smallest:
        size = (size + 1) // 2
        levels += 1
    return max(1, levels)


def window_rows(width: int, bytes_per_pixel: int, budget_mb: int, length: int) -> int:
    """Rows per window: within the memory budget, a multiple of the temporary tile height."""
    rows = (budget_mb * 2**20) // max(1, width * bytes_per_pixel)
    if rows >= TEMP_TILE:
        rows = rows // TEMP_TILE * TEMP_TILE
    rows = max(16, int(rows))
    return min(rows, length)


def downsample2(values: np.ndarray, mode: str, nodata: float) -> np.ndarray:
    """One overview level: 2x2 reduction (odd edges keep a half block), as GDAL's overviews.

    ``AVERAGE`` averages the valid (non-nodata) pixels of each block, ``NEAREST`` keeps the
    block's first pixel. Output shape is ceil(rows/2) x ceil(cols/2).
    """
    if mode == "NEAREST":
        return values[::2, ::2].copy()
    rows, cols = values.shape
    data = values.astype(np.float32, copy=False)
    if rows % 2 or cols % 2:
        padded = np.full((rows + rows % 2, cols + cols % 2), np.nan, dtype=np.float32)
        padded[:rows, :cols] = data
        data = padded
    # Row pairs, then column pairs, on strided views: far cheaper than a 4-D reduction.
    top, bottom = data[0::2], data[1::2]
    ok_top, ok_bottom = np.isfinite(top), np.isfinite(bottom)
    if not math.isnan(nodata):
        ok_top &= top != nodata
        ok_bottom &= bottom != nodata
    total = np.where(ok_top, top, np.float32(0)) + np.where(ok_bottom, bottom, np.float32(0))
    count = ok_top.view(np.uint8) + ok_bottom.view(np.uint8)
    total = total[:, 0::2] + total[:, 1::2]
    count = count[:, 0::2] + count[:, 1::2]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count  # 0/0 = NaN where the block has no valid pixel
    if math.isnan(nodata):
        return out.astype(values.dtype, copy=False)
    return np.where(np.isfinite(out), np.rint(out), nodata).astype(values.dtype)


def _open_raster(path: Path, grid: Grid, spec: ProductSpec, **creation: Any) -> Any:
    """A single-band GeoTIFF on ``grid`` open for writing."""
    import rasterio
    from affine import Affine

    return rasterio.open(path, "w", driver="GTiff", width=grid.width, height=grid.length, count=1,
                         dtype=spec.dtype, nodata=spec.nodata, crs="EPSG:4326",
                         transform=Affine.from_gdal(*grid.transform), **creation)  # fmt: skip


def _write_rows(dataset: Any, row0: int, values: np.ndarray) -> None:
    from rasterio.windows import Window

    if values.shape[0]:
        dataset.write(values, 1, window=Window(0, row0, values.shape[1], values.shape[0]))


class _Level:
    """One overview level being filled row by row (a small temporary GeoTIFF)."""

    def __init__(self, path: Path, grid: Grid, spec: ProductSpec) -> None:
        self.path, self.grid = path, grid
        self.row = 0
        self.carry: np.ndarray | None = None  # an odd row waiting for its partner
        self.dataset = _open_raster(path, grid, spec)

    def write(self, values: np.ndarray) -> None:
        _write_rows(self.dataset, self.row, values)
        self.row += values.shape[0]


class OverviewPyramid:
    """A product's overview levels, reduced from each window as it is written."""

    def __init__(self, final: Path, spec: ProductSpec, grid: Grid) -> None:
        self.spec = spec
        self.levels: list[_Level] = []
        c, a, _, f, _, e = grid.transform
        width, length = grid.width, grid.length
        for index in range(overview_count(grid.width, grid.length)):
            width, length = (width + 1) // 2, (length + 1) // 2
            # the level covers the same area: its steps are the full extent over its size
            level = Grid((c, a * (grid.width / width), 0.0, f, 0.0, e * (grid.length / length)),
                         width, length)  # fmt: skip
            path = final.with_name(f".{final.name}.ovr{index + 1}.tmp.tif")
            self.levels.append(_Level(path, level, spec))

    def feed(self, rows: np.ndarray, final: bool, index: int = 0) -> None:
        """Reduce rows of level ``index - 1`` (the full resolution for 0) into level ``index``."""
        if index >= len(self.levels):
            return
        level = self.levels[index]
        if level.carry is not None:
            rows = np.concatenate([level.carry, rows])
            level.carry = None
        if not final and rows.shape[0] % 2:
            level.carry, rows = rows[-1:].copy(), rows[:-1]
        if rows.shape[0] == 0:
            return
        reduced = downsample2(rows, self.spec.resampling, self.spec.nodata)
        level.write(reduced)
        self.feed(reduced, final, index + 1)

    def close(self) -> None:
        for level in self.levels:
            if not level.dataset.closed:
                level.dataset.close()

    def check_complete(self) -> None:
        for level in self.levels:
            if level.row != level.grid.length:
                raise AssertionError(f"overview {level.path.name}: {level.row}/{level.grid.length} rows")

    def discard(self) -> None:
        self.close()
        for level in self.levels:
            level.path.unlink(missing_ok=True)


def same_bits(first: np.ndarray, second: np.ndarray) -> bool:
    """Bit for bit equal (NaN payloads and the sign of zero included)."""
    unsigned = np.dtype(f"u{first.dtype.itemsize}")
    return first.dtype == second.dtype and np.array_equal(first.view(unsigned), second.view(unsigned))


class CogWriter:
    """A product written window by window, translated to a COG at ``path`` by :meth:`finish`.

    With ``source`` (the pass's ISCE raster) and a ``spec.source_band``, every window is checked
    to be the bytes of that band; while they all are, no full-resolution temporary is written
    and the COG driver reads the ISCE raster. The first window that is not (zero-fill that the
    product marks NaN, a coherence beside a NaN amplitude...) turns the temporary on, filled
    first with the rows that were.
    """

    def __init__(self, path: Path, spec: ProductSpec, grid: Grid, tags: dict[str, str],
                 source: IsceRowReader | None = None) -> None:  # fmt: skip
        self.final = path
        self.spec = spec
        self.grid = grid
        self.tags = {**tags, **spec.tags}
        self.tmp = path.with_name(f".{path.name}.tmp.tif")
        self.vrt = path.with_name(f".{path.name}.tmp.vrt")
        self.source_vrt = path.with_name(f".{path.name}.src.tmp.vrt")
        self.source = (
            source
            if source is not None and spec.source_band is not None
            and source.dtype.newbyteorder("=") == np.dtype(spec.dtype)
            else None
        )  # fmt: skip
        self._dataset: Any = None if self.source is not None else self._open_temporary()
        self.overviews = OverviewPyramid(path, spec, grid)

    def _open_temporary(self) -> Any:
        return _open_raster(self.tmp, self.grid, self.spec, tiled=True, blockxsize=TEMP_TILE,
                            blockysize=TEMP_TILE, BIGTIFF="IF_SAFER")  # fmt: skip

    def write(self, row0: int, values: np.ndarray, bands: np.ndarray | None = None) -> None:
        """Rows [row0, row0 + len(values)); ``bands``: the input window they came from."""
        values = values.astype(self.spec.dtype, copy=False)
        if self.source is not None:
            assert bands is not None and self.spec.source_band is not None
            if not same_bits(values, bands[self.spec.source_band - 1]):
                self._copy_source_rows(row0)
        if self._dataset is not None:
            _write_rows(self._dataset, row0, values)
        self.overviews.feed(values, final=row0 + values.shape[0] >= self.grid.length)

    def _copy_source_rows(self, stop: int) -> None:
        """Turn the temporary on: rows [0, stop) agreed with the band, so they are its copy."""
        assert self.source is not None and self.spec.source_band is not None
        log.debug("%s is not band %d of %s as it stands: written through a temporary file",
                  self.final.name, self.spec.source_band, self.source.path.name)  # fmt: skip
        self._dataset = self._open_temporary()
        with IsceRowReader(self.source.path) as reader:
            for row0 in range(0, stop, TEMP_TILE):
                bands = reader.read_rows(row0, min(TEMP_TILE, stop - row0))
                _write_rows(self._dataset, row0, bands[self.spec.source_band - 1])
        self.source = None

    def close(self) -> None:
        if self._dataset is not None and not self._dataset.closed:
            self._dataset.close()
        self.overviews.close()

    def rows(self) -> ProductRows:
        """Its full-resolution values read back (once closed), for a pass that derives from it."""
        return ProductRows(self)

    def _gdal_reads_as_we_do(self) -> bool:
        """Spot check of the source VRT: GDAL reads a row of the band as IsceRowReader does."""
        import rasterio
        from rasterio.windows import Window

        assert self.source is not None and self.spec.source_band is not None
        row = self.grid.length // 2
        with rasterio.open(self.source_vrt) as src:
            gdal = src.read(self.spec.source_band, window=Window(0, row, self.grid.width, 1))
        with IsceRowReader(self.source.path) as reader:
            ours = reader.read_rows(row, 1)[self.spec.source_band - 1]
        return same_bits(gdal, ours)

    def _full_resolution(self, band: ET.Element) -> None:
        """The VRT band's source: the temporary, or the band of the ISCE raster."""
        if self.source is not None:
            # the raster's layout as a VRT of its own (absolute path: the inputs may be read-only)
            write_text(self.source_vrt,
                       render_vrt(self.source.image, str(self.source.path.resolve())))  # fmt: skip
            if not self._gdal_reads_as_we_do():
                self._copy_source_rows(self.grid.length)
                self.close()
        path, band_number = (
            (self.tmp, 1) if self.source is None else (self.source_vrt, self.spec.source_band)
        )
        source = ET.SubElement(band, "SimpleSource")
        ET.SubElement(source, "SourceFilename", relativeToVRT="1").text = path.name
        ET.SubElement(source, "SourceBand").text = str(band_number)

    def _write_vrt(self) -> Path:
        """The full resolution with the ready-made overviews, as GDAL's COG driver input."""
        root = ET.Element("VRTDataset", rasterXSize=str(self.grid.width),
                          rasterYSize=str(self.grid.length))  # fmt: skip
        ET.SubElement(root, "SRS").text = "EPSG:4326"
        ET.SubElement(root, "GeoTransform").text = ", ".join(repr(float(v)) for v in self.grid.transform)
        meta = ET.SubElement(root, "Metadata")
        for key, value in sorted(self.tags.items()):
            ET.SubElement(meta, "MDI", key=key).text = str(value)
        gdal_type = {"float32": "Float32", "uint8": "Byte"}[self.spec.dtype]
        band = ET.SubElement(root, "VRTRasterBand", dataType=gdal_type, band="1")
        ET.SubElement(band, "Description").text = self.spec.description
        ET.SubElement(band, "UnitType").text = self.spec.units
        ET.SubElement(band, "NoDataValue").text = (
            "nan" if math.isnan(self.spec.nodata) else str(int(self.spec.nodata))
        )
        band_meta = ET.SubElement(band, "Metadata")
        ET.SubElement(band_meta, "MDI", key="UNITS").text = self.spec.units
        ET.SubElement(band_meta, "MDI", key="DESCRIPTION").text = self.spec.description
        self._full_resolution(band)
        for level in self.overviews.levels:
            overview = ET.SubElement(band, "Overview")
            ET.SubElement(overview, "SourceFilename", relativeToVRT="1").text = level.path.name
            ET.SubElement(overview, "SourceBand").text = "1"
        return write_text(self.vrt, ET.tostring(root, encoding="unicode"))

    def finish(self) -> Path:
        """Translate to the COG at the final path (written atomically)."""
        import rasterio.shutil

        started = time.perf_counter()
        self.close()
        self.overviews.check_complete()
        options = dict(COG_OPTIONS, OVERVIEWS="FORCE_USE_EXISTING")
        if self.spec.dtype == "uint8":
            options["PREDICTOR"] = "NO"
        try:
            with atomic_path(self.final) as part:
                rasterio.shutil.copy(self._write_vrt(), part, driver="COG", **options)
        finally:
            self.discard()
        log.debug("COG %s%s: %.1f s", self.final.name, " (from the ISCE raster)"
                  if self.source is not None else "", time.perf_counter() - started)  # fmt: skip
        return self.final

    def discard(self) -> None:
        self.close()
        for path in (self.tmp, self.vrt, self.source_vrt):
            path.unlink(missing_ok=True)
        self.overviews.discard()


class ProductRows:
    """Rows of a written product, before its COG: from its temporary or from its ISCE band.

    Reads as :class:`IsceRowReader` does, one band: (1, rows, width) windows.
    """

    def __init__(self, writer: CogWriter) -> None:
        self.writer = writer
        self.path = writer.final
        self._stack = ExitStack()
        self._isce: IsceRowReader | None = None
        self._temporary: Any = None

    def __enter__(self) -> ProductRows:
        import rasterio

        if self.writer.source is not None:
            self._isce = self._stack.enter_context(IsceRowReader(self.writer.source.path))
        else:
            self._temporary = self._stack.enter_context(rasterio.open(self.writer.tmp))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def prefetch(self, row0: int, rows: int) -> None:
        if self._isce is not None:
            self._isce.prefetch(row0, rows)

    def read_rows(self, row0: int, rows: int) -> np.ndarray:
        from rasterio.windows import Window

        band = self.writer.spec.source_band
        if self._isce is not None and band is not None:
            return self._isce.read_rows(row0, rows)[band - 1 : band]
        return self._temporary.read(window=Window(0, row0, self.writer.grid.width, rows))
