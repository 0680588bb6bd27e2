"""Per-pair products from topsApp's geocoded output: Cloud-Optimized GeoTIFFs and their metadata.

Inputs are ISCE's ``merged/*.geo`` rasters with their ``.xml`` sidecars (band layouts from
reference/isce2/products.json). The numerics below are pure functions of numpy arrays; the I/O
reads ISCE rasters in row windows and writes each product to a tiled temporary GeoTIFF that is
then translated to a COG, so memory stays bounded whatever the raster size.

Sign convention (verified on a real topsApp run with an injected range increase): topsApp's
unwrapped phase is ``+4*pi/lambda * (R_secondary - R_reference)``. Positive phase is a range
increase, i.e. motion away from the satellite. We publish

    LOS displacement d = -phi * lambda / (4*pi)   [m, positive TOWARDS the satellite]

with lambda read from the pair's ``reference/IW<n>.xml`` (``radarwavelength``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from .atomic import write_json
from .errors import DinsarError
from .grid import Grid
from .isce_image import NUMPY_TYPES, IsceImage, IsceImageError, read_image

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.floating[Any]]
BoolArray = npt.NDArray[np.bool_]

# Nominal Sentinel-1 C-band wavelength (c / 5.405000454 GHz). Only a last-resort fallback that
# the caller must ask for: the wavelength of record is the one in the pair's metadata.
SENTINEL1_WAVELENGTH_M = 0.05546576

SIGN_CONVENTION = (
    "LOS displacement in metres, positive towards the satellite (uplift on a flat surface is "
    "positive): d = -phi * lambda / (4*pi), where phi is topsApp's unwrapped phase "
    "(positive phi = range increase = motion away from the satellite)"
)
INCIDENCE_DEFINITION = (
    "incidence angle at the target, degrees from the local vertical (ISCE los.rdr band 1)"
)
AZIMUTH_DEFINITION = (
    "azimuth of the target-to-satellite line of sight, degrees from north, anticlockwise "
    "(positive towards west; ISCE los.rdr band 2). Ground-to-satellite unit vector ENU = "
    "(-sin(inc)*sin(az), sin(inc)*cos(az), cos(inc))"
)

FLOAT_NODATA = float("nan")
BYTE_NODATA = 255

# ISCE inputs (names inside merged/).
UNW = "filt_topophase.unw.geo"
FLAT = "filt_topophase.flat.geo"
COR = "topophase.cor.geo"
PHSIG = "phsig.cor.geo"
LOS = "los.rdr.geo"
CONNCOMP = "filt_topophase.unw.conncomp.geo"
CONNCOMP_ICU = "filt_topophase.conncomp.geo"  # the icu unwrapper's name

# Products (file names inside the product directory).
LOS_DISPLACEMENT = "los_displacement.tif"
UNWRAPPED_PHASE = "unwrapped_phase.tif"
WRAPPED_PHASE = "wrapped_phase.tif"
COHERENCE = "coherence.tif"
COHERENCE_MASK = "coherence_mask.tif"
PHASE_SIGMA = "phase_sigma.tif"
CONNECTED_COMPONENTS = "connected_components.tif"
INCIDENCE_ANGLE = "incidence_angle.tif"
AZIMUTH_ANGLE = "azimuth_angle.tif"
METADATA = "metadata.json"

# Reference-area block (pixels) for the automatic reference point: large enough that the
# median of its phase is robust to speckle, small enough to sit inside one coherent patch.
REFERENCE_BLOCK = 8
# Window (pixels) around a configured lat/lon reference point whose median phase is used.
REFERENCE_WINDOW = 3


class ProductError(DinsarError):
    """The ISCE output cannot be turned into products; the message says what to fix."""


# ------------------------------------------------------------------------------------------------
# Pure numerics
# ------------------------------------------------------------------------------------------------


def phase_to_los_displacement(phase: npt.ArrayLike, wavelength: float) -> FloatArray:
    """topsApp unwrapped phase (rad) -> LOS displacement (m), positive towards the satellite."""
    if not (wavelength > 0 and math.isfinite(wavelength)):
        raise ProductError(f"wavelength {wavelength!r} is not a positive number of metres")
    values = np.asarray(phase, dtype=np.float32)
    return (values * np.float32(-wavelength / (4.0 * math.pi))).astype(np.float32, copy=False)


def los_displacement_to_phase(displacement: npt.ArrayLike, wavelength: float) -> FloatArray:
    """Inverse of :func:`phase_to_los_displacement` (what topsApp would write for a motion)."""
    values = np.asarray(displacement, dtype=np.float64)
    return (-4.0 * math.pi / wavelength) * values


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


def with_nodata(values: npt.ArrayLike, valid: BoolArray) -> FloatArray:
    """float32 copy with NaN wherever ``valid`` is False."""
    return np.where(valid, np.asarray(values, dtype=np.float32), np.float32(np.nan))


def wrapped_phase(values: npt.NDArray[np.complexfloating[Any, Any]]) -> FloatArray:
    """Phase in (-pi, pi] of the complex interferogram, NaN where there is none."""
    valid = valid_complex(values)
    return with_nodata(np.angle(values), valid)


def coherence_mask(coherence: FloatArray, threshold: float) -> npt.NDArray[np.uint8]:
    """1 = coherence >= threshold (usable), 0 = below, 255 = no data. The data stay untouched."""
    out = np.full(np.shape(coherence), BYTE_NODATA, dtype=np.uint8)
    finite = np.isfinite(coherence)
    out[finite] = (np.asarray(coherence)[finite] >= threshold).astype(np.uint8)
    return out


def robust_symmetric_limit(values: npt.ArrayLike, percentile: float = 98.0) -> float:
    """Symmetric colour limit: the given percentile of |values| (NaN ignored); > 0 always."""
    flat = np.abs(np.asarray(values, dtype=np.float64).ravel())
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 1.0
    limit = float(np.percentile(flat, percentile))
    if limit <= 0:
        limit = float(flat.max())
    return limit if limit > 0 else 1.0


def rowcol_of(transform: Sequence[float], lat: float, lon: float) -> tuple[int, int]:
    """Pixel (row, col) containing lon/lat for a GDAL geotransform (north-up, corner origin)."""
    x0, dx, _, y0, _, dy = transform
    return int(math.floor((lat - y0) / dy)), int(math.floor((lon - x0) / dx))


def latlon_of(transform: Sequence[float], row: float, col: float) -> tuple[float, float]:
    """lat/lon of the centre of pixel (row, col)."""
    x0, dx, _, y0, _, dy = transform
    return y0 + (row + 0.5) * dy, x0 + (col + 0.5) * dx


def block_view(values: np.ndarray, block: int) -> np.ndarray:
    """(rows//b, cols//b, b, b) view of the whole blocks of a 2-D array (edges dropped)."""
    rows, cols = values.shape[0] // block, values.shape[1] // block
    trimmed = values[: rows * block, : cols * block]
    return trimmed.reshape(rows, block, cols, block).swapaxes(1, 2)


def label_components(mask: BoolArray) -> tuple[npt.NDArray[np.int32], int]:
    """4-connected component labels (1..n, 0 = background) of a 2-D boolean array.

    Scan-line union-find over runs: the work is proportional to the number of runs, so it is
    meant for block grids (thousands of cells a side), not full-resolution rasters.
    """
    mask = np.asarray(mask, dtype=bool)
    labels = np.zeros(mask.shape, dtype=np.int32)
    parent: list[int] = [0]

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    previous: list[tuple[int, int, int]] = []  # (start, stop, provisional label) of the row above
    for r in range(mask.shape[0]):
        row = mask[r].astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], row, [0]))))
        runs: list[tuple[int, int, int]] = []
        j = 0
        for start, stop in zip(edges[0::2], edges[1::2], strict=True):
            label = 0
            # runs of the row above that overlap [start, stop) share the component
            while j < len(previous) and previous[j][1] <= start:
                j += 1
            k = j
            while k < len(previous) and previous[k][0] < stop:
                other = find(previous[k][2])
                if label == 0:
                    label = other
                elif other != label:
                    parent[max(other, label)] = min(other, label)
                    label = min(other, label)
                k += 1
            if label == 0:
                label = len(parent)
                parent.append(label)
            runs.append((int(start), int(stop), label))
            labels[r, start:stop] = label
        previous = runs
    roots = np.array([find(i) for i in range(len(parent))], dtype=np.int32)
    unique = np.unique(roots[1:]) if len(parent) > 1 else np.array([], dtype=np.int32)
    remap = np.zeros(len(parent), dtype=np.int32)
    remap[unique] = np.arange(1, unique.size + 1, dtype=np.int32)
    return remap[roots][labels], int(unique.size)


@dataclass(frozen=True)
class BlockStats:
    """Per-block statistics gathered during the windowed pass (for the automatic reference)."""

    coherence_mean: npt.NDArray[np.float32]  # NaN where any pixel lacks coherence
    unwrapped_ok: BoolArray  # every pixel of the block has an unwrapped phase
    component: npt.NDArray[np.int32]  # the block's conncomp label if uniform, else -1
    component_sizes: npt.NDArray[np.int64] | None  # pixels per conncomp label (None: no conncomp)


def choose_reference_block(stats: BlockStats, threshold: float) -> tuple[int, int, str]:
    """Automatic reference: the most coherent block inside the largest connected component.

    With snaphu's connected components, the largest non-zero component (by pixel count) is used.
    Without them, components are the 4-connected groups of blocks whose mean coherence is at
    least ``threshold``. Returns (block row, block col, description).
    """
    ok = stats.unwrapped_ok & np.isfinite(stats.coherence_mean)
    if not ok.any():
        raise ProductError(
            f"automatic reference point: no {REFERENCE_BLOCK}x{REFERENCE_BLOCK} pixel block has "
            "both unwrapped phase and coherence everywhere; set products.reference_point to "
            "[lat, lon] or null"
        )
    coherence = np.where(ok, stats.coherence_mean, -np.inf)
    how: str
    if stats.component_sizes is not None and stats.component_sizes[1:].sum() > 0:
        largest = int(np.argmax(stats.component_sizes[1:]) + 1)
        inside = ok & (stats.component == largest)
        how = f"snaphu connected component {largest} ({int(stats.component_sizes[largest])} px)"
        if not inside.any():
            log.warning(
                "no whole %dx%d block lies in connected component %d; using the most coherent "
                "block anywhere",
                REFERENCE_BLOCK,
                REFERENCE_BLOCK,
                largest,
            )
            inside = ok
            how = "most coherent block (no block fully inside the largest component)"
    else:
        good = ok & (stats.coherence_mean >= threshold)
        if good.any():
            labels, count = label_components(good)
            sizes = np.bincount(labels.ravel(), minlength=count + 1)
            largest = int(np.argmax(sizes[1:]) + 1)
            inside = labels == largest
            how = f"largest area with coherence >= {threshold:g} ({int(sizes[largest])} blocks)"
        else:
            log.warning(
                "no block reaches coherence %.2f; the reference is the most coherent block", threshold
            )
            inside = ok
            how = f"most coherent block (none reaches {threshold:g})"
    index = int(np.argmax(np.where(inside, coherence, -np.inf)))
    brow, bcol = np.unravel_index(index, coherence.shape)
    return int(brow), int(bcol), how


# ------------------------------------------------------------------------------------------------
# Metadata: inputs, wavelength, pair description
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergedInputs:
    """The geocoded topsApp rasters of one pair (absent optional ones are None)."""

    workdir: Path
    unw: Path | None
    flat: Path | None
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
    geo = sorted(merged.glob("*.geo")) if merged.is_dir() else []
    if not geo:
        raise ProductError(
            f"no geocoded products in {merged}/ (no *.geo files): run topsApp up to the geocode "
            "step (topsApp.py topsApp.xml --end=geocode) and give the run directory"
        )

    def pick(*names: str) -> Path | None:
        for name in names:
            path = merged / name
            if path.is_file():
                if not path.with_name(name + ".xml").is_file():
                    raise ProductError(
                        f"{path} has no ISCE sidecar {name}.xml; copy it along with the raster "
                        "(the band layout and grid are read from it)"
                    )
                return path
        return None

    found = MergedInputs(
        workdir=workdir,
        unw=pick(UNW),
        flat=pick(FLAT),
        cor=pick(COR),
        phsig=pick(PHSIG),
        los=pick(LOS),
        conncomp=pick(CONNCOMP, CONNCOMP_ICU),
    )
    if found.unw is None and found.flat is None:
        raise ProductError(
            f"{merged}/ has neither {UNW} nor {FLAT}: nothing to export; add "
            "'merged/filt_topophase.unw' and 'merged/filt_topophase.flat' to the geocode list"
        )
    return found


def _norm(name: str) -> str:
    return "".join(name.split()).lower()


def _iter_properties(xml_path: Path) -> Iterator[tuple[str, str]]:
    """(normalised property name, text value) of every <property> in an ISCE XML."""
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise ProductError(f"{xml_path} is not readable XML ({exc}); re-run topsApp's preprocess") from None
    for element in root.iter("property"):
        child = element.find("value")
        text = child.text if child is not None else element.text
        yield _norm(element.get("name", "")), (text or "").strip()


def _swath_xmls(workdir: Path, which: str) -> list[Path]:
    directory = _topsapp_output_dir(workdir, which)
    return sorted(directory.glob("IW[1-3].xml"))


def read_wavelength(workdir: str | Path, fallback: float | None = None) -> tuple[float, str]:
    """Radar wavelength (m) of the pair from ``reference/IW<n>.xml`` (per-burst ``radarwavelength``).

    Returns (wavelength, where it came from). Without the metadata, ``fallback`` is used with a
    warning; with no fallback that is an error naming the fix.
    """
    workdir = Path(workdir)
    values: list[float] = []
    sources: list[str] = []
    for xml_path in _swath_xmls(workdir, "reference"):
        for name, text in _iter_properties(xml_path):
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


@dataclass
class PairInfo:
    """What the titles, tags and report say about a pair."""

    pair: str
    reference: str | None = None  # YYYYMMDD
    secondary: str | None = None
    btemp_days: int | None = None
    bperp_m: float | None = None
    track: str | None = None
    orbits: dict[str, str] = field(default_factory=dict)  # date -> orbit type(s)
    bperp_source: str | None = None  # the search's baselines, or ISCE's own computation

    def title(self) -> str:
        dates = f"{self.reference or '?'} \u2192 {self.secondary or '?'}"
        btemp = f"{self.btemp_days} d" if self.btemp_days is not None else "n/a"
        bperp = (
            f"{self.bperp_m:.0f} m"
            if self.bperp_m is not None and math.isfinite(self.bperp_m)
            else "n/a"
        )
        return f"{dates}   Btemp {btemp}   Bperp {bperp}   track {self.track or 'n/a'}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.bperp_m is not None and not math.isfinite(self.bperp_m):
            data["bperp_m"] = None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PairInfo:
        return cls(**{k: data.get(k) for k in ("pair", "reference", "secondary", "btemp_days",
                                                "bperp_m", "track", "bperp_source")},
                   orbits=dict(data.get("orbits") or {}))  # fmt: skip


def pair_info_dict(pair: Any) -> dict[str, Any]:
    """A planned pair (``dinsar.pairs.Pair``) as the plain dict rule params carry."""
    bperp = float(pair.bperp_m)
    return {
        "pair": pair.id,
        "reference": pair.reference,
        "secondary": pair.secondary,
        "btemp_days": int(pair.btemp_days),
        "bperp_m": None if math.isnan(bperp) else bperp,
        "bperp_source": None if math.isnan(bperp) else "search (asf_search baselines)",
        "track": pair.track,
    }


def read_orbit_types(paths: Sequence[str | Path]) -> dict[str, str]:
    """date -> orbit type(s) ("POEORB", "RESORB", "POEORB+RESORB") from the staging records.

    Each record is ``{"date": ..., "orbits": [{"platform", "type", "file", ...}]}``.
    """
    out: dict[str, str] = {}
    for path in paths:
        path = Path(path)
        try:
            record = json.loads(path.read_text())
            types = sorted({str(o["type"]) for o in record.get("orbits", [])})
            date = str(record.get("date") or path.stem).replace("-", "")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProductError(
                f"orbit record {path} is unreadable ({exc}); delete it and rerun the orbit step"
            ) from None
        out[date] = "+".join(types) if types else "unknown"
    return out


def expected_products(geocoded: Sequence[str]) -> dict[str, str]:
    """Product key -> file name, for the topsApp geocode-list entries that exist."""
    entries = {e.removeprefix("merged/") for e in geocoded}
    out: dict[str, str] = {}
    if "filt_topophase.unw" in entries:
        out["los_displacement"] = LOS_DISPLACEMENT
        out["unwrapped_phase"] = UNWRAPPED_PHASE
    if "filt_topophase.flat" in entries:
        out["wrapped_phase"] = WRAPPED_PHASE
    if "topophase.cor" in entries:
        out["coherence"] = COHERENCE
        out["coherence_mask"] = COHERENCE_MASK
    if "phsig.cor" in entries:
        out["phase_sigma"] = PHASE_SIGMA
    if entries & {"filt_topophase.unw.conncomp", "filt_topophase.conncomp"} and (
        "filt_topophase.unw" in entries
    ):
        out["connected_components"] = CONNECTED_COMPONENTS
    if "los.rdr" in entries:
        out["incidence_angle"] = INCIDENCE_ANGLE
        out["azimuth_angle"] = AZIMUTH_ANGLE
    return out


_SAFE_DATE = re.compile(r"S1[A-D]_IW_SLC__1S[SD][HV]_(\d{8})T\d{6}_")


def _read_topsapp_xml(workdir: Path) -> dict[str, Any]:
    """The few topsApp.xml values the export can use (lenient: names ignore case and spaces)."""
    path = workdir / "topsApp.xml"
    out: dict[str, Any] = {}
    if not path.is_file():
        return out
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return out
    for component in root.iter("component"):
        cname = _norm(component.get("name", ""))
        for prop in component.findall("property"):
            child = prop.find("value")
            text = (child.text if child is not None else prop.text) or ""
            out[f"{cname}.{_norm(prop.get('name', ''))}"] = text.strip()
    return out


def _topsapp_output_dir(workdir: Path, which: str) -> Path:
    value = _read_topsapp_xml(workdir).get(f"{which}.outputdirectory")
    return workdir / (value or which)


def topsapp_roi_snwe(workdir: str | Path) -> list[float] | None:
    """``region of interest`` [S, N, W, E] from the run's topsApp.xml, if any."""
    text = _read_topsapp_xml(Path(workdir)).get("topsinsar.regionofinterest")
    if not text:
        return None
    numbers = re.findall(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?", text)
    return [float(n) for n in numbers] if len(numbers) == 4 else None


def pair_info_from_workdir(workdir: str | Path) -> PairInfo:
    """Best-effort description of a hand-run topsApp directory (dates, track, Bperp, orbits)."""
    workdir = Path(workdir)
    info: dict[str, Any] = {}
    xml_values = _read_topsapp_xml(workdir)
    for which in ("reference", "secondary"):
        props: dict[str, str] = {}
        for xml_path in _swath_xmls(workdir, which)[:1]:
            for name, text in _iter_properties(xml_path):
                props.setdefault(name, text)
        date = None
        if props.get("sensingstart"):
            date = re.sub(r"\D", "", props["sensingstart"])[:8] or None
        if date is None:
            match = _SAFE_DATE.search(xml_values.get(f"{which}.safe", ""))
            date = match.group(1) if match else None
        info[which] = date
        if which == "reference" and props.get("tracknumber"):
            direction = props.get("passdirection", "").upper()
            suffix = "ASC" if direction.startswith("A") else "DESC" if direction else "?"
            info["track"] = f"{props['tracknumber']}_{suffix}"
        if date and props.get("orbit_source"):
            info.setdefault("orbits", {})[date] = props["orbit_source"]
    ref, sec = info.get("reference"), info.get("secondary")
    btemp = None
    if ref and sec:
        import datetime as dt

        btemp = (dt.datetime.strptime(sec, "%Y%m%d") - dt.datetime.strptime(ref, "%Y%m%d")).days
    bperp, bperp_source = isce_bperp(workdir)
    pair = workdir.resolve().name
    if not re.fullmatch(r"\d{8}_\d{8}", pair) and ref and sec:
        pair = f"{ref}_{sec}"
    return PairInfo(
        pair=pair,
        reference=ref,
        secondary=sec,
        btemp_days=btemp,
        bperp_m=bperp,
        track=info.get("track"),
        orbits=info.get("orbits", {}),
        bperp_source=bperp_source,
    )


ISCE_LOG = "isce.log"  # topsApp's own log in the run directory
_BPERP_RE = re.compile(r"Bperp at midrange for (?:first|last) common burst = (\S+)")
_ISCE_VERSION_RE = re.compile(r"ISCE VERSION = ([0-9][0-9A-Za-z._-]*)")


def isce_bperp(workdir: str | Path) -> tuple[float | None, str | None]:
    """Bperp (m) from topsApp's computeBaselines in isce.log, and where it came from.

    The mean of its first and last common burst. ISCE writes nan when the two orbits coincide:
    its cosine is 0/0 for a zero baseline (runComputeBaseline.py), which we report as 0 m.
    """
    path = Path(workdir) / ISCE_LOG
    if not path.is_file():
        return None, None
    values = [float(m[1]) for m in _BPERP_RE.finditer(path.read_text(errors="replace"))
              if re.fullmatch(r"[-+0-9.eEnaNinf]+", m[1])]  # fmt: skip
    if not values:
        return None, None
    source = "ISCE topsApp computeBaselines (mid range, first and last common burst)"
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, source + "; nan there: the orbits coincide, a zero baseline"
    return float(np.mean(finite)), source


def isce_version(workdir: str | Path) -> str | None:
    """The ISCE2 version topsApp printed in its log (every step starts with the banner)."""
    path = Path(workdir) / ISCE_LOG
    if not path.is_file():
        return None
    found = _ISCE_VERSION_RE.findall(path.read_text(errors="replace"))
    return found[-1] if found else None


# ------------------------------------------------------------------------------------------------
# Windowed I/O
# ------------------------------------------------------------------------------------------------


class IsceRowReader:
    """Reads whole rows of an ISCE raster (any interleave) straight from the file.

    One contiguous read per window for BIL/BIP; no memory map, so the resident set stays at the
    size of the window however large the file is.
    """

    def __init__(self, raster: Path) -> None:
        self.path = raster
        try:
            self.image: IsceImage = read_image(raster.with_name(raster.name + ".xml"))
        except (IsceImageError, ET.ParseError, OSError) as exc:
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
        self.grid = Grid.from_transform(image.geotransform(), image.width, image.length)
        self._handle: BinaryIO | None = None

    def __enter__(self) -> IsceRowReader:
        self._handle = open(self.path, "rb")  # noqa: SIM115 (closed in __exit__)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def read_rows(self, row0: int, rows: int) -> np.ndarray:
        """(bands, rows, width) array of rows [row0, row0+rows), in native byte order."""
        if self._handle is None:
            raise RuntimeError("use IsceRowReader as a context manager")
        image = self.image
        w, b, n = image.width, image.bands, image.nbytes
        if image.scheme == "BSQ" and b > 1:
            out = np.empty((b, rows, w), dtype=self.dtype)
            for band in range(b):
                self._handle.seek(band * w * image.length * n + row0 * w * n)
                self._readinto(out[band])
        else:
            buffer = np.empty(rows * w * b, dtype=self.dtype)
            self._handle.seek(row0 * w * b * n)
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


@dataclass(frozen=True)
class ProductSpec:
    """One output raster: its file, type, what it is, and how its overviews resample."""

    filename: str
    dtype: str
    units: str
    description: str
    resampling: str  # GDAL overview resampling
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def nodata(self) -> float:
        return BYTE_NODATA if self.dtype == "uint8" else FLOAT_NODATA


# COG settings. ZSTD with the floating-point predictor packs these rasters about as well as
# DEFLATE at a fraction of the CPU time (that keeps export within 2x a plain copy); every GDAL
# >= 2.3 (QGIS, rasterio, xarray) reads it. 512-pixel tiles are the COG default.
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


class _Level:
    """One overview level being filled row by row (a small temporary GeoTIFF)."""

    def __init__(self, path: Path, width: int, length: int, dtype: str, nodata: float,
                 transform: Any) -> None:  # fmt: skip
        import rasterio

        self.path, self.width, self.length = path, width, length
        self.row = 0
        self.carry: np.ndarray | None = None  # an odd row waiting for its partner
        self.dataset = rasterio.open(path, "w", driver="GTiff", width=width, height=length,
                                     count=1, dtype=dtype, nodata=nodata, crs="EPSG:4326",
                                     transform=transform)  # fmt: skip

    def write(self, data: np.ndarray) -> None:
        from rasterio.windows import Window

        if data.shape[0]:
            self.dataset.write(data, 1, window=Window(0, self.row, self.width, data.shape[0]))
            self.row += data.shape[0]


class TiledWriter:
    """A product written window by window: a temporary tiled GeoTIFF plus its overview pyramid.

    The overviews are reduced from each window as it is written, so GDAL's COG driver gets them
    ready-made (through a VRT with <Overview> elements) instead of reading the whole raster
    again to compute them: that second read used to be most of the export time.
    """

    def __init__(self, path: Path, spec: ProductSpec, grid: Grid, tags: dict[str, str]) -> None:
        import rasterio
        from affine import Affine

        self.final = path
        self.spec = spec
        self.grid = grid
        self.tags = {**tags, **spec.tags}
        self.tmp = path.with_name(f".{path.name}.tmp.tif")
        self._dataset = rasterio.open(
            self.tmp,
            "w",
            driver="GTiff",
            width=grid.width,
            height=grid.length,
            count=1,
            dtype=spec.dtype,
            crs="EPSG:4326",
            transform=Affine.from_gdal(*grid.transform),
            nodata=spec.nodata,
            tiled=True,
            blockxsize=TEMP_TILE,
            blockysize=TEMP_TILE,
            BIGTIFF="IF_SAFER",
        )
        self.levels: list[_Level] = []
        width, length = grid.width, grid.length
        for index in range(overview_count(grid.width, grid.length)):
            width, length = (width + 1) // 2, (length + 1) // 2
            level_path = path.with_name(f".{path.name}.ovr{index + 1}.tmp.tif")
            scale = Affine.scale(grid.width / width, grid.length / length)
            transform = Affine.from_gdal(*grid.transform) @ scale
            self.levels.append(_Level(level_path, width, length, spec.dtype, spec.nodata, transform))

    def write(self, row0: int, data: np.ndarray) -> None:
        from rasterio.windows import Window

        data = data.astype(self.spec.dtype, copy=False)
        rows, cols = data.shape
        self._dataset.write(data, 1, window=Window(0, row0, cols, rows))
        self._feed(0, data, final=row0 + rows >= self.grid.length)

    def _feed(self, index: int, rows: np.ndarray, final: bool) -> None:
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
        self._feed(index + 1, reduced, final)

    def update_tags(self, **tags: str) -> None:
        self.tags.update(tags)

    def close(self) -> None:
        if not self._dataset.closed:
            self._dataset.close()
        for level in self.levels:
            if not level.dataset.closed:
                level.dataset.close()

    def _vrt(self) -> Path:
        """The full-resolution temp with the ready-made overviews, as GDAL's COG driver input."""
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
        source = ET.SubElement(band, "SimpleSource")
        ET.SubElement(source, "SourceFilename", relativeToVRT="1").text = self.tmp.name
        ET.SubElement(source, "SourceBand").text = "1"
        for level in self.levels:
            overview = ET.SubElement(band, "Overview")
            ET.SubElement(overview, "SourceFilename", relativeToVRT="1").text = level.path.name
            ET.SubElement(overview, "SourceBand").text = "1"
        vrt = self.final.with_name(f".{self.final.name}.tmp.vrt")
        vrt.write_text(ET.tostring(root, encoding="unicode"))
        return vrt

    def finish(self) -> Path:
        """Translate to a COG next to the final path, then move it into place."""
        import rasterio.shutil

        started = time.perf_counter()
        self.close()
        for level in self.levels:
            if level.row != level.length:
                raise AssertionError(f"overview {level.path.name}: {level.row}/{level.length} rows")
        part = self.final.with_name(f".{self.final.name}.part")
        options = dict(COG_OPTIONS, OVERVIEWS="FORCE_USE_EXISTING")
        if self.spec.dtype == "uint8":
            options["PREDICTOR"] = "NO"
        vrt = self._vrt()
        try:
            rasterio.shutil.copy(vrt, part, driver="COG", **options)
            os.replace(part, self.final)
        finally:
            self.discard()
            part.unlink(missing_ok=True)
        log.debug("COG %s: %.1f s", self.final.name, time.perf_counter() - started)
        return self.final

    def discard(self) -> None:
        self.close()
        self.tmp.unlink(missing_ok=True)
        self.final.with_name(f".{self.final.name}.tmp.vrt").unlink(missing_ok=True)
        for level in self.levels:
            level.path.unlink(missing_ok=True)


def _gdal_env() -> Any:
    import rasterio

    # rasterio passes GDAL_CACHEMAX to GDALSetCacheMax64: bytes, not MB
    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 2**20, GDAL_NUM_THREADS="ALL_CPUS")


# ------------------------------------------------------------------------------------------------
# Export
# ------------------------------------------------------------------------------------------------


@dataclass
class ReferencePoint:
    method: str  # "none" | "point" | "auto"
    lat: float | None = None
    lon: float | None = None
    row: int | None = None
    col: int | None = None
    phase_rad: float = 0.0
    detail: str = ""


@dataclass
class ExportResult:
    outdir: Path
    files: dict[str, Path]
    metadata: dict[str, Any]


def _parse_reference(value: str | Sequence[float] | None) -> str | tuple[float, float] | None:
    if value is None or value == "none":
        return None
    if value == "auto":
        return "auto"
    if isinstance(value, str):
        raise ProductError(f"reference point {value!r}: give 'auto', [lat, lon] or null")
    if len(value) != 2:
        raise ProductError(f"reference point {list(value)!r} must be [lat, lon] in degrees")
    return float(value[0]), float(value[1])


def _running_stats() -> dict[str, float]:
    return {"count": 0, "sum": 0.0, "min": math.inf, "max": -math.inf}


def _accumulate(stats: dict[str, float], values: np.ndarray) -> None:
    finite = values[np.isfinite(values)]
    if finite.size:
        stats["count"] += int(finite.size)
        stats["sum"] += float(finite.sum(dtype=np.float64))
        stats["min"] = min(stats["min"], float(finite.min()))
        stats["max"] = max(stats["max"], float(finite.max()))


def _finish_stats(stats: dict[str, float], total: int) -> dict[str, Any]:
    count = int(stats["count"])
    return {
        "valid_pixels": count,
        "valid_fraction": count / total if total else 0.0,
        "mean": stats["sum"] / count if count else None,
        "min": stats["min"] if count else None,
        "max": stats["max"] if count else None,
    }


def _specs(wavelength: float, threshold: float) -> dict[str, ProductSpec]:
    lam = f"{wavelength:.8f}"
    return {
        "los_displacement": ProductSpec(
            LOS_DISPLACEMENT, "float32", "m",
            "LOS displacement, positive towards the satellite",
            "AVERAGE",
            {"SIGN_CONVENTION": SIGN_CONVENTION, "WAVELENGTH_M": lam,
             "FORMULA": "d = -phi * lambda / (4*pi)", "POSITIVE": "towards the satellite"},
        ),
        "unwrapped_phase": ProductSpec(
            UNWRAPPED_PHASE, "float32", "rad",
            "unwrapped interferometric phase (topsApp filt_topophase.unw band 2)",
            "AVERAGE",
            {"SIGN_CONVENTION": "positive phase = range increase (motion away from the "
                                "satellite); phase = 4*pi/lambda * (R_secondary - R_reference)",
             "WAVELENGTH_M": lam},
        ),
        "wrapped_phase": ProductSpec(
            WRAPPED_PHASE, "float32", "rad",
            "wrapped phase of the filtered interferogram (filt_topophase.flat), -pi..pi",
            "NEAREST",  # averaging wrapped phase across a fringe would invent values
            {"SIGN_CONVENTION": "as unwrapped_phase, modulo 2*pi"},
        ),
        "coherence": ProductSpec(
            COHERENCE, "float32", "1",
            "interferometric coherence 0..1 (topophase.cor band 2)", "AVERAGE",
            {"READING": "> 0.5 reliable phase, < 0.3 noisy"},
        ),
        "coherence_mask": ProductSpec(
            COHERENCE_MASK, "uint8", "1",
            f"1 = coherence >= {threshold:g}, 0 = below, 255 = no data", "NEAREST",
            {"COHERENCE_THRESHOLD": f"{threshold:g}"},
        ),
        "phase_sigma": ProductSpec(
            PHASE_SIGMA, "float32", "1",
            "phase-sigma coherence 0..1 of the filtered interferogram (phsig.cor)", "AVERAGE",
        ),
        "connected_components": ProductSpec(
            CONNECTED_COMPONENTS, "uint8", "1",
            "unwrapping connected component label (0 = not in a component; 255 = no data)",
            "NEAREST",
        ),
        "incidence_angle": ProductSpec(
            INCIDENCE_ANGLE, "float32", "deg", INCIDENCE_DEFINITION, "AVERAGE",
        ),
        "azimuth_angle": ProductSpec(
            AZIMUTH_ANGLE, "float32", "deg", AZIMUTH_DEFINITION, "NEAREST",
        ),
    }  # fmt: skip


@dataclass
class _Pass:
    """One input raster read window by window into one or more product writers."""

    source: Path
    products: list[str]
    compute: Callable[[np.ndarray, int], dict[str, np.ndarray]]
    bytes_per_pixel: int  # input + outputs + temporaries, for the window size


def export_pair(
    workdir: str | Path,
    outdir: str | Path,
    *,
    pair_info: PairInfo | None = None,
    reference_point: str | Sequence[float] | None = None,
    coherence_threshold: float = 0.3,
    wavelength_fallback: float | None = None,
    memory_budget_mb: int = 192,
    threads: int = 2,
    dem: dict[str, Any] | None = None,
) -> ExportResult:
    """Turn a topsApp run directory's geocoded output into the pair's COG products.

    Writes every product present in the inputs plus ``metadata.json`` into ``outdir``. Files are
    written under temporary names and moved into place only when complete. Each input is read
    once, in row windows; while one input is processed, the products of the previous one are
    translated to COGs in a worker thread (GDAL releases the GIL), which keeps both CPUs busy.
    """
    workdir, outdir = Path(workdir), Path(outdir)
    inputs = find_merged_inputs(workdir)
    wavelength, wavelength_source = read_wavelength(workdir, wavelength_fallback)
    reference = _parse_reference(reference_point)
    if not 0 <= coherence_threshold <= 1:
        raise ProductError(f"coherence threshold {coherence_threshold} must be within 0..1")
    info = pair_info or pair_info_from_workdir(workdir)
    if info.bperp_m is None:  # the search had no baselines: ISCE's own computation
        info.bperp_m, info.bperp_source = isce_bperp(workdir)
    outdir.mkdir(parents=True, exist_ok=True)

    readers = {name: IsceRowReader(path) for name, path in inputs.present().items()}
    grid = next(iter(readers.values())).grid
    expected_bands = {"unw": 2, "cor": 2, "los": 2, "flat": 1, "phsig": 1, "conncomp": 1}
    for name, reader in readers.items():
        if not reader.grid.same_as(grid):
            raise ProductError(
                f"{reader.path.name} is on a different grid ({reader.grid}) than the other "
                f"geocoded products ({grid}); re-run topsApp's geocode for all of them"
            )
        if reader.image.bands != expected_bands[name]:
            raise ProductError(
                f"{reader.path.name} has {reader.image.bands} band(s), ISCE writes "
                f"{expected_bands[name]}; the file is not topsApp output"
            )
    if reference is not None and (inputs.unw is None or (inputs.cor is None and reference == "auto")):
        raise ProductError(
            "a reference point needs the unwrapped phase"
            + (" and the coherence" if reference == "auto" else "")
            + f" in {workdir}/merged/; set the reference point to null"
        )

    specs = _specs(wavelength, coherence_threshold)
    common_tags = {
        "PAIR": info.pair,
        "REFERENCE_DATE": info.reference or "",
        "SECONDARY_DATE": info.secondary or "",
        "TRACK": info.track or "",
        "ORBITS": ",".join(f"{d}:{t}" for d, t in sorted(info.orbits.items())),
        "SOURCE": "ISCE2 topsApp geocoded products, exported by dInSAR-Toolkit",
    }
    total = grid.width * grid.length
    block = REFERENCE_BLOCK
    brows, bcols = grid.length // block, grid.width // block
    block_coh = np.full((brows, bcols), np.nan, dtype=np.float32)
    block_unw_ok = np.zeros((brows, bcols), dtype=bool)
    block_label = np.full((brows, bcols), -1, dtype=np.int32)
    component_sizes = np.zeros(256, dtype=np.int64)
    running: dict[str, dict[str, float]] = {}
    above_threshold = [0]
    unw_valid: _BitCache | None = None

    def blocks_of(row0: int, values: np.ndarray) -> tuple[slice, np.ndarray] | None:
        # the block rows of this window (windows are multiples of the block height)
        view = block_view(values, block)
        if view.shape[0] == 0:
            return None
        b0 = row0 // block
        return slice(b0, b0 + view.shape[0]), view

    def do_unw(data: np.ndarray, row0: int) -> dict[str, np.ndarray]:
        amp, phase = data[0], data[1]
        valid = valid_unwrapped(amp, phase)
        if unw_valid is not None:
            unw_valid.write(row0, valid)
        found = blocks_of(row0, valid)
        if found:
            block_unw_ok[found[0]] = found[1].all(axis=(2, 3))
        return {"unwrapped_phase": with_nodata(phase, valid)}

    def do_conncomp(data: np.ndarray, row0: int) -> dict[str, np.ndarray]:
        labels = data[0].astype(np.uint8, copy=False)
        out = labels.copy()
        if unw_valid is not None:
            valid = unw_valid.read(row0, labels.shape[0])
            out[~valid] = BYTE_NODATA  # 0 is a real label ("no component"); nodata follows unw
            counted = labels[valid]
        else:
            counted = labels
        component_sizes[:] += np.bincount(counted.ravel(), minlength=256)[:256]
        found = blocks_of(row0, labels)
        if found:
            low, high = found[1].min(axis=(2, 3)), found[1].max(axis=(2, 3))
            block_label[found[0]] = np.where(low == high, low.astype(np.int32), -1)
        return {"connected_components": out}

    def do_flat(data: np.ndarray, row0: int) -> dict[str, np.ndarray]:
        return {"wrapped_phase": wrapped_phase(data[0])}

    def do_cor(data: np.ndarray, row0: int) -> dict[str, np.ndarray]:
        amp, coh = data[0], data[1]
        out = with_nodata(coh, valid_two_band(amp, coh))
        _accumulate(running.setdefault("coherence", _running_stats()), out)
        above_threshold[0] += int(np.count_nonzero(out >= coherence_threshold))
        found = blocks_of(row0, out)
        if found:
            block_coh[found[0]] = found[1].mean(axis=(2, 3), dtype=np.float64)
        return {"coherence": out, "coherence_mask": coherence_mask(out, coherence_threshold)}

    def do_phsig(data: np.ndarray, row0: int) -> dict[str, np.ndarray]:
        return {"phase_sigma": with_nodata(data[0], valid_nonzero(data[0]))}

    def do_los(data: np.ndarray, row0: int) -> dict[str, np.ndarray]:
        inc, az = data[0], data[1]
        valid = valid_two_band(inc, az)
        return {"incidence_angle": with_nodata(inc, valid), "azimuth_angle": with_nodata(az, valid)}

    def run_pass(step: _Pass) -> dict[str, TiledWriter]:
        rows = window_rows(grid.width, step.bytes_per_pixel, memory_budget_mb, grid.length)
        rows = max(block, rows // block * block)
        started = time.perf_counter()
        writers = {
            name: TiledWriter(outdir / specs[name].filename, specs[name], grid, common_tags)
            for name in step.products
        }
        created.extend(writers.values())
        with IsceRowReader(step.source) as reader:
            for row0 in range(0, grid.length, rows):
                results = step.compute(reader.read_rows(row0, min(rows, grid.length - row0)), row0)
                for name, values in results.items():
                    writers[name].write(row0, values)
        for writer in writers.values():
            writer.close()  # flushed: the COG translation (or a later step) reads the file
        log.debug("pass over %s: %.1f s", step.source.name, time.perf_counter() - started)
        return writers

    created: list[TiledWriter] = []
    futures: list[Future[Path]] = []
    ref = ReferencePoint(method="none")
    pool = ThreadPoolExecutor(max_workers=max(1, threads - 1))

    def convert(writers: Sequence[TiledWriter]) -> None:
        futures.extend(pool.submit(w.finish) for w in writers)

    try:
        with _gdal_env():
            # Order: unw first (its validity decides the conncomp's nodata), then conncomp and
            # cor (block statistics for the automatic reference), then the displacement, which
            # needs the reference; the rest after. Each pass's products convert in the
            # background while the next pass runs.
            unw_writers: dict[str, TiledWriter] = {}
            if inputs.unw is not None:
                if inputs.conncomp is not None:
                    unw_valid = _BitCache(outdir / ".unw_valid.tmp", grid)
                unw_writers = run_pass(_Pass(inputs.unw, ["unwrapped_phase"], do_unw, 8 + 4 + 4 + 2))
            if inputs.conncomp is not None:
                convert(list(run_pass(
                    _Pass(inputs.conncomp, ["connected_components"], do_conncomp, 1 + 1 + 4 + 2)
                ).values()))  # fmt: skip
            if inputs.cor is not None:
                convert(list(run_pass(
                    _Pass(inputs.cor, ["coherence", "coherence_mask"], do_cor, 8 + 4 + 1 + 6)
                ).values()))  # fmt: skip
            if inputs.unw is not None:
                ref = _reference(
                    reference, grid, unw_writers["unwrapped_phase"].tmp,
                    BlockStats(block_coh, block_unw_ok, block_label,
                               component_sizes if inputs.conncomp is not None else None),
                    coherence_threshold,
                )  # fmt: skip
                disp = TiledWriter(
                    outdir / LOS_DISPLACEMENT, specs["los_displacement"], grid, common_tags
                )
                created.append(disp)
                disp.update_tags(
                    REFERENCE_METHOD=ref.method,
                    REFERENCE_DETAIL=ref.detail,
                    REFERENCE_LAT="" if ref.lat is None else f"{ref.lat:.6f}",
                    REFERENCE_LON="" if ref.lon is None else f"{ref.lon:.6f}",
                    REFERENCE_PHASE_RAD=f"{ref.phase_rad:.6g}",
                )
                stats_disp = running.setdefault("los_displacement", _running_stats())
                _derive_displacement(unw_writers["unwrapped_phase"].tmp, disp, ref.phase_rad,
                                     wavelength, memory_budget_mb, stats_disp)  # fmt: skip
                disp.close()
                convert([unw_writers["unwrapped_phase"], disp])
            if inputs.flat is not None:
                convert(list(run_pass(_Pass(inputs.flat, ["wrapped_phase"], do_flat, 8 + 4 + 6)).values()))
            if inputs.phsig is not None:
                convert(list(run_pass(_Pass(inputs.phsig, ["phase_sigma"], do_phsig, 4 + 4 + 2)).values()))
            if inputs.los is not None:
                convert(list(run_pass(_Pass(
                    inputs.los, ["incidence_angle", "azimuth_angle"], do_los, 8 + 8 + 4
                )).values()))  # fmt: skip
            written = {path.name: path for path in (f.result() for f in futures)}
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        for writer in created:
            writer.discard()
        raise
    finally:
        pool.shutdown(wait=True)
        if unw_valid is not None:
            unw_valid.close()

    stats: dict[str, Any] = {k: _finish_stats(v, total) for k, v in running.items()}
    if "coherence" in stats and stats["coherence"]["valid_pixels"]:
        stats["coherence"]["fraction_above_threshold"] = (
            above_threshold[0] / stats["coherence"]["valid_pixels"]
        )
    if inputs.conncomp is not None:
        stats["connected_components"] = {
            "pixels_per_label": {
                str(i): int(n) for i, n in enumerate(component_sizes) if n and i != BYTE_NODATA
            }
        }
    metadata: dict[str, Any] = {
        "pair": info.to_json(),
        "title": info.title(),
        "wavelength_m": wavelength,
        "wavelength_source": wavelength_source,
        "sign_convention": SIGN_CONVENTION,
        "incidence_definition": INCIDENCE_DEFINITION,
        "azimuth_definition": AZIMUTH_DEFINITION,
        "coherence_threshold": coherence_threshold,
        "reference_point": asdict(ref),
        "grid": {"width": grid.width, "length": grid.length, "geotransform": list(grid.transform),
                 "crs": "EPSG:4326"},
        "inputs": {k: str(v.relative_to(workdir)) for k, v in inputs.present().items()},
        "products": sorted(written),
        "stats": stats,
        "processing": {"isce2_version": isce_version(workdir), "exported_by": "dInSAR-Toolkit"},
        "dem": dem_provenance(dem),
    }  # fmt: skip
    meta_path = write_json(outdir / METADATA, metadata, default=_json_default)
    written[METADATA] = meta_path
    log.info("exported %s: %s", info.pair, ", ".join(sorted(written)))
    return ExportResult(outdir=outdir, files=written, metadata=metadata)


def dem_provenance(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the products say about the DEM: the file or dataset really used, and its grid."""
    if not manifest:
        return None
    keys = ("source", "file", "input_vertical_datum", "bounds", "posting", "geocode_posting")
    return {k: manifest.get(k) for k in keys}


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class _BitCache:
    """A packed on-disk boolean raster (1 bit per pixel) for passing validity between passes."""

    def __init__(self, path: Path, grid: Grid) -> None:
        self.path = path
        self.width = grid.width
        self.row_bytes = (grid.width + 7) // 8
        self._handle = open(path, "w+b")  # noqa: SIM115 (closed in close())
        self._handle.truncate(self.row_bytes * grid.length)

    def write(self, row0: int, valid: BoolArray) -> None:
        self._handle.seek(row0 * self.row_bytes)
        self._handle.write(np.packbits(valid, axis=1).tobytes())

    def read(self, row0: int, rows: int) -> BoolArray:
        self._handle.seek(row0 * self.row_bytes)
        raw = np.frombuffer(self._handle.read(rows * self.row_bytes), dtype=np.uint8)
        return np.unpackbits(raw.reshape(rows, self.row_bytes), axis=1)[:, : self.width].astype(bool)

    def close(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)


def _reference(
    reference: str | tuple[float, float] | None,
    grid: Grid,
    phase_tif: Path,
    stats: BlockStats,
    threshold: float,
) -> ReferencePoint:
    """Where the displacement is set to zero, and the unwrapped phase there."""
    import rasterio
    from rasterio.windows import Window

    if reference is None:
        return ReferencePoint(method="none", detail="no reference point: the phase offset left "
                              "by the unwrapper remains")  # fmt: skip
    if reference == "auto":
        brow, bcol, how = choose_reference_block(stats, threshold)
        row0, col0, size = brow * REFERENCE_BLOCK, bcol * REFERENCE_BLOCK, REFERENCE_BLOCK
        method, detail = "auto", f"most coherent {size}x{size} block in the {how}"
    else:
        lat, lon = reference
        row, col = rowcol_of(grid.transform, lat, lon)
        if not (0 <= row < grid.length and 0 <= col < grid.width):
            raise ProductError(
                f"reference point lat {lat}, lon {lon} lies outside the geocoded area; choose a "
                "point inside it (products.reference_point) or 'auto'"
            )
        half = REFERENCE_WINDOW // 2
        row0, col0 = max(0, row - half), max(0, col - half)
        size = REFERENCE_WINDOW
        method, detail = "point", f"median of the {size}x{size} pixels around lat {lat}, lon {lon}"
    with rasterio.open(phase_tif) as src:
        window = Window(col0, row0, min(size, grid.width - col0), min(size, grid.length - row0))
        values = src.read(1, window=window)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ProductError(
            f"the reference point ({detail}) has no unwrapped phase (no data there); choose "
            "another point or 'auto'"
        )
    centre_row, centre_col = row0 + window.height / 2 - 0.5, col0 + window.width / 2 - 0.5
    lat_c, lon_c = latlon_of(grid.transform, centre_row, centre_col)
    phase = float(np.median(finite))
    log.info("reference point (%s): lat %.5f lon %.5f, phase %.4f rad", method, lat_c, lon_c, phase)
    return ReferencePoint(
        method=method, lat=lat_c, lon=lon_c, row=int(round(centre_row)),
        col=int(round(centre_col)), phase_rad=phase, detail=detail,
    )  # fmt: skip


def _derive_displacement(
    phase_tif: Path,
    writer: TiledWriter,
    phase_ref: float,
    wavelength: float,
    memory_budget_mb: int,
    running: dict[str, float],
) -> None:
    """Second pass: displacement from the (temporary) unwrapped-phase raster."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(phase_tif) as src:
        rows = window_rows(src.width, 4 + 4 + 4, memory_budget_mb, src.height)
        for row0 in range(0, src.height, rows):
            count = min(rows, src.height - row0)
            phase = src.read(1, window=Window(0, row0, src.width, count))
            if phase_ref:
                phase -= np.float32(phase_ref)
            disp = phase_to_los_displacement(phase, wavelength)
            writer.write(row0, disp)
            _accumulate(running, disp)


def read_metadata(product_dir: str | Path) -> dict[str, Any]:
    path = Path(product_dir) / METADATA
    if not path.is_file():
        raise ProductError(f"{path} is missing; export the pair first (dinsar export)")
    return json.loads(path.read_text())
