"""The MintPy hand-off: beside a pair's products, the files MintPy's ``hyp3`` loader reads as they are.

A user (or the workflow's time-series step) then points a MintPy template at them::

    mintpy.load.processor    = hyp3
    mintpy.load.unwFile      = <products>/*/mintpy/*_unw_phase.tif
    mintpy.load.corFile      = <products>/*/mintpy/*_corr.tif
    mintpy.load.connCompFile = <products>/*/mintpy/*_conncomp.tif
    mintpy.load.demFile      = <products>/*/mintpy/*_dem.tif
    mintpy.load.incAngleFile = <products>/*/mintpy/*_lv_theta.tif
    mintpy.load.azAngleFile  = <products>/*/mintpy/*_lv_phi.tif

and runs ``load_data.py`` / ``smallbaselineApp.py``. MintPy is GPL-3.0: it is only ever run as a
program in its own process, never imported by this package.

What MintPy 1.6 reads (facts from the released wheels 1.6.0 to 1.6.4 on PyPI, and from
ASFHyP3/hyp3-isce2, which writes the products the loader was made for)
---------------------------------------------------------------------------------------------

For ``processor = hyp3``, ``load_data`` runs ``prep_hyp3`` on every file that a
``mintpy.load.*File`` pattern matches, which writes ``<file>.rsc`` beside it: the grid from GDAL,
the rest from a ``<product name>.txt`` in the same folder. The product name is the start of the
file name, in one of three HyP3 forms:

* scene form (HyP3's GAMMA products), e.g. ``S1AC_20250601T052632_20250613T052633_VVP012_INT80_G_ueF_1A2B``:
  it also needs ``Reference Granule`` and ``Reference Orbit Number`` (absolute orbit), from which
  it derives the relative orbit per satellite. 1.6.0 to 1.6.2 raise for anything but S1A/S1B;
  1.6.3's name pattern has no S1D (``S1[ABC]{2}``), so an S1D name does not parse; only 1.6.4
  knows S1C's orbit change and S1D. It would also mislabel ISCE2 products as GAMMA's.
* multi-burst form, e.g. ``S1_064_000000s1n00-136231s2n02-000000s3n00_IW_20200604_20200616_VV_INT80_77F1``:
  1.6.0 to 1.6.2 keep only its first 8 ``_`` fields (the product id is lost: 1.6.0 looks for a
  ``.txt`` that is not there) and take it for the scene form, whose date fields these are not
  (1.6.1 and 1.6.2 fail parsing ``064`` as a date). Only 1.6.3 and 1.6.4 parse it.
* single-burst form, ``S1_<6 digits>_IW<1-3>_<YYYYMMDD>_<YYYYMMDD>_<VV|HH>_INT<2 digits>_<4 hex>``:
  parsed since 1.6.0; the satellite is not part of the name and no orbit number is read. Dates
  come from fields 4 and 5, the swath label from the ``IW`` digit; the 6 digits (HyP3's burst id),
  the spacing digits and the hex id are not read. 1.6.0 alone still fails for it: it derives a
  relative orbit from ``Reference Granule`` for S1A/S1B only and raises otherwise (HyP3's own
  burst granule names included).

Checked by running each wheel's ``add_hyp3_metadata`` (outside this repository) on our files
renamed to each form: scene form with an S1C or S1D reference fails in 1.6.0-1.6.3 and passes in
1.6.4; multi-burst fails in 1.6.0-1.6.2; single-burst with S1C/S1D granules passes in 1.6.1-1.6.4
and fails in 1.6.0.

**Route chosen: the single-burst form.** It is the one that loads S1A, S1B, S1C and S1D pairs
with every MintPy from 1.6.1 on, needs no absolute orbit number, and names what the products
are (ISCE2 output). The second candidate, writing MintPy's own attribute files beside our
GeoTIFFs, does not fit: ``load_data`` has no plain-GeoTIFF processor, and for ``hyp3`` it
re-runs ``prep_hyp3``, which overwrites any ``.rsc`` of ours. The optional dependency is pinned
to MintPy 1.6.4 (``pip install -e '.[timeseries]'``).

Our names: ``S1_000000_IW<swath>_<ref>_<sec>_<VV|HH>_INT<posting m>_<id>``. ``000000`` says
"no single burst id" (our pairs span many bursts); ``<swath>`` is the first swath processed (a
label only); the posting is the grid's, rounded, at most 99; ``<id>`` is 4 hex digits of a hash
of the track and pair, so every pair of a stack has its own name. Cross-polarised pairs (VH,
HV) have no name in that form and are refused.

The ``.txt`` (``<name>.txt``). ``prep_hyp3`` reads each line as ``key: value``, deletes every
space and splits at ``:``, so every line must hold a colon (no blank lines) and a value must not
hold one (it would be cut there). Keys it reads (with spaces removed in its dictionary):

=======================  ==============================  ==========================================
``.txt`` key             MintPy attribute                unit / meaning
=======================  ==============================  ==========================================
UTC time                 CENTER_LINE_UTC                 seconds of day of the reference acquisition
Heading                  HEADING (``% 360 - 360``)       platform heading, degrees clockwise from north;
                                                         ORBIT_DIRECTION is ascending when
                                                         ``|HEADING| < 90``
Azimuth looks            ALOOKS                          integer
Range looks              RLOOKS                          integer (x MintPy's S1 pixel sizes)
Earth radius at nadir    EARTH_RADIUS                    m
Spacecraft height        HEIGHT                          m
Slant range near         STARTING_RANGE                  m
Baseline                 P_BASELINE_TOP/BOTTOM_HDR       perpendicular baseline, m (pairs only)
Unwrapping type          unwrap_method                   text
Reference Granule        (1.6.0-1.6.2 read it always)    the reference scene(s)
=======================  ==============================  ==========================================

HyP3 writes more (``Secondary Granule``, pass direction, ``Slant range center/far``, filter
settings, DEM); we write the same set so a reader of HyP3's files finds what it expects. MintPy
hard-codes Sentinel-1's wavelength and pixel sizes for ``hyp3``. HyP3's own values: a
spacecraft height of 693 km and a constant Earth radius; UTC time from the annotation's first
line; heading from the annotation's ``platformHeading``.

Which file is which: ``prep_hyp3`` treats a file as an interferogram (dates and baseline) when
its *path* holds ``unw_phase`` or ``corr``, so no folder name may hold either; angles are in
radians when the name holds ``lv_theta`` / ``lv_phi``.

Angles. MintPy's geometry keeps ISCE's convention (as our COGs): incidence in degrees from the
vertical at the target, azimuth of the target-to-satellite line in degrees from north,
anticlockwise. HyP3's ``lv_theta`` is the elevation of that line above the horizontal and
``lv_phi`` its direction anticlockwise from east, both in radians. On load MintPy turns 0 into
NaN and converts ``incidence = 90 - deg(lv_theta)``, ``azimuth = deg(lv_phi) - 90`` (wrapped to
[-180, 180)). So we write ``lv_theta = rad(90 - incidence)`` and ``lv_phi = rad(azimuth + 90)``
(as hyp3-isce2 does from ``los.rdr.geo``), 0 where there is no data.

The other rasters follow HyP3's no-data: 0 (float32 ``unw_phase``, ``corr``; uint8
``conncomp``, where 0 also means "in no component", which MintPy treats as unreliable). The
unwrapped phase is topsApp's, unreferenced, positive = range increase, as HyP3's (MintPy turns
it into displacement towards the satellite itself). The DEM is the track's geocoding DEM
(WGS84 ellipsoidal heights) sampled bilinearly at the pair grid's samples: exact where the grids
share samples, as topsApp's geocoding grid does.

Not here yet: the water mask (``_water_mask.tif``, once the workflow has one).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..atomic import atomic_path, write_text
from ..grid import Grid
from ..isce_xml import evaluate
from .angles import AZIMUTH_ANGLE, INCIDENCE_ANGLE
from .coherence import COHERENCE
from .components import CONNECTED_COMPONENTS
from .displacement import UNWRAPPED_PHASE
from .isce_input import IsceRowReader, read_topsapp_xml, swath_properties, swath_xmls
from .metadata import read_metadata
from .spec import BYTE_NODATA, FloatArray, ProductError

log = logging.getLogger(__name__)

# HyP3's suffixes after the product name (what the loader's patterns match)
UNW_PHASE = "unw_phase"
CORR = "corr"
CONNCOMP = "conncomp"
DEM = "dem"
LV_THETA = "lv_theta"
LV_PHI = "lv_phi"
HANDOFF_SUFFIXES = (UNW_PHASE, CORR, CONNCOMP, DEM, LV_THETA, LV_PHI)

# HyP3's values (hyp3-isce2): Sentinel-1's nominal height
SPACECRAFT_HEIGHT_M = 693_000.0
WGS84_A = 6_378_137.0
WGS84_B = 6_356_752.314245
NO_BURST_ID = "000000"
HANDOFF_NODATA = 0.0
ZERO_NUDGE_RAD = 1e-7  # 6e-6 degrees
MEMORY_BUDGET_MB = 128

# The single-burst form, as we write it (our own check that a name will parse)
SINGLE_BURST_NAME = re.compile(
    r"S1_(?P<burst>\d{6})_IW(?P<swath>[123])_(?P<reference>\d{8})_(?P<secondary>\d{8})_"
    r"(?P<pol>VV|HH)_INT(?P<posting>\d{2})_(?P<id>[0-9A-F]{4})"
)


# ------------------------------------------------------------------------------------------------
# Numerics (pure)
# ------------------------------------------------------------------------------------------------


def _with_zero_nodata(radians: np.ndarray) -> FloatArray:
    """float32, 0 where there is no data; a real 0 (which MintPy would read as no data) moves by
    ZERO_NUDGE_RAD."""
    out = np.where(radians == 0, ZERO_NUDGE_RAD, radians)
    return np.where(np.isfinite(out), out, HANDOFF_NODATA).astype(np.float32)


def lv_theta(incidence_deg: npt.ArrayLike) -> FloatArray:
    """HyP3's ``lv_theta`` (radians above the horizontal) from incidence (degrees from vertical);
    0 where there is no data (NaN in)."""
    return _with_zero_nodata(np.radians(90.0 - np.asarray(incidence_deg, dtype=np.float64)))


def lv_phi(azimuth_deg: npt.ArrayLike) -> FloatArray:
    """HyP3's ``lv_phi`` (radians anticlockwise from east) from our azimuth (degrees
    anticlockwise from north); 0 where there is no data (NaN in)."""
    return _with_zero_nodata(np.radians(np.asarray(azimuth_deg, dtype=np.float64) + 90.0))


def incidence_from_lv_theta(theta: npt.ArrayLike) -> FloatArray:
    """The inverse of :func:`lv_theta` (0 is no data -> NaN)."""
    values = np.asarray(theta, dtype=np.float64)
    return np.where(values == 0, np.nan, 90.0 - np.degrees(values))


def azimuth_from_lv_phi(phi: npt.ArrayLike) -> FloatArray:
    """The inverse of :func:`lv_phi`, wrapped to [-180, 180) (0 is no data -> NaN)."""
    values = np.asarray(phi, dtype=np.float64)
    azimuth = (np.degrees(values) - 90.0 + 180.0) % 360.0 - 180.0
    return np.where(values == 0, np.nan, azimuth)


def heading_from_los_azimuth(azimuth_deg: float) -> float:
    """Platform heading (degrees clockwise from north, in [-180, 180)) of a right-looking radar
    whose target-to-satellite line points ``azimuth_deg`` anticlockwise from north.

    The look direction is the heading plus 90 degrees clockwise; the target-to-satellite line
    is opposite to it: clockwise bearing heading + 270, i.e. ``azimuth = 90 - heading``.
    """
    return (90.0 - azimuth_deg + 180.0) % 360.0 - 180.0


def earth_radius_m(latitude_deg: float) -> float:
    """Geocentric radius of the WGS84 ellipsoid at a latitude."""
    phi = math.radians(latitude_deg)
    a2c, b2s = WGS84_A**2 * math.cos(phi), WGS84_B**2 * math.sin(phi)
    ac, bs = WGS84_A * math.cos(phi), WGS84_B * math.sin(phi)
    return math.sqrt((a2c**2 + b2s**2) / (ac**2 + bs**2))


def slant_range_m(incidence_deg: npt.ArrayLike, height_m: float, radius_m: float) -> FloatArray:
    """Slant range (m) to a target seen at an incidence angle, on a sphere of ``radius_m`` with
    the satellite ``height_m`` above it: the look angle from ``sin(look) = R sin(inc)/(R+H)``,
    the range from the triangle Earth centre, satellite, target."""
    inc = np.radians(np.asarray(incidence_deg, dtype=np.float64))
    look = np.arcsin(radius_m * np.sin(inc) / (radius_m + height_m))
    centre_angle = inc - look
    return radius_m * np.sin(centre_angle) / np.sin(look)


def posting_m(grid: Grid) -> int:
    """The grid's north-south posting in metres, rounded, within HyP3's two digits."""
    metres = abs(grid.delta_lat) * math.pi / 180.0 * WGS84_A
    return min(99, max(1, round(metres)))


def hyp3_name(reference: str, secondary: str, *, track: str | None, swath: int = 1,
              polarization: str = "VV", posting: int = 80) -> str:  # fmt: skip
    """The single-burst form name of a pair (see the module docstring)."""
    pol = polarization.upper()
    if pol not in ("VV", "HH"):
        raise ProductError(
            f"polarization {polarization}: MintPy's hyp3 loader names only VV or HH pairs; "
            "hand co-polarised pairs to MintPy"
        )
    if swath not in (1, 2, 3):
        raise ProductError(f"swath {swath} is not an IW swath (1, 2 or 3)")
    for date in (reference, secondary):
        if not re.fullmatch(r"\d{8}", date or ""):
            raise ProductError(f"date {date!r} is not YYYYMMDD; the pair's metadata is incomplete")
    digest = hashlib.sha1(f"{track}:{reference}_{secondary}".encode()).hexdigest()[:4].upper()
    name = (f"S1_{NO_BURST_ID}_IW{swath}_{reference}_{secondary}_{pol}_INT{posting:02d}_"
            f"{digest}")  # fmt: skip
    assert SINGLE_BURST_NAME.fullmatch(name), name
    return name


@dataclass(frozen=True)
class RadarInfo:
    """What the ``.txt`` says that the products do not.

    ``heading_deg``, ``slant_range_near_m`` and ``slant_range_far_m`` may be left None: they are
    then derived from the angle products (:func:`heading_from_los_azimuth`, :func:`slant_range_m`
    at the smallest and largest incidence).
    """

    utc_seconds: float  # seconds of day of the reference acquisition
    range_looks: int
    azimuth_looks: int
    reference_granules: tuple[str, ...] = ()
    secondary_granules: tuple[str, ...] = ()
    unwrapper: str = "snaphu_mcf"
    filter_strength: float | None = None
    heading_deg: float | None = None
    slant_range_near_m: float | None = None
    slant_range_far_m: float | None = None
    spacecraft_height_m: float = SPACECRAFT_HEIGHT_M
    earth_radius_m: float | None = None  # None: WGS84's radius at the grid's centre


@dataclass(frozen=True)
class AngleSummary:
    """What the .txt takes from the angle products."""

    incidence_min: float
    incidence_max: float
    azimuth_mean: float


def parameter_lines(info: RadarInfo, *, baseline_m: float | None, posting: int,
                    angles: AngleSummary | None, latitude: float) -> list[tuple[str, str]]:  # fmt: skip
    """(key, value) of the ``<name>.txt``, in HyP3's order and with HyP3's keys."""
    height = info.spacecraft_height_m
    radius = info.earth_radius_m if info.earth_radius_m is not None else earth_radius_m(latitude)
    heading, near, far = info.heading_deg, info.slant_range_near_m, info.slant_range_far_m
    if angles is not None:
        if heading is None:
            heading = heading_from_los_azimuth(angles.azimuth_mean)
        if near is None:
            near = float(slant_range_m(angles.incidence_min, height, radius))
        if far is None:
            far = float(slant_range_m(angles.incidence_max, height, radius))
    missing = [n for n, v in (("heading", heading), ("slant range near", near),
                              ("slant range far", far)) if v is None]  # fmt: skip
    if missing:
        raise ProductError(
            f"the MintPy hand-off needs the {', '.join(missing)}: give them, or export the "
            "incidence and azimuth angles (los.rdr in the geocode list)"
        )
    assert heading is not None and near is not None and far is not None
    direction = "ASCENDING" if abs(heading) < 90 else "DESCENDING"
    lines = [
        ("Reference Granule", ", ".join(info.reference_granules) or "unknown"),
        ("Secondary Granule", ", ".join(info.secondary_granules) or "unknown"),
        ("Reference Pass Direction", direction),
        ("Secondary Pass Direction", direction),
        ("Baseline", repr(float(baseline_m)) if baseline_m is not None else "0.0"),
        ("UTC time", repr(float(info.utc_seconds))),
        ("Heading", repr(float(heading))),
        ("Spacecraft height", repr(float(height))),
        ("Earth radius at nadir", repr(float(radius))),
        ("Slant range near", repr(float(near))),
        ("Slant range center", repr(float((near + far) / 2))),
        ("Slant range far", repr(float(far))),
        ("Range looks", str(int(info.range_looks))),
        ("Azimuth looks", str(int(info.azimuth_looks))),
        ("INSAR phase filter", "yes" if info.filter_strength else "no"),
        ("Phase filter parameter", repr(float(info.filter_strength or 0.0))),
        ("Unwrapping type", info.unwrapper),
        ("Pixel spacing (m)", str(posting)),
        ("Water mask", "no"),
    ]
    for key, value in lines:
        if ":" in value or "\n" in value or not value.strip():
            raise ProductError(f"the hand-off's {key!r} value {value!r} cannot be written: "
                               "MintPy cuts a value at ':' and needs one on every line")  # fmt: skip
    return lines


def parameter_text(lines: Sequence[tuple[str, str]]) -> str:
    return "".join(f"{key}: {value}\n" for key, value in lines)


# ------------------------------------------------------------------------------------------------
# What the .txt needs from a topsApp run (while the run directory exists)
# ------------------------------------------------------------------------------------------------

# topsApp's own defaults (ISCE2 topsApp.py), for a hand-run topsApp.xml that does not set them
TOPSAPP_DEFAULTS = {"rangelooks": "19", "azimuthlooks": "7", "filterstrength": "0.5",
                    "unwrappername": "icu"}  # fmt: skip


@dataclass(frozen=True)
class RunDescription:
    """The hand-off's settings read from a topsApp run directory."""

    radar: RadarInfo
    swath: int
    polarization: str


def _seconds_of_day(stamp: str) -> float:
    parsed = dt.datetime.fromisoformat(stamp.strip().replace("T", " "))
    return parsed.hour * 3600 + parsed.minute * 60 + parsed.second + parsed.microsecond / 1e6


def _safes(text: str | None) -> tuple[str, ...]:
    value = evaluate(text) if text else ()
    items = value if isinstance(value, (list, tuple)) else [value]
    return tuple(Path(str(item)).name.removesuffix(".zip") for item in items if str(item))


def run_description(workdir: str | Path) -> RunDescription:
    """UTC time, looks, unwrapper, filter, scenes, first swath and polarization of a topsApp run
    (its topsApp.xml and ``reference/IW<n>.xml``); heading and slant ranges are left to the angle
    products. Call it before the run directory is cleaned (``isce.keep``)."""
    workdir = Path(workdir)
    xml = read_topsapp_xml(workdir)

    def setting(key: str) -> str:
        return xml.get(f"topsinsar.{key}") or TOPSAPP_DEFAULTS[key]

    starts: list[float] = []
    stops: list[float] = []
    for path in swath_xmls(workdir, "reference"):
        for name, text in swath_properties(path):
            if name in ("sensingstart", "sensingstop") and text.strip():
                try:
                    (starts if name == "sensingstart" else stops).append(_seconds_of_day(text))
                except ValueError:
                    continue
    if not starts:
        raise ProductError(
            f"{workdir}/reference/IW<n>.xml gives no sensing time: the MintPy hand-off needs the "
            "reference acquisition's time; re-run topsApp's preprocess"
        )
    first, last = min(starts), max(stops or starts)
    swaths = evaluate(xml.get("topsinsar.swaths", "[1]"))
    swath = min(swaths) if isinstance(swaths, (list, tuple)) and swaths else 1
    unwrapper = setting("unwrappername")
    radar = RadarInfo(
        utc_seconds=(first + last) / 2,
        range_looks=int(setting("rangelooks")),
        azimuth_looks=int(setting("azimuthlooks")),
        reference_granules=_safes(xml.get("reference.safe")),
        secondary_granules=_safes(xml.get("secondary.safe")),
        unwrapper=unwrapper,
        filter_strength=float(setting("filterstrength")),
    )
    polarization = (xml.get("reference.polarization") or "vv").upper()
    return RunDescription(radar, int(swath), polarization)


def run_record(workdir: str | Path) -> dict[str, Any] | None:
    """:func:`run_description` as metadata.json's ``mintpy`` block, written by the export while
    the run directory is whole, so the hand-off never needs it; None (with a warning) when the
    run lacks what it takes."""
    try:
        description = run_description(workdir)
    except ProductError as exc:
        log.warning("no MintPy hand-off record: %s", exc)
        return None
    radar = asdict(description.radar)
    for key in ("reference_granules", "secondary_granules"):
        radar[key] = list(radar[key])
    return {"radar": radar, "swath": description.swath, "polarization": description.polarization}


def description_from_record(record: dict[str, Any] | None, where: str) -> RunDescription:
    """The :class:`RunDescription` that :func:`run_record` wrote into metadata.json."""
    if not record:
        raise ProductError(
            f"{where} has no 'mintpy' record (exported before the time series existed, or the "
            "run lacked reference/IW<n>.xml): delete the pair's metadata.json and run again to "
            "re-export it"
        )
    radar = dict(record["radar"])
    for key in ("reference_granules", "secondary_granules"):
        radar[key] = tuple(radar.get(key) or ())
    return RunDescription(RadarInfo(**radar), int(record["swath"]), str(record["polarization"]))


# ------------------------------------------------------------------------------------------------
# Resampling the DEM onto the pair's grid (pure, given the rows it reads)
# ------------------------------------------------------------------------------------------------


class RowSource(Protocol):
    grid: Grid

    def read_rows(self, row0: int, rows: int) -> np.ndarray: ...


def _positions(first: float, step: float, count: int, source_first: float, source_step: float,
               source_count: int, what: str) -> FloatArray:  # fmt: skip
    pos = (first + step * np.arange(count) - source_first) / source_step
    snapped = np.round(pos)
    pos = np.where(np.abs(pos - snapped) < 1e-6, snapped, pos)
    if count and (pos.min() < 0 or pos.max() > source_count - 1):
        raise ProductError(
            f"the DEM does not cover the pair's grid in {what}; use the track's geocoding DEM "
            "(the DEM manifest's geocode_dem), which covers every pair of the track"
        )
    return pos


def sample_bilinear(source: RowSource, grid: Grid, row0: int, rows: int) -> FloatArray:
    """Rows [row0, row0+rows) of ``grid`` sampled bilinearly from ``source`` (exact where the
    samples coincide)."""
    sgrid = source.grid
    y = _positions(grid.first_lat + row0 * grid.delta_lat, grid.delta_lat, rows, sgrid.first_lat,
                   sgrid.delta_lat, sgrid.length, "latitude")  # fmt: skip
    x = _positions(grid.first_lon, grid.delta_lon, grid.width, sgrid.first_lon, sgrid.delta_lon,
                   sgrid.width, "longitude")  # fmt: skip
    top = int(np.floor(y.min()))
    bottom = min(sgrid.length - 1, int(np.floor(y.max())) + 1)
    block = source.read_rows(top, bottom - top + 1)[0].astype(np.float64)
    y0 = np.minimum(np.floor(y).astype(int), sgrid.length - 2 if sgrid.length > 1 else 0)
    x0 = np.minimum(np.floor(x).astype(int), sgrid.width - 2 if sgrid.width > 1 else 0)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    r0 = y0 - top
    r1 = np.minimum(r0 + 1, block.shape[0] - 1)
    c1 = np.minimum(x0 + 1, sgrid.width - 1)
    v00, v01 = block[r0][:, x0], block[r0][:, c1]
    v10, v11 = block[r1][:, x0], block[r1][:, c1]
    # a weight of exactly 0 never lets a neighbour's NaN in
    top_row = np.where(fx == 0, v00, v00 * (1 - fx) + v01 * fx)
    bottom_row = np.where(fx == 0, v10, v10 * (1 - fx) + v11 * fx)
    return np.where(fy == 0, top_row, top_row * (1 - fy) + bottom_row * fy)


class _RasterioRows:
    """A GDAL-readable DEM (GeoTIFF, VRT) as a :class:`RowSource`."""

    def __init__(self, path: Path) -> None:
        import rasterio

        self._ds = rasterio.open(path)
        self.grid = Grid.from_transform(self._ds.transform, self._ds.width, self._ds.height)

    def read_rows(self, row0: int, rows: int) -> np.ndarray:
        from rasterio.windows import Window

        return self._ds.read(1, window=Window(0, row0, self._ds.width, rows))[None]

    def close(self) -> None:
        self._ds.close()


# ------------------------------------------------------------------------------------------------
# Writing the hand-off of one pair
# ------------------------------------------------------------------------------------------------


@dataclass
class HandoffResult:
    name: str
    files: dict[str, Path] = field(default_factory=dict)  # suffix (or "txt") -> path


def _row_windows(grid: Grid, bytes_per_pixel: int) -> Iterator[tuple[int, int]]:
    rows = max(1, (MEMORY_BUDGET_MB * 2**20) // max(1, grid.width * bytes_per_pixel))
    for row0 in range(0, grid.length, rows):
        yield row0, min(rows, grid.length - row0)


def _profile(grid: Grid, dtype: str, nodata: float | None) -> dict[str, Any]:
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    tiled = grid.width >= 256 and grid.length >= 256
    profile: dict[str, Any] = {
        "driver": "GTiff", "width": grid.width, "height": grid.length, "count": 1, "dtype": dtype,
        "crs": CRS.from_epsg(4326), "transform": Affine.from_gdal(*grid.transform),
        "compress": "deflate", "tiled": tiled,
    }  # fmt: skip
    if tiled:
        profile.update(blockxsize=256, blockysize=256)
    if nodata is not None:
        profile["nodata"] = nodata
    return profile


class _Writer:
    """One hand-off GeoTIFF, written row window by row window under its temporary name."""

    def __init__(self, stack: Any, path: Path, grid: Grid, dtype: str, nodata: float | None,
                 description: str) -> None:  # fmt: skip
        import rasterio

        tmp = stack.enter_context(atomic_path(path))
        self.dataset = stack.enter_context(rasterio.open(tmp, "w", **_profile(grid, dtype, nodata)))
        self.dataset.update_tags(1, DESCRIPTION=description)
        self.dtype = dtype

    def write(self, row0: int, values: np.ndarray) -> None:
        from rasterio.windows import Window

        rows, width = values.shape
        self.dataset.write(values.astype(self.dtype), 1, window=Window(0, row0, width, rows))


def _remove_other_names(product_dir: Path, name: str) -> None:
    """A hand-off written before under another name (another swath label, polarization or
    posting) would give MintPy the pair twice: its files go."""
    for path in sorted(product_dir.glob("S1_*")):
        match = SINGLE_BURST_NAME.match(path.name)
        if match and match.group() != name:
            log.info("removing %s: the pair's hand-off is now %s", path.name, name)
            path.unlink()


def _check_grid(path: Path, grid: Grid) -> None:
    import rasterio

    with rasterio.open(path) as ds:
        own = Grid.from_transform(ds.transform, ds.width, ds.height)
    if not own.same_as(grid):
        raise ProductError(f"{path} is not on the pair's grid {grid} (metadata.json): re-export the pair")


def write_mintpy_handoff(
    product_dir: str | Path,
    radar: RadarInfo,
    dem: str | Path,
    *,
    swath: int = 1,
    polarization: str = "VV",
    out_dir: str | Path | None = None,
) -> HandoffResult:
    """Write, beside a pair's exported products, the files MintPy's ``hyp3`` loader reads.

    ``product_dir`` holds the pair's COGs and metadata.json (``dinsar.products.export_pair``);
    ``dem`` is the track's geocoding DEM (an ISCE raster with its ``.xml``, or a GeoTIFF) that
    covers the pair's grid. The files go into ``out_dir`` (default: ``product_dir``), each through
    the atomic writer.
    """
    import contextlib

    import rasterio
    from rasterio.windows import Window

    product_dir = Path(product_dir)
    metadata = read_metadata(product_dir)
    pair = metadata.get("pair") or {}
    g = metadata["grid"]
    grid = Grid.from_transform(g["geotransform"], g["width"], g["length"])
    posting = posting_m(grid)
    name = hyp3_name(pair.get("reference") or "", pair.get("secondary") or "",
                     track=pair.get("track"), swath=swath, polarization=polarization,
                     posting=posting)  # fmt: skip
    result = HandoffResult(name)
    target = Path(out_dir) if out_dir is not None else product_dir
    target.mkdir(parents=True, exist_ok=True)
    _remove_other_names(target, name)

    def out(suffix: str) -> Path:
        return target / f"{name}_{suffix}.tif"

    sources = {UNW_PHASE: UNWRAPPED_PHASE, CORR: COHERENCE, CONNCOMP: CONNECTED_COMPONENTS}
    needed = [UNWRAPPED_PHASE, COHERENCE, INCIDENCE_ANGLE, AZIMUTH_ANGLE]
    missing = [f for f in needed if not (product_dir / f).is_file()]
    if missing:
        raise ProductError(
            f"{product_dir} lacks {', '.join(missing)}: MintPy needs the unwrapped phase, the "
            "coherence and the look angles (filt_topophase.unw, topophase.cor and los.rdr in the "
            "geocode list)"
        )
    for filename in [*needed, CONNECTED_COMPONENTS]:
        if (product_dir / filename).is_file():
            _check_grid(product_dir / filename, grid)

    # unwrapped phase, coherence, connected components: HyP3's no-data 0
    for suffix, filename in sources.items():
        source = product_dir / filename
        if not source.is_file():
            log.warning("%s: no %s, MintPy loads the pair without it", product_dir, filename)
            continue
        dtype = "uint8" if suffix == CONNCOMP else "float32"
        with contextlib.ExitStack() as stack:
            writer = _Writer(stack, out(suffix), grid, dtype, HANDOFF_NODATA,
                             f"{suffix} of {pair.get('pair')} from {filename}, no data 0")  # fmt: skip
            src = stack.enter_context(rasterio.open(source))
            for row0, rows in _row_windows(grid, 12):
                values = src.read(1, window=Window(0, row0, grid.width, rows))
                if suffix == CONNCOMP:
                    values = np.where(values == BYTE_NODATA, 0, values)
                else:
                    values = np.where(np.isfinite(values), values, HANDOFF_NODATA)
                writer.write(row0, values)
        result.files[suffix] = out(suffix)

    # look angles, with what the .txt takes from them
    inc_low, inc_high, sin_sum, cos_sum, count = math.inf, -math.inf, 0.0, 0.0, 0
    with contextlib.ExitStack() as stack:
        theta = _Writer(stack, out(LV_THETA), grid, "float32", HANDOFF_NODATA,
                        "line-of-sight elevation above the horizontal, rad (90 deg - incidence)")  # fmt: skip
        phi = _Writer(stack, out(LV_PHI), grid, "float32", HANDOFF_NODATA,
                      "line-of-sight direction anticlockwise from east, rad (azimuth + 90 deg)")  # fmt: skip
        inc_ds = stack.enter_context(rasterio.open(product_dir / INCIDENCE_ANGLE))
        az_ds = stack.enter_context(rasterio.open(product_dir / AZIMUTH_ANGLE))
        for row0, rows in _row_windows(grid, 24):
            window = Window(0, row0, grid.width, rows)
            inc, az = inc_ds.read(1, window=window), az_ds.read(1, window=window)
            valid = np.isfinite(inc) & np.isfinite(az)
            if valid.any():
                inc_low = min(inc_low, float(inc[valid].min()))
                inc_high = max(inc_high, float(inc[valid].max()))
                rad = np.radians(az[valid].astype(np.float64))
                sin_sum += float(np.sin(rad).sum())
                cos_sum += float(np.cos(rad).sum())
                count += int(valid.sum())
            theta.write(row0, lv_theta(np.where(valid, inc, np.nan)))
            phi.write(row0, lv_phi(np.where(valid, az, np.nan)))
    result.files[LV_THETA], result.files[LV_PHI] = out(LV_THETA), out(LV_PHI)
    angles = (AngleSummary(inc_low, inc_high, math.degrees(math.atan2(sin_sum, cos_sum)))
              if count else None)  # fmt: skip

    # the DEM on the pair's grid
    dem = Path(dem)
    isce_xml = dem.with_name(dem.name + ".xml")
    reader: Any = IsceRowReader(dem) if isce_xml.is_file() else _RasterioRows(dem)
    with contextlib.ExitStack() as stack:
        if isinstance(reader, IsceRowReader):
            stack.enter_context(reader)
        else:
            stack.callback(reader.close)
        writer = _Writer(stack, out(DEM), grid, "float32", None,
                         f"height above the WGS84 ellipsoid, m, from {dem.name}")  # fmt: skip
        for row0, rows in _row_windows(grid, 48):
            writer.write(row0, sample_bilinear(reader, grid, row0, rows))
    result.files[DEM] = out(DEM)

    latitude = (grid.first_lat + grid.last_lat) / 2
    if pair.get("bperp_m") is None:
        log.warning("%s: no perpendicular baseline in metadata.json; MintPy is told 0 m (it "
                    "then cannot estimate the DEM error from this pair)", pair.get("pair"))  # fmt: skip
    lines = parameter_lines(radar, baseline_m=pair.get("bperp_m"), posting=posting, angles=angles,
                            latitude=latitude)  # fmt: skip
    result.files["txt"] = write_text(target / f"{name}.txt", parameter_text(lines))
    log.info("MintPy hand-off of %s: %s_*", pair.get("pair"), name)
    return result
