"""The shared real stack: Sentinel-1 SAFE zips that the real topsApp.py processes in minutes.

Made from the real IW1 VV annotation of the xarray-sentinel fixture (S1B, 2021-04-01, path 168
descending, over the Dolomites), with made-up pixels whose phase carries a known deformation:

* Dates: ``dates`` acquisitions 12 days apart. Every time in the manifest and annotation moves
  by 12 days per cycle and the absolute orbit by 175 (S1B's repeat cycle), so each date sees
  the ground from exactly the same orbit positions: zero baseline, and ISCE's geometric
  coregistration offsets are zero.
* Size: only bursts ``bursts`` of the swath (the area lies in the first; ISCE keeps that one
  only) and the range samples ``samples``, so a pair takes about a minute on 2 cores. The
  annotation is cut consistently (burst list, valid samples, slant-range time of the first
  sample, geolocation grid), as a burst extractor cuts a burst.
* Shifted windows (opt-in, ``date_bursts``): a date may hold other bursts of the swath than
  ``bursts``, e.g. ``(4, 6)`` on most dates and ``(5, 7)`` on one, as when a slice starts a
  burst later. Its annotation, start and stop times (granule name) and footprint are cut for
  its own window; the pixels of a burst are the same on every date that holds it (the speckle
  and geometry are made over the union of the windows), so the dates stay coherent where they
  overlap. The manifest keeps the slice's footprint, as on every date.
* Pixels: circular Gaussian speckle, the same on every date, times exp(+i 4 pi / lambda D):
  D is a line-of-sight displacement towards the satellite, ``velocity`` m/year at the centre
  of a Gaussian bump of ``sigma_m`` around ``centre`` (lat, lon), growing linearly in time
  (a constant velocity). Each pixel's ground position comes from harness.radar_geometry.rdr2geo with
  the annotation's orbit and the DEM's heights, so the truth is a function of (lat, lon) that
  any product grid can be checked against.
* Decorrelation: on date ``decorrelated_date`` the speckle inside ``patch`` (a lat/lon box) is
  independent of the other dates, so coherence drops there.
* Orbits: POEORB-format files holding the annotation's own state vectors (re-timed with the
  date). ``displaced_orbit(date, metres)`` moves one date's orbit by a known distance
  perpendicular to the line of sight: ISCE's Bperp must report it.
* DEM: a smooth synthetic terrain with ellipsoidal heights, as a GeoTIFF (for ``dem.file``).

Everything is deterministic, and the result is cached by content (this file's source, the
spec, the source zip) under $DINSAR_TEST_CACHE (default ~/.cache/dinsar-toolkit/test-stacks),
so a test session builds it once and later sessions reuse it.

    python tests/harness/real_stack.py [OUT]     # build (or find) the default stack, print its folder
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import re
import shutil
import struct
import sys
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
for _path in (REPO_ROOT / "scripts", REPO_ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from harness.radar_geometry import Orbit, rdr2geo  # noqa: E402

SHARED = Path(os.environ.get("DINSAR_SHARED", REPO_ROOT.parent / "shared"))
SOURCE_ZIP = (
    SHARED / "fixtures" / "xarray-sentinel"
    / "S1B_IW_SLC__1SDV_20210401T052622_20210401T052650_026269_032297_EFA4.zip"
)  # fmt: skip
POEORB_TEMPLATE = (
    SHARED / "fixtures" / "sentineleof"
    / "S1B_OPER_AUX_POEORB_OPOD_20210313T012515_V20180501T225942_20180503T005942.EOF"
)  # fmt: skip
SPEED_OF_LIGHT = 299792458.0
CYCLE_DAYS = 12
CYCLE_ORBITS = 175
DAYS_PER_YEAR = 365.25
_TIME_RE = re.compile(r"([>=])(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?")
_STAMP = (2021, 1, 1, 0, 0, 0)
TIFF_HEADER = 8 + 2 + 12 * 11 + 4  # header, IFD of 11 entries, next-IFD offset: then the pixels


@dataclass(frozen=True)
class StackSpec:
    """What the stack holds; every field is part of the cache key."""

    dates: int = 4
    bursts: tuple[int, int] = (4, 6)  # [first, stop) burst indices of the source swath
    samples: tuple[int, int] = (8656, 12985)  # [first, stop) range samples (on grid columns)
    velocity: float = 0.30  # m/year along the line of sight, towards the satellite
    centre: tuple[float, float] = (46.41, 11.65)  # lat, lon of the bump
    sigma_m: float = 1200.0
    decorrelated_date: int | None = 2
    patch: tuple[float, float, float, float] = (46.4246, 46.4354, 11.602, 11.618)  # S, N, W, E
    # W, S, E, N: ISCE keeps both bursts (one would give too few lines at 7 looks for ICU)
    roi: tuple[float, float, float, float] = (11.58, 46.375, 11.72, 46.445)
    seed: int = 20210401
    amplitude_sigma: float = 150.0
    # (date index, first, stop): dates whose burst window is not ``bursts`` (default: none;
    # left out of the cache key while empty, so the default stack's key does not move)
    date_bursts: tuple[tuple[int, int, int], ...] = ()

    def window(self, k: int) -> tuple[int, int]:
        """[first, stop) burst indices of date ``k``."""
        return next(((b0, b1) for d, b0, b1 in self.date_bursts if d == k), self.bursts)

    def union(self) -> tuple[int, int]:
        """[first, stop) of the bursts any date holds."""
        windows = [self.window(k) for k in range(self.dates)] or [self.bursts]
        return min(w[0] for w in windows), max(w[1] for w in windows)


@dataclass
class Scene:
    date: str
    granule: str
    zip_path: Path
    md5: str
    bytes: int
    start: dt.datetime
    stop: dt.datetime
    orbit: int
    footprint: list[list[float]]  # lon/lat ring of the SAFE's bursts
    eof_name: str
    eof_path: Path
    days: float  # since the first date


@dataclass
class RealStack:
    folder: Path
    spec: StackSpec
    scenes: list[Scene]
    dem: Path
    wavelength: float
    extra: dict = field(default_factory=dict)

    @property
    def roi_wkt(self) -> str:
        w, s, e, n = self.spec.roi
        return f"POLYGON (({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))"

    def truth(self, lat: np.ndarray, lon: np.ndarray, days: float) -> np.ndarray:
        """LOS displacement (m, towards the satellite) after ``days`` since the first date."""
        return truth_displacement(self.spec, lat, lon, days)

    def velocity_field(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """True LOS velocity, m/year, positive towards the satellite."""
        return truth_displacement(self.spec, lat, lon, DAYS_PER_YEAR)

    def scene(self, date: str) -> Scene:
        return next(s for s in self.scenes if s.date == date)

    def displaced_orbit(self, date: str, metres: float) -> tuple[str, str]:
        """(file name, text) of ``date``'s orbit moved ``metres`` perpendicular to the LOS."""
        scene = self.scene(date)
        orbit = _read_eof_orbit(scene.eof_path.read_text())
        shift = _perpendicular_unit(orbit, scene, self.spec) * metres
        moved = dataclasses.replace(orbit, positions=orbit.positions + shift)
        return scene.eof_name, _eof_text(scene.eof_name, moved, scene.orbit, "S1B")


def truth_displacement(spec: StackSpec, lat: np.ndarray, lon: np.ndarray, days: float
                       ) -> np.ndarray:  # fmt: skip
    lat0, lon0 = spec.centre
    north = (np.asarray(lat) - lat0) * 111_320.0
    east = (np.asarray(lon) - lon0) * 111_320.0 * math.cos(math.radians(lat0))
    bump = np.exp(-0.5 * (north**2 + east**2) / spec.sigma_m**2)
    return spec.velocity * days / DAYS_PER_YEAR * bump


def dem_height(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Smooth synthetic terrain (ellipsoidal metres): a valley floor rising to a broad ridge."""
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    ridge = 450.0 * np.exp(-(((lat - 46.47) / 0.06) ** 2 + ((lon - 11.70) / 0.10) ** 2))
    return 900.0 + 120.0 * (lat - 46.4) / 0.1 + 60.0 * (lon - 11.6) / 0.1 + ridge


# --- building ------------------------------------------------------------------------------------


def cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dinsar-toolkit"
    return Path(os.environ.get("DINSAR_TEST_CACHE", default / "test-stacks"))


def _spec_record(spec: StackSpec) -> dict:
    """The spec as JSON: the opt-in ``date_bursts`` only when set (the default stack's record
    and key stay as before the field existed)."""
    record = dataclasses.asdict(spec)
    if not spec.date_bursts:
        record.pop("date_bursts")
    return record


def cache_key(spec: StackSpec) -> str:
    digest = hashlib.sha256()
    digest.update(Path(__file__).read_bytes())
    digest.update((Path(__file__).parent / "radar_geometry.py").read_bytes())
    digest.update(json.dumps(_spec_record(spec), sort_keys=True).encode())
    digest.update(hashlib.sha256(SOURCE_ZIP.read_bytes()).digest())
    return digest.hexdigest()[:16]


def build(spec: StackSpec = StackSpec(), root: Path | None = None) -> RealStack:
    """The stack for ``spec``: built into the cache once, then read back."""
    root = root or cache_root()
    folder = root / cache_key(spec)
    record = folder / "stack.json"
    if not record.is_file():
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        _build_into(tmp, spec)
        try:
            tmp.rename(folder)
        except OSError:  # built meanwhile by another process
            shutil.rmtree(tmp, ignore_errors=True)
    return load(folder)


def load(folder: Path) -> RealStack:
    data = json.loads((folder / "stack.json").read_text())
    spec = StackSpec(**{k: _tuples(v) for k, v in data["spec"].items()})
    scenes = [
        Scene(
            date=s["date"], granule=s["granule"], zip_path=folder / s["zip"], md5=s["md5"],
            bytes=s["bytes"], start=dt.datetime.fromisoformat(s["start"]),
            stop=dt.datetime.fromisoformat(s["stop"]), orbit=s["orbit"],
            footprint=s["footprint"], eof_name=s["eof"], eof_path=folder / "orbits" / s["eof"],
            days=s["days"],
        )  # fmt: skip
        for s in data["scenes"]
    ]
    return RealStack(folder, spec, scenes, folder / data["dem"], data["wavelength"], data)


def _tuples(value: object) -> object:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _source_members() -> dict[str, bytes]:
    out = {}
    with zipfile.ZipFile(SOURCE_ZIP) as zf:
        for name in zf.namelist():
            rel = name.split(".SAFE/", 1)[1] if ".SAFE/" in name else ""
            if rel == "manifest.safe" or re.fullmatch(r"annotation/s1b-iw1-slc-vv-.*\.xml", rel):
                out[rel] = zf.read(name)
    return out


def _build_into(folder: Path, spec: StackSpec) -> None:
    members = _source_members()
    annotation_name = next(k for k in members if k.startswith("annotation/"))
    source = ET.fromstring(members[annotation_name])
    lines_per_burst = int(source.findtext("swathTiming/linesPerBurst"))
    fs = float(source.findtext("generalAnnotation/productInformation/rangeSamplingRate"))
    frequency = float(source.findtext("generalAnnotation/productInformation/radarFrequency"))
    wavelength = SPEED_OF_LIGHT / frequency
    tau0 = float(source.findtext("imageAnnotation/imageInformation/slantRangeTime"))
    ati = float(source.findtext("imageAnnotation/imageInformation/azimuthTimeInterval"))
    burst_times = [
        dt.datetime.fromisoformat(b.findtext("azimuthTime"))
        for b in source.findall("swathTiming/burstList/burst")
    ]
    orbit = _annotation_orbit(source)
    # the pixels and their ground positions over the union of the dates' windows; each date
    # takes its own window's lines (the default: one window, the whole of it)
    b0, b1 = spec.union()
    s0, s1 = spec.samples
    width, length = s1 - s0, (b1 - b0) * lines_per_burst

    # ground position of every pixel (on a coarse grid, interpolated): rows = lines of the cut
    step = 16
    rows = np.arange(0, length + step, step).clip(max=length - 1)
    cols = np.arange(0, width + step, step).clip(max=width - 1)
    t_rows = np.array(
        [orbit.seconds(burst_times[b0 + r // lines_per_burst]) + (r % lines_per_burst) * ati
         for r in rows]
    )  # fmt: skip
    ranges = (tau0 + (s0 + cols) / fs) * SPEED_OF_LIGHT / 2
    tt, rr = np.meshgrid(t_rows, ranges, indexing="ij")
    height = np.full(tt.shape, 1000.0)
    for _ in range(5):
        lat, lon = rdr2geo(orbit, tt, rr, height)
        height = dem_height(lat, lon)
    lat_full = _bilinear(lat, rows, cols, length, width)
    lon_full = _bilinear(lon, rows, cols, length, width)

    rng = np.random.default_rng(spec.seed)
    sigma = spec.amplitude_sigma
    speckle = (rng.normal(0, sigma, (length, width)) + 1j * rng.normal(0, sigma, (length, width)))
    speckle = speckle.astype(np.complex64)
    patch_mask = (
        (lat_full >= spec.patch[0]) & (lat_full <= spec.patch[1])
        & (lon_full >= spec.patch[2]) & (lon_full <= spec.patch[3])
    )  # fmt: skip
    bump = truth_displacement(spec, lat_full, lon_full, DAYS_PER_YEAR).astype(np.float64)
    k_phase = 4 * math.pi / wavelength

    (folder / "orbits").mkdir()
    scenes = []
    first_day = None
    for k in range(spec.dates):
        delta = dt.timedelta(days=CYCLE_DAYS * k)
        days = CYCLE_DAYS * k
        first_day = first_day or burst_times[0] + delta
        pixels = speckle
        if spec.decorrelated_date == k:
            other = np.random.default_rng([spec.seed, k])
            pixels = speckle.copy()
            n = int(patch_mask.sum())
            pixels[patch_mask] = (other.normal(0, sigma, n) + 1j * other.normal(0, sigma, n))
        phase = k_phase * bump * days / DAYS_PER_YEAR  # D > 0 (towards) shortens the range
        data = pixels * np.exp(1j * phase).astype(np.complex64)
        w0, w1 = spec.window(k)
        lines = slice((w0 - b0) * lines_per_burst, (w1 - b0) * lines_per_burst)
        start = burst_times[w0] + delta
        stop = burst_times[w1 - 1] + delta + dt.timedelta(seconds=(lines_per_burst - 1) * ati)
        abs_orbit = int(source.findtext("adsHeader/absoluteOrbitNumber")) + CYCLE_ORBITS * k
        datatake = int(source.findtext("adsHeader/missionDataTakeId")) + 1117 * k
        crc = hashlib.sha256(f"{spec.seed}-{k}".encode()).hexdigest()[:4].upper()
        granule = (
            f"S1B_IW_SLC__1SSV_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_{abs_orbit:06d}_"
            f"{datatake:06X}_{crc}"
        )
        stem = (
            f"s1b-iw1-slc-vv-{start:%Y%m%dt%H%M%S}-{stop:%Y%m%dt%H%M%S}-{abs_orbit:06d}-"
            f"{datatake:06x}-004"
        )
        annotation = _cut_annotation(members[annotation_name], spec, (w0, w1), lines_per_burst,
                                     fs, delta, abs_orbit, datatake, start, stop)  # fmt: skip
        manifest = _manifest(members["manifest.safe"], delta, abs_orbit, datatake, stem)
        tiff = _cint16_tiff(data[lines])
        zip_path = folder / f"{granule}.zip"
        _write_zip(zip_path, granule, {
            "manifest.safe": manifest,
            f"annotation/{stem}.xml": annotation,
            f"measurement/{stem}.tiff": tiff,
        })  # fmt: skip
        eof_orbit = dataclasses.replace(orbit, epoch=orbit.epoch + delta)
        eof_name = _eof_name(eof_orbit)
        (folder / "orbits" / eof_name).write_text(_eof_text(eof_name, eof_orbit, abs_orbit, "S1B"))
        ring = _footprint(lat_full[lines], lon_full[lines])
        blob = zip_path.read_bytes()
        scenes.append({
            "date": f"{start:%Y%m%d}", "granule": granule, "zip": zip_path.name,
            "md5": hashlib.md5(blob).hexdigest(), "bytes": len(blob),  # noqa: S324
            "start": start.isoformat(), "stop": stop.isoformat(), "orbit": abs_orbit,
            "footprint": ring, "eof": eof_name, "days": days,
        })  # fmt: skip
    dem_path = folder / "dem.tif"
    _write_dem(dem_path, lat_full, lon_full)
    record = {
        "spec": _spec_record(spec),
        "scenes": scenes,
        "dem": dem_path.name,
        "wavelength": wavelength,
        "track": "168_DESC",
        "patch_pixels": int(patch_mask.sum()),
    }
    (folder / "stack.json").write_text(json.dumps(record, indent=1))


def _bilinear(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, length: int, width: int
              ) -> np.ndarray:  # fmt: skip
    """Values given at (rows x cols) interpolated to every pixel of a length x width image."""
    r = np.arange(length)
    c = np.arange(width)
    across = np.array([np.interp(c, cols, row) for row in values])  # (len(rows), width)
    out = np.empty((length, width))
    for j in range(width):
        out[:, j] = np.interp(r, rows, across[:, j])
    return out


def _annotation_orbit(root: ET.Element) -> Orbit:
    vectors = []
    for node in root.findall("generalAnnotation/orbitList/orbit"):
        vectors.append((
            dt.datetime.fromisoformat(node.findtext("time")),
            [float(node.findtext(f"position/{a}")) for a in "xyz"],
            [float(node.findtext(f"velocity/{a}")) for a in "xyz"],
        ))  # fmt: skip
    return Orbit.from_vectors(vectors)


def _shift_times(text: str, delta: dt.timedelta) -> str:
    def repl(match: re.Match[str]) -> str:
        value = dt.datetime.fromisoformat(match[2]) + delta
        return match[1] + value.strftime("%Y-%m-%dT%H:%M:%S") + (match[3] or "")

    return _TIME_RE.sub(repl, text)


def _set(root: ET.Element, path: str, value: object) -> None:
    node = root.find(path)
    assert node is not None, path
    node.text = str(value)


def _cut_annotation(data: bytes, spec: StackSpec, window: tuple[int, int],
                    lines_per_burst: int, fs: float, delta: dt.timedelta, abs_orbit: int,
                    datatake: int, start: dt.datetime, stop: dt.datetime) -> bytes:  # fmt: skip
    root = ET.fromstring(data)
    b0, b1 = window
    s0, s1 = spec.samples
    width = s1 - s0
    tau0 = float(root.findtext("imageAnnotation/imageInformation/slantRangeTime"))
    _set(root, "imageAnnotation/imageInformation/slantRangeTime", repr(tau0 + s0 / fs))
    _set(root, "imageAnnotation/imageInformation/numberOfSamples", width)
    _set(root, "imageAnnotation/imageInformation/numberOfLines", (b1 - b0) * lines_per_burst)
    _set(root, "swathTiming/samplesPerBurst", width)
    _set(root, "adsHeader/absoluteOrbitNumber", abs_orbit)
    _set(root, "adsHeader/missionDataTakeId", datatake)
    first = (start - delta).isoformat(timespec="microseconds")
    last = (stop - delta).isoformat(timespec="microseconds")
    for path in ("adsHeader/startTime", "imageAnnotation/imageInformation/productFirstLineUtcTime"):
        _set(root, path, first)
    for path in ("adsHeader/stopTime", "imageAnnotation/imageInformation/productLastLineUtcTime"):
        _set(root, path, last)
    burst_list = root.find("swathTiming/burstList")
    bursts = burst_list.findall("burst")
    for index, burst in enumerate(bursts):
        if not b0 <= index < b1:
            burst_list.remove(burst)
            continue
        burst.find("byteOffset").text = str(TIFF_HEADER + (index - b0) * lines_per_burst * width * 4)
        for tag in ("firstValidSample", "lastValidSample"):
            node = burst.find(tag)
            values = [int(v) for v in node.text.split()]
            node.text = " ".join(
                str(v) if v < 0 else str(min(max(v - s0, 0), width - 1)) for v in values
            )
    burst_list.set("count", str(b1 - b0))
    grid = root.find("geolocationGrid/geolocationGridPointList")
    kept = 0
    for point in grid.findall("geolocationGridPoint"):
        line, pixel = int(point.findtext("line")), int(point.findtext("pixel"))
        if b0 * lines_per_burst <= line <= b1 * lines_per_burst and s0 <= pixel <= s1 - 1:
            point.find("line").text = str(line - b0 * lines_per_burst)
            point.find("pixel").text = str(pixel - s0)
            kept += 1
        else:
            grid.remove(point)
    grid.set("count", str(kept))
    text = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + _shift_times(text, delta)).encode()


def _manifest(data: bytes, delta: dt.timedelta, abs_orbit: int, datatake: int, stem: str) -> bytes:
    text = data.decode()
    # only IW1 VV is in the zip: drop the objects that describe other files
    text = re.sub(
        r'\s*<(metadataObject|dataObject) ID="[^"]*(vh|iw2|iw3|noise|calibration)[^"]*".*?</\1>',
        "", text, flags=re.S,
    )  # fmt: skip
    text = re.sub(r'\s*<xfdu:contentUnit [^>]*(vh|iw2|iw3|noise|calibration)[^>]*>.*?</xfdu:contentUnit>',
                  "", text, flags=re.S)  # fmt: skip
    text = re.sub(r"s1b-iw1-slc-vv-[0-9t-]+-004", stem, text)
    text = re.sub(r"s1biw1slcvv\d+t\d+\d+t\d+\d+004", stem.replace("-", ""), text)
    text = re.sub(r'(<safe:orbitNumber type="(?:start|stop)">)\d+', rf"\g<1>{abs_orbit}", text)
    text = re.sub(r"(<s1sarl1:missionDataTakeID>)\d+", rf"\g<1>{datatake}", text)
    text = text.replace(">DV<", ">SV<").replace("<s1sarl1:transmitterReceiverPolarisation>VH</s1sarl1:transmitterReceiverPolarisation>", "")
    return _shift_times(text, delta).encode()


def _cint16_tiff(data: np.ndarray) -> bytes:
    """A little-endian, uncompressed, single-strip CInt16 TIFF of ``data`` (complex)."""
    length, width = data.shape
    pixels = np.empty((length, width, 2), dtype="<i2")
    pixels[..., 0] = np.clip(np.round(data.real), -32768, 32767)
    pixels[..., 1] = np.clip(np.round(data.imag), -32768, 32767)
    body = pixels.tobytes()
    entries = [
        (256, 4, width), (257, 4, length), (258, 3, 32), (259, 3, 1), (262, 3, 1),
        (273, 4, TIFF_HEADER), (277, 3, 1), (278, 4, length), (279, 4, len(body)),
        (284, 3, 1), (339, 3, 5),
    ]  # fmt: skip
    head = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)))
    for tag, kind, value in entries:
        fmt = "<HHIHH" if kind == 3 else "<HHII"
        head += struct.pack(fmt, tag, kind, 1, value, 0) if kind == 3 else struct.pack(fmt, tag, kind, 1, value)
    head += struct.pack("<I", 0)
    return bytes(head) + body


def _write_zip(path: Path, granule: str, members: dict[str, bytes]) -> None:
    top = f"{granule}.SAFE/"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        dirs = sorted({top + rel.rsplit("/", 1)[0] + "/" for rel in members if "/" in rel})
        for name in [top, *dirs]:
            zf.writestr(zipfile.ZipInfo(name, _STAMP), b"")
        for rel in sorted(members):
            info = zipfile.ZipInfo(top + rel, _STAMP)
            info.external_attr = 0o644 << 16
            zf.writestr(info, members[rel])


def _footprint(lat: np.ndarray, lon: np.ndarray) -> list[list[float]]:
    corners = [(0, 0), (0, -1), (-1, -1), (-1, 0), (0, 0)]
    return [[round(float(lon[r, c]), 6), round(float(lat[r, c]), 6)] for r, c in corners]


def _eof_name(orbit: Orbit) -> str:
    first = orbit.epoch
    last = orbit.epoch + dt.timedelta(seconds=float(orbit.times[-1]))
    created = first + dt.timedelta(days=20)
    return f"S1B_OPER_AUX_POEORB_OPOD_{created:%Y%m%dT%H%M%S}_V{first:%Y%m%dT%H%M%S}_{last:%Y%m%dT%H%M%S}.EOF"


def _eof_text(name: str, orbit: Orbit, abs_orbit: int, mission: str) -> str:
    """A POEORB file (the real template's header) holding ``orbit``'s state vectors."""
    template = POEORB_TEMPLATE.read_text()
    head = template.split("<List_of_OSVs", 1)[0]
    first = orbit.epoch
    last = orbit.epoch + dt.timedelta(seconds=float(orbit.times[-1]))
    head = re.sub(r"<File_Name>[^<]*<", f"<File_Name>{name.removesuffix('.EOF')}<", head)
    head = re.sub(r"<Validity_Start>UTC=[^<]+<", f"<Validity_Start>UTC={first:%Y-%m-%dT%H:%M:%S}<", head)
    head = re.sub(r"<Validity_Stop>UTC=[^<]+<", f"<Validity_Stop>UTC={last:%Y-%m-%dT%H:%M:%S}<", head)
    head = re.sub(r"<Mission>[^<]*<", f"<Mission>Sentinel-{mission[-2:]}<", head)
    osvs = []
    for t, p, v in zip(orbit.times, orbit.positions, orbit.velocities, strict=True):
        utc = first + dt.timedelta(seconds=float(t))
        tai = utc + dt.timedelta(seconds=37)
        osvs.append(
            "    <OSV>\n"
            f"      <TAI>TAI={tai:%Y-%m-%dT%H:%M:%S.%f}</TAI>\n"
            f"      <UTC>UTC={utc:%Y-%m-%dT%H:%M:%S.%f}</UTC>\n"
            f"      <UT1>UT1={utc:%Y-%m-%dT%H:%M:%S.%f}</UT1>\n"
            f"      <Absolute_Orbit>+{abs_orbit}</Absolute_Orbit>\n"
            f'      <X unit="m">{p[0]:.6f}</X>\n      <Y unit="m">{p[1]:.6f}</Y>\n'
            f'      <Z unit="m">{p[2]:.6f}</Z>\n'
            f'      <VX unit="m/s">{v[0]:.6f}</VX>\n      <VY unit="m/s">{v[1]:.6f}</VY>\n'
            f'      <VZ unit="m/s">{v[2]:.6f}</VZ>\n'
            "      <Quality>NOMINAL</Quality>\n    </OSV>\n"
        )
    return (
        f'{head}<List_of_OSVs count="{len(osvs)}">\n{"".join(osvs)}  </List_of_OSVs>\n'
        "</Data_Block>\n</Earth_Explorer_File>\n"
    )


def _read_eof_orbit(text: str) -> Orbit:
    vectors = []
    for block in re.findall(r"<OSV>.*?</OSV>", text, flags=re.S):
        utc = dt.datetime.fromisoformat(re.search(r"<UTC>UTC=([^<]+)<", block)[1])
        values = {k: float(re.search(rf"<{k} unit=[^>]*>([^<]+)<", block)[1])
                  for k in ("X", "Y", "Z", "VX", "VY", "VZ")}  # fmt: skip
        vectors.append((utc, [values["X"], values["Y"], values["Z"]],
                        [values["VX"], values["VY"], values["VZ"]]))  # fmt: skip
    return Orbit.from_vectors(vectors)


def _perpendicular_unit(orbit: Orbit, scene: Scene, spec: StackSpec) -> np.ndarray:
    """Unit vector perpendicular to the velocity and to the line of sight at the bump."""
    from harness.radar_geometry import llh_to_ecef

    middle = scene.start + (scene.stop - scene.start) / 2
    position, velocity = orbit.state(orbit.seconds(middle))
    target = llh_to_ecef(np.array(spec.centre[0]), np.array(spec.centre[1]),
                         np.array(dem_height(*spec.centre)))  # fmt: skip
    look = target - position
    normal = np.cross(velocity, look)
    return normal / np.linalg.norm(normal)


def _write_dem(path: Path, lat: np.ndarray, lon: np.ndarray) -> None:
    """The synthetic terrain as a GeoTIFF (EPSG:4326, 3 arc-seconds) around the bursts + 0.4 deg."""
    import rasterio
    from rasterio.transform import from_origin

    posting = 3 / 3600
    west = math.floor((lon.min() - 0.4) / posting) * posting
    north = math.ceil((lat.max() + 0.4) / posting) * posting
    width = int(math.ceil((lon.max() + 0.4 - west) / posting))
    length = int(math.ceil((north - (lat.min() - 0.4)) / posting))
    lons = west + (np.arange(width) + 0.5) * posting
    lats = north - (np.arange(length) + 0.5) * posting
    heights = dem_height(lats[:, None], lons[None, :]).astype(np.float32)
    profile = {
        "driver": "GTiff", "width": width, "length": length, "height": length, "count": 1,
        "dtype": "float32", "crs": "EPSG:4326", "transform": from_origin(west, north, posting, posting),
        "tiled": True, "compress": "deflate",
    }  # fmt: skip
    profile.pop("length")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(heights, 1)


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    stack = build(root=out)
    print(stack.folder)

