"""Reading a topsApp run directory: the geocoded ``merged/*.geo`` rasters, what their zeros mean,
and the radar wavelength from the swath metadata.

Band layouts follow reference/isce2/products.json. :class:`IsceRowReader` reads whole rows
straight from the raw file, so memory stays at the size of a window whatever the raster size.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from ..grid import Grid, Overlap
from ..isce_image import (
    NUMPY_TYPES,
    IsceImage,
    IsceImageError,
    component_properties,
    iter_properties,
    read_image,
)
from .spec import BoolArray, FloatArray, ProductError

log = logging.getLogger(__name__)

# Nominal Sentinel-1 C-band wavelength (c / 5.405000454 GHz). Only a last-resort fallback that
# the caller must ask for: the wavelength of record is the one in the pair's metadata.
SENTINEL1_WAVELENGTH_M = 0.05546576

# The geocoded inputs: MergedInputs field -> (topsApp geocode-list entries, the first present
# wins; bands ISCE writes). The raster of an entry is merged/<entry>.geo.
ISCE_INPUTS: dict[str, tuple[tuple[str, ...], int]] = {
    "unw": (("filt_topophase.unw",), 2),
    "flat": (("filt_topophase.flat",), 1),
    "ifg": (("topophase.flat",), 1),  # unfiltered: the unwrapped phase's value (products.cycles)
    "cor": (("topophase.cor",), 2),
    "phsig": (("phsig.cor",), 1),
    "los": (("los.rdr",), 2),
    "conncomp": (("filt_topophase.unw.conncomp", "filt_topophase.conncomp"), 1),  # snaphu, icu
}
GEO_SUFFIX = ".geo"


# ------------------------------------------------------------------------------------------------
# What counts as data in ISCE's rasters
# ------------------------------------------------------------------------------------------------


def valid_unwrapped(amplitude: FloatArray, phase: FloatArray) -> BoolArray:
    """snaphu zeroes both bands where there is no interferogram; NaN is never data."""
    return np.isfinite(phase) & np.isfinite(amplitude) & (amplitude != 0)


def valid_complex(values: npt.NDArray[np.complexfloating[Any, Any]]) -> BoolArray:
    return np.isfinite(values) & (values != 0)


def valid_two_band(first: FloatArray, second: FloatArray) -> BoolArray:
    """Geocoding zero-fills both bands outside the radar footprint."""
    return np.isfinite(first) & np.isfinite(second) & ((first != 0) | (second != 0))


def valid_nonzero(values: FloatArray) -> BoolArray:
    return np.isfinite(values) & (values != 0)


# ------------------------------------------------------------------------------------------------
# The geocoded rasters
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergedInputs:
    """The geocoded topsApp rasters of one pair (absent optional ones are None)."""

    workdir: Path
    unw: Path | None
    flat: Path | None
    ifg: Path | None
    cor: Path | None
    phsig: Path | None
    los: Path | None
    conncomp: Path | None

    def present(self) -> dict[str, Path]:
        return {
            k: v
            for k, v in asdict(self).items()
            if k != "workdir" and v is not None
        }


def find_merged_inputs(workdir: str | Path, merged_dir: str = "merged") -> MergedInputs:
    """Locate the geocoded rasters; each must come with its ISCE ``.xml``."""
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise ProductError(f"{workdir} is not a directory; give the topsApp run directory")
    merged = workdir / merged_dir
    geo = sorted(merged.glob("*" + GEO_SUFFIX)) if merged.is_dir() else []
    if not geo:
        raise ProductError(
            f"no geocoded products in {merged}/ (no *.geo files): run topsApp up to the geocode "
            "step (topsApp.py topsApp.xml --end=geocode) and give the run directory"
        )

    def pick(entries: tuple[str, ...]) -> Path | None:
        for entry in entries:
            name = entry + GEO_SUFFIX
            path = merged / name
            if path.is_file():
                if not path.with_name(name + ".xml").is_file():
                    raise ProductError(
                        f"{path} has no ISCE sidecar {name}.xml; copy it along with the raster "
                        "(the band layout and grid are read from it)"
                    )
                return path
        return None

    found = MergedInputs(workdir, **{key: pick(entries) for key, (entries, _) in ISCE_INPUTS.items()})
    if found.unw is None and found.flat is None:
        unw, flat = ISCE_INPUTS["unw"][0][0], ISCE_INPUTS["flat"][0][0]
        raise ProductError(
            f"{merged}/ has neither {unw}{GEO_SUFFIX} nor {flat}{GEO_SUFFIX}: nothing to export; "
            f"add 'merged/{unw}' and 'merged/{flat}' to the geocode list"
        )
    return found


class IsceRowReader:
    """Reads whole rows of an ISCE raster (any interleave) straight from the file.

    One contiguous read per window for BIL/BIP; no memory map, so the resident set stays at the
    size of the window however large the file is.
    """

    def __init__(self, raster: Path) -> None:
        self.path = raster
        try:
            self.image: IsceImage = read_image(raster.with_name(raster.name + ".xml"))
        except IsceImageError as exc:
            raise ProductError(f"{exc}; the ISCE sidecar is broken: re-run topsApp's geocode") from None
        image = self.image
        if not image.is_geocoded:
            raise ProductError(
                f"{raster} is in radar geometry (its .xml has no geographic coordinates); "
                "export needs the geocoded *.geo products"
            )
        size = raster.stat().st_size
        if size != image.expected_size:
            raise ProductError(
                f"{raster} has {size} bytes but its .xml describes {image.width}x{image.length}x"
                f"{image.bands} {image.data_type} ({image.expected_size} bytes); the file is "
                "truncated or the sidecar is stale: re-run topsApp's geocode step"
            )
        order = "<" if image.byte_order.lower().startswith("l") else ">"
        self.dtype = np.dtype(NUMPY_TYPES[image.data_type]).newbyteorder(order)
        self.grid = image.grid()
        self._handle: BinaryIO | None = None

    def __enter__(self) -> IsceRowReader:
        self._handle = open(self.path, "rb")  # noqa: SIM115 (closed in __exit__)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _byte_ranges(self, row0: int, rows: int) -> list[tuple[int, int]]:
        """(offset, length) in the file of rows [row0, row0+rows): one per band for BSQ."""
        image = self.image
        w, b, n = image.width, image.bands, image.nbytes
        if image.scheme == "BSQ" and b > 1:
            return [(band * w * image.length * n + row0 * w * n, rows * w * n) for band in range(b)]
        return [(row0 * w * b * n, rows * w * b * n)]

    def prefetch(self, row0: int, rows: int) -> None:
        """Have the kernel start reading rows [row0, row0+rows) while the caller computes."""
        if self._handle is None or not hasattr(os, "posix_fadvise") or rows <= 0:
            return
        for offset, length in self._byte_ranges(row0, rows):
            os.posix_fadvise(self._handle.fileno(), offset, length, os.POSIX_FADV_WILLNEED)

    def read_rows(self, row0: int, rows: int) -> np.ndarray:
        """(bands, rows, width) array of rows [row0, row0+rows), in native byte order."""
        if self._handle is None:
            raise RuntimeError("use IsceRowReader as a context manager")
        image = self.image
        w, b = image.width, image.bands
        ranges = self._byte_ranges(row0, rows)
        if len(ranges) > 1:  # BSQ
            out = np.empty((b, rows, w), dtype=self.dtype)
            for band, (offset, _) in enumerate(ranges):
                self._handle.seek(offset)
                self._readinto(out[band])
        else:
            buffer = np.empty(rows * w * b, dtype=self.dtype)
            self._handle.seek(ranges[0][0])
            self._readinto(buffer)
            if image.scheme == "BIL":
                out = buffer.reshape(rows, b, w).transpose(1, 0, 2)
            else:  # BIP (and any 1-band raster)
                out = buffer.reshape(rows, w, b).transpose(2, 0, 1)
        return out.astype(self.dtype.newbyteorder("="), copy=False)

    def _readinto(self, array: np.ndarray) -> None:
        assert self._handle is not None
        view = memoryview(array.reshape(-1).view(np.uint8))
        got = self._handle.readinto(view)
        if got != view.nbytes:
            raise ProductError(f"{self.path}: short read; the file is truncated")


class PlacedRowReader:
    """An ISCE raster read as if it lay on a larger or shifted aligned grid (the track grid):
    rows of ``grid``, the raster's pixels where it covers them (``overlap``, whole pixels only)
    and zeros elsewhere, which is what ISCE's geocode writes where it has no data, so every
    product marks them no data. Never resamples."""

    def __init__(self, reader: IsceRowReader, placement: Overlap, grid: Grid) -> None:
        self.reader = reader
        self.placement = placement
        self.grid = grid
        self.path = reader.path
        self.image = reader.image
        self.dtype = reader.dtype

    def __enter__(self) -> PlacedRowReader:
        self.reader.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.reader.__exit__(*exc)

    def prefetch(self, row0: int, rows: int) -> None:
        _, first, count = self.placement.window(row0, rows)
        if count:
            self.reader.prefetch(first, count)

    def read_rows(self, row0: int, rows: int) -> np.ndarray:
        """(bands, rows, grid width): the raster's pixels where it covers the grid, else 0."""
        out = np.zeros((self.image.bands, rows, self.grid.width), dtype=self.dtype.newbyteorder("="))
        at, first, count = self.placement.window(row0, rows)
        if count:
            col0, col1 = self.placement.cols
            offset = self.placement.col_offset
            bands = self.reader.read_rows(first, count)
            out[:, at : at + count, col0:col1] = bands[:, :, col0 - offset : col1 - offset]
        return out


# ------------------------------------------------------------------------------------------------
# The run's XML: topsApp.xml and the swath metadata
# ------------------------------------------------------------------------------------------------


def swath_properties(xml_path: Path) -> Iterator[tuple[str, str]]:
    """(normalised name, text) of every property of topsApp's swath metadata ``IW<n>.xml``."""
    try:
        yield from iter_properties(xml_path)
    except IsceImageError as exc:
        raise ProductError(f"{exc}; re-run topsApp's preprocess") from None


def read_topsapp_xml(workdir: Path) -> dict[str, str]:
    """``"<component>.<property>"`` values of the run's topsApp.xml; empty when there is none
    readable (a hand-run directory may lack it: the export then uses what else it finds)."""
    try:
        return component_properties(workdir / "topsApp.xml")
    except IsceImageError:
        return {}


def swath_xmls(workdir: Path, which: str) -> list[Path]:
    """``<which>/IW<n>.xml`` (which = reference | secondary, or topsApp.xml's output directory)."""
    value = read_topsapp_xml(workdir).get(f"{which}.outputdirectory")
    return sorted((workdir / (value or which)).glob("IW[1-3].xml"))


def topsapp_roi_snwe(workdir: str | Path) -> list[float] | None:
    """``region of interest`` [S, N, W, E] from the run's topsApp.xml, if any."""
    text = read_topsapp_xml(Path(workdir)).get("topsinsar.regionofinterest")
    if not text:
        return None
    numbers = re.findall(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?", text)
    return [float(n) for n in numbers] if len(numbers) == 4 else None


def read_wavelength(workdir: str | Path, fallback: float | None = None) -> tuple[float, str]:
    """Radar wavelength (m) of the pair from ``reference/IW<n>.xml`` (per-burst ``radarwavelength``).

    Returns (wavelength, where it came from). Without the metadata, ``fallback`` is used with a
    warning; with no fallback that is an error naming the fix.
    """
    workdir = Path(workdir)
    values: list[float] = []
    sources: list[str] = []
    for xml_path in swath_xmls(workdir, "reference"):
        for name, text in swath_properties(xml_path):
            if name == "radarwavelength":
                try:
                    values.append(float(text))
                except ValueError:
                    raise ProductError(
                        f"{xml_path}: radarwavelength {text!r} is not a number; re-run topsApp's "
                        "preprocess step"
                    ) from None
        sources.append(str(xml_path.relative_to(workdir)))
    if not values:
        where = f"{workdir}/reference/IW<n>.xml"
        if fallback is not None:
            log.warning(
                "no radarwavelength in %s; using the fallback wavelength %.8f m", where, fallback
            )
            return float(fallback), "fallback (no radarwavelength in the metadata)"
        raise ProductError(
            f"no radarwavelength found in {where} (the swath metadata topsApp's preprocess "
            "writes); copy the reference/ folder next to merged/, or pass --wavelength "
            f"{SENTINEL1_WAVELENGTH_M} to use the nominal Sentinel-1 value"
        )
    wavelength = float(np.median(values))
    if not 0.005 < wavelength < 0.5:
        raise ProductError(
            f"radarwavelength {wavelength} m in {', '.join(sources)} is not a radar wavelength; "
            "the metadata is corrupt: re-run topsApp's preprocess step"
        )
    spread = max(values) - min(values)
    if spread > 1e-9 * wavelength:
        log.warning("bursts disagree on the wavelength by %.3g m; using the median", spread)
    return wavelength, ", ".join(sources)
