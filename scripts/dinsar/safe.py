"""Read a Sentinel-1 IW SLC SAFE zip without unpacking it: layout, annotations, IPF version.

What topsApp needs from a zip, and how it fails otherwise (reference/isce2/observed_behaviour.md):
the zip must hold ``<granule>.SAFE/`` at its top level (a ``safe/<granule>.SAFE/`` zip is matched
but then cannot be opened), and each annotation needs a non-empty measurement TIFF. ISCE only
prints "Could not extract swath" in both cases and fails one step later, so we check first.

The annotation's geolocation grid gives each burst's footprint (dinsar.bursts), which decides
the swaths that intersect the ROI (``isce.swaths: auto``) and the bursts topsApp will keep.
Nothing here needs ISCE; shapely is imported only by the footprint functions, so the pre-run
checks also work inside the ISCE environment.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import struct
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .bursts import BurstGeometry, GeolocationGrid, isce_keeps
from .errors import DinsarError

if TYPE_CHECKING:
    from shapely.geometry import MultiPolygon, Polygon

log = logging.getLogger(__name__)

SPEED_OF_LIGHT = 299792458.0  # m/s, ISCE's Const.c
POLARIZATIONS = ("vv", "vh", "hh", "hv")
# <granule>.SAFE/annotation/s1a-iw1-slc-vv-<start>-<stop>-<orbit>-<datatake>-<n>.xml
_ANNOTATION_RE = re.compile(
    r"^(?P<safe>[^/]+)/annotation/"
    r"(?P<stem>s1[a-d]-iw(?P<swath>[1-3])-slc-(?P<pol>vv|vh|hh|hv)-[0-9a-z-]+)\.xml$"
)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


class SafeError(DinsarError):
    """A SAFE zip is missing, damaged or laid out in a way topsApp cannot read."""


@dataclass(frozen=True)
class Burst:
    """One burst of one swath, as the annotation describes it."""

    swath: int
    number: int  # 1-based within its slice
    azimuth_time: dt.datetime  # first line, UTC (naive, like ISCE)
    sensing_time: dt.datetime
    anx_time: float  # seconds since the ascending node
    # lon/lat ring at the annotation's heights: first line near -> far, last line far -> near
    corners: tuple[tuple[float, float], ...]
    geometry: BurstGeometry

    def polygon(self) -> Polygon:
        from shapely.geometry import Polygon

        return Polygon(self.corners)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """[W, S, E, N] of the footprint."""
        lons = [c[0] for c in self.corners]
        lats = [c[1] for c in self.corners]
        return min(lons), min(lats), max(lons), max(lats)


@dataclass(frozen=True)
class Swath:
    """The annotation of one swath and polarization of one SAFE."""

    swath: int
    polarization: str  # lower case, as in the file names
    mission: str  # S1A .. S1D
    pass_direction: str  # ASCENDING | DESCENDING
    start: dt.datetime
    stop: dt.datetime
    lines_per_burst: int
    samples_per_burst: int
    radar_frequency: float
    azimuth_time_interval: float
    slant_range_time: float
    bursts: tuple[Burst, ...]
    grid: GeolocationGrid
    range_pixel_spacing: float  # slant range, metres
    azimuth_pixel_spacing: float  # metres
    annotation: str = ""  # member name inside the zip
    measurement: str = ""
    measurement_bytes: int = 0
    measurement_shape: tuple[int, int] | None = None  # (width, length) from the TIFF header

    @property
    def wavelength(self) -> float:
        """Radar wavelength in metres, as ISCE computes it (c / radarFrequency)."""
        return SPEED_OF_LIGHT / self.radar_frequency

    def bursts_intersecting(self, roi: Polygon | MultiPolygon) -> list[Burst]:
        return [b for b in self.bursts if b.polygon().intersects(roi)]

    def bursts_isce_keeps(self, roi_box: tuple[float, float, float, float]) -> list[Burst]:
        """The bursts topsApp's crop keeps for a region of interest with bounds [W, S, E, N]."""
        return [b for b in self.bursts if isce_keeps(b.geometry, self.grid, roi_box)]

    @property
    def mid_incidence(self) -> float:
        """Incidence angle (degrees) at mid range."""
        return float(np.median(self.grid.incidence))


@dataclass(frozen=True)
class Safe:
    """What we read from one SAFE zip (one slice) for one polarization."""

    path: Path
    name: str  # <granule>.SAFE
    ipf: str | None
    polarization: str
    swaths: dict[int, Swath] = field(default_factory=dict)

    @property
    def granule(self) -> str:
        return self.name.removesuffix(".SAFE")

    @property
    def start(self) -> dt.datetime:
        return min(s.start for s in self.swaths.values())

    @property
    def stop(self) -> dt.datetime:
        return max(s.stop for s in self.swaths.values())

    @property
    def mission(self) -> str:
        return next(iter(self.swaths.values())).mission


# --- pure parsing -------------------------------------------------------------------------------


def parse_time(text: str) -> dt.datetime:
    text = text.strip()
    return dt.datetime.strptime(text if "." in text else text + ".0", _TIME_FORMAT)


def _text(root: ET.Element, path: str) -> str:
    node = root.find(path)
    if node is None or node.text is None:
        raise ValueError(f"annotation lacks {path}")
    return node.text.strip()


def parse_annotation(data: bytes) -> Swath:
    """A swath's metadata and burst footprints from its annotation XML (bytes)."""
    root = ET.fromstring(data)
    lines_per_burst = int(_text(root, "swathTiming/linesPerBurst"))
    samples = int(_text(root, "swathTiming/samplesPerBurst"))
    swath = int(_text(root, "adsHeader/swath")[-1])
    interval = float(_text(root, "imageAnnotation/imageInformation/azimuthTimeInterval"))
    grid = _geolocation_grid(root)
    bursts = []
    for index, node in enumerate(root.findall("swathTiming/burstList/burst")):
        first = parse_time(_text(node, "azimuthTime"))
        geometry = BurstGeometry(
            first_line=first,
            last_line=first + dt.timedelta(seconds=(lines_per_burst - 1) * interval),
            first_pixel=0.0,
            last_pixel=float(samples - 1),
        )
        bursts.append(
            Burst(
                swath=swath,
                number=index + 1,
                azimuth_time=first,
                sensing_time=parse_time(_text(node, "sensingTime")),
                anx_time=float(_text(node, "azimuthAnxTime")),
                corners=tuple(geometry.corners(grid)),
                geometry=geometry,
            )
        )
    return Swath(
        swath=swath,
        polarization=_text(root, "adsHeader/polarisation").lower(),
        mission=_text(root, "adsHeader/missionId"),
        pass_direction=_text(root, "generalAnnotation/productInformation/pass").upper(),
        start=parse_time(_text(root, "adsHeader/startTime")),
        stop=parse_time(_text(root, "adsHeader/stopTime")),
        lines_per_burst=lines_per_burst,
        samples_per_burst=samples,
        radar_frequency=float(_text(root, "generalAnnotation/productInformation/radarFrequency")),
        azimuth_time_interval=interval,
        slant_range_time=float(_text(root, "imageAnnotation/imageInformation/slantRangeTime")),
        bursts=tuple(bursts),
        grid=grid,
        range_pixel_spacing=float(_text(root, "imageAnnotation/imageInformation/rangePixelSpacing")),
        azimuth_pixel_spacing=float(
            _text(root, "imageAnnotation/imageInformation/azimuthPixelSpacing")
        ),
    )


def _geolocation_grid(root: ET.Element) -> GeolocationGrid:
    nodes = []
    for point in root.findall("geolocationGrid/geolocationGridPointList/geolocationGridPoint"):
        nodes.append((
            int(_text(point, "line")),
            parse_time(_text(point, "azimuthTime")),
            float(_text(point, "pixel")),
            float(_text(point, "latitude")),
            float(_text(point, "longitude")),
            float(_text(point, "height")),
            float(_text(point, "incidenceAngle")),
            float(_text(point, "slantRangeTime")),
        ))  # fmt: skip
    return GeolocationGrid.from_points(nodes)


def parse_manifest_ipf(data: bytes) -> str | None:
    """The IPF version from manifest.safe (as ISCE's populateIPFVersion reads it)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return None
    for element in root.iter():
        if element.tag.endswith("}software") and element.get("name") == "Sentinel-1 IPF":
            return element.get("version") or None
    return None


def parse_tiff_shape(head: bytes) -> tuple[int, int] | None:
    """(width, length) from a classic TIFF header, or None if it is not a readable TIFF."""
    if len(head) < 8 or head[:2] not in (b"II", b"MM"):
        return None
    order = "<" if head[:2] == b"II" else ">"
    magic, offset = struct.unpack(order + "HI", head[2:8])
    if magic != 42 or offset + 2 > len(head):
        return None
    (count,) = struct.unpack(order + "H", head[offset : offset + 2])
    tags: dict[int, int] = {}
    for index in range(count):
        start = offset + 2 + 12 * index
        if start + 12 > len(head):
            return None
        tag, kind, _n = struct.unpack(order + "HHI", head[start : start + 8])
        fmt = "H" if kind == 3 else "I"
        (value,) = struct.unpack(order + fmt, head[start + 8 : start + 8 + struct.calcsize(fmt)])
        tags[tag] = value
    if 256 not in tags or 257 not in tags:
        return None
    return tags[256], tags[257]


# --- zips ---------------------------------------------------------------------------------------


def check_layout(path: str | Path, polarization: str = "vv") -> dict[str, Any]:
    """Check a SAFE zip the way topsApp will read it; return its member names by role.

    Raises SafeError naming the problem and the fix: not a zip, a top-level folder other than
    ``<zip name>.SAFE/``, no manifest, no annotation or measurement for the polarization, or an
    empty measurement TIFF.
    """
    path = Path(path)
    pol = polarization.lower()
    if not path.is_file():
        raise SafeError(f"SLC {path} is missing; run the staging step (snakemake stage) first")
    expected = path.name.removesuffix(".zip") + ".SAFE"
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename: i for i in zf.infolist()}
    except (zipfile.BadZipFile, OSError) as exc:
        raise SafeError(
            f"SLC {path} is not a readable zip ({exc}); delete it so that staging downloads it again"
        ) from None
    tops = sorted({name.split("/", 1)[0] for name in infos})
    if tops != [expected]:
        shown = ", ".join(f"'{t}/'" for t in tops[:3]) or "nothing"
        raise SafeError(
            f"SLC {path.name} holds {shown} at its top level but topsApp needs '{expected}/' "
            "(it would only print 'Could not extract swath' and fail later in topo); "
            "repack it with the .SAFE folder at the top, or delete it to download it again"
        )
    manifest = f"{expected}/manifest.safe"
    if manifest not in infos:
        raise SafeError(f"SLC {path.name} has no {manifest}; delete it to download it again")
    annotations: dict[int, str] = {}
    measurements: dict[int, str] = {}
    for name in infos:
        match = _ANNOTATION_RE.match(name)
        if match and match["pol"] == pol:
            swath = int(match["swath"])
            annotations[swath] = name
            tiff = f"{expected}/measurement/{match['stem']}.tiff"
            if tiff not in infos:
                raise SafeError(
                    f"SLC {path.name} lacks the measurement {tiff.rsplit('/', 1)[-1]}; "
                    "delete it to download it again"
                )
            if infos[tiff].file_size == 0:
                raise SafeError(
                    f"SLC {path.name}: measurement {tiff.rsplit('/', 1)[-1]} is empty (0 bytes), "
                    "so topsApp cannot read swath "
                    f"{swath}; delete the zip to download it again"
                )
            measurements[swath] = tiff
    if not annotations:
        raise SafeError(
            f"SLC {path.name} has no {pol.upper()} annotation; choose a polarization it has "
            "(search.polarization) or remove the scene"
        )
    return {
        "safe": expected,
        "manifest": manifest,
        "annotations": annotations,
        "measurements": measurements,
        "sizes": {name: infos[name].file_size for name in measurements.values()},
    }


@contextlib.contextmanager
def _damaged_zip(path: Path) -> Iterator[None]:
    """A member that fails its CRC or does not inflate: one message, not a zipfile traceback."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise SafeError(
            f"SLC {path} is damaged ({exc}); delete it so that staging downloads it again"
        ) from None


def read_safe(path: str | Path, polarization: str = "vv") -> Safe:
    """Layout check plus annotation parsing of one SAFE zip (no pixel data is read)."""
    path = Path(path)
    layout = check_layout(path, polarization)
    swaths: dict[int, Swath] = {}
    with _damaged_zip(path), zipfile.ZipFile(path) as zf:
        ipf = parse_manifest_ipf(zf.read(layout["manifest"]))
        for number, member in sorted(layout["annotations"].items()):
            tiff = layout["measurements"][number]
            with zf.open(tiff) as handle:
                shape = parse_tiff_shape(handle.read(65536))
            try:
                parsed = parse_annotation(zf.read(member))
            except (ET.ParseError, ValueError) as exc:
                raise SafeError(
                    f"SLC {path.name}: annotation {member.rsplit('/', 1)[-1]} is unreadable "
                    f"({exc}); delete the zip to download it again"
                ) from None
            swaths[number] = _with_members(parsed, member, tiff, layout["sizes"][tiff], shape)
    return Safe(path=path, name=layout["safe"], ipf=ipf, polarization=polarization.lower(),
                swaths=swaths)  # fmt: skip


_HEADER_TIME_RE = re.compile(rb"<(startTime|stopTime)>([^<]+)</\1>")


def scene_times(path: str | Path, polarization: str = "vv") -> tuple[dt.datetime, dt.datetime]:
    """Layout check, then first start and last stop of the swaths (from the annotation headers).

    Cheaper than :func:`read_safe`: only the top of each annotation is read.
    """
    layout = check_layout(path, polarization)
    times: list[dt.datetime] = []
    with _damaged_zip(Path(path)), zipfile.ZipFile(path) as zf:
        for member in layout["annotations"].values():
            with zf.open(member) as handle:
                head = handle.read(4096)
            times += [parse_time(m[2].decode()) for m in _HEADER_TIME_RE.finditer(head)]
    if not times:
        raise SafeError(f"SLC {Path(path).name}: annotation headers without times; delete it")
    return min(times), max(times)


def _with_members(swath: Swath, annotation: str, tiff: str, size: int, shape: Any) -> Swath:
    from dataclasses import replace

    return replace(
        swath, annotation=annotation, measurement=tiff, measurement_bytes=size,
        measurement_shape=shape,
    )  # fmt: skip


# --- swath selection ----------------------------------------------------------------------------


def roi_bursts(safes: Iterable[Safe], roi: Polygon | MultiPolygon) -> dict[int, int]:
    """Number of bursts intersecting the ROI per swath, over all slices of one date."""
    counts: dict[int, int] = {}
    for safe in safes:
        for number, swath in safe.swaths.items():
            hits = len(swath.bursts_intersecting(roi))
            if hits:
                counts[number] = counts.get(number, 0) + hits
    return counts


def common_bursts(reference: Sequence[Safe], secondary: Sequence[Safe],
                  roi_box: tuple[float, float, float, float]) -> dict[int, int]:  # fmt: skip
    """Bursts per swath that topsApp processes for a pair: those its crop keeps on both dates.

    A burst is the same on two dates when its time since the ascending node agrees within half
    a burst (the repeat orbit keeps it within milliseconds). What topsApp's log calls "Number of
    common bursts": the pair's disk, memory and run time scale with it.
    """

    def kept(safes: Sequence[Safe]) -> dict[int, list[float]]:
        out: dict[int, list[float]] = {}
        for safe in safes:
            for number, swath in safe.swaths.items():
                out.setdefault(number, []).extend(b.anx_time for b in swath.bursts_isce_keeps(roi_box))
        return out

    ref, sec = kept(reference), kept(secondary)
    counts: dict[int, int] = {}
    for number, times in ref.items():
        period = next(s.swaths[number] for s in reference if number in s.swaths)
        half = period.lines_per_burst * period.azimuth_time_interval / 2
        common = sum(1 for t in times if any(abs(t - u) < half for u in sec.get(number, [])))
        if common:
            counts[number] = common
    return counts


# ISCE's phase sigma (merged/phsig.cor, the filter step) comes from ICU, which works in azimuth
# patches of 3700 lines overlapping by 264 (icu.F): an interferogram of 264 lines or fewer gets
# no patch, and ISCE writes an empty phsig.cor without an error (seen with ISCE2 2.6.5).
ICU_MIN_LINES = 265


def merged_lines(reference: Sequence[Safe], counts: dict[int, int], azimuth_looks: int) -> int:
    """Lines of topsApp's merged (multilooked) interferogram for ``counts`` common bursts per
    swath: one burst's lines plus a burst cycle per further burst, over the azimuth looks."""
    longest = 0
    for number, bursts in counts.items():
        swath = next(s.swaths[number] for s in reference if number in s.swaths)
        times = [b.azimuth_time for b in swath.bursts]
        cycle = (
            (times[1] - times[0]).total_seconds() / swath.azimuth_time_interval
            if len(times) > 1
            else swath.lines_per_burst
        )
        longest = max(longest, int((bursts - 1) * cycle + swath.lines_per_burst))
    return longest // max(1, azimuth_looks)


def select_swaths(
    reference: Sequence[Safe], secondary: Sequence[Safe], roi: Polygon | MultiPolygon
) -> list[int]:
    """Swaths whose bursts intersect the ROI on both dates (``isce.swaths: auto``).

    The footprint test uses the annotation's geolocation grid. ISCE crops bursts with a wider box
    (rdr2geo at heights -500..9000 m), so every swath chosen here keeps at least one burst in
    ISCE too, and the post-preprocess check that each ``IW<n>.xml`` exists holds.
    """
    ref = roi_bursts(reference, roi)
    sec = roi_bursts(secondary, roi)
    chosen = sorted(set(ref) & set(sec))
    if not chosen:
        names = ", ".join(s.granule for s in [*reference, *secondary])
        raise SafeError(
            f"no swath of {names} has bursts over the ROI on both dates; check the ROI or "
            "drop these dates (search.min_roi_coverage)"
        )
    return chosen
