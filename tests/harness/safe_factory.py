"""Staged inputs for ISCE tests, built from real files: SAFE zips, orbit files and ISCE DEMs.

* :func:`safe_zip_bytes` re-lays out the real s1-reader SAFE (all six annotations, whose own zip
  has the bad ``safe/`` top folder) as ``<granule>.SAFE/``, with file names, times, orbit and
  datatake of the given granule and the geolocation grid mapped into the given footprint. The
  measurement TIFFs are small sparse TIFFs with the real dimensions (GDAL reads them as zeros);
  ``empty_tiffs`` makes some 0-byte, as in the source repository, which ISCE cannot open.
  Pure and deterministic: the same arguments give the same bytes (stable md5 for staging tests).
* :func:`eof_text` re-times a real POEORB so that it covers a given acquisition.
* :func:`write_dem` writes an ISCE DEM (raster + .xml + .vrt) with our isce_image writer.
* :func:`stage_inputs` lays out, for a searched workspace, everything the ISCE rules read:
  zips in the SLC cache, orbit and DEM manifests, exactly at the staging stage's paths.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import json
import os
import re
import struct
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from dinsar.records import DemManifest, OrbitEntry, OrbitManifest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("DINSAR_SHARED", REPO_ROOT.parent / "shared"))
SOURCE_ZIP = (
    SHARED / "fixtures" / "s1-reader"
    / "S1A_IW_SLC__1SDV_20200511T135117_20200511T135144_032518_03C421_7768.zip"
)  # fmt: skip
SOURCE_GRANULE = "S1A_IW_SLC__1SDV_20200511T135117_20200511T135144_032518_03C421_7768"
SOURCE_START = dt.datetime(2020, 5, 11, 13, 51, 17)
EOF_SOURCES = {
    "S1A": SHARED / "fixtures" / "sentineleof"
    / "S1A_OPER_AUX_POEORB_OPOD_20210307T053325_V20180419T225942_20180421T005942.EOF",
    "S1B": SHARED / "fixtures" / "sentineleof"
    / "S1B_OPER_AUX_POEORB_OPOD_20210313T012515_V20180501T225942_20180503T005942.EOF",
}  # fmt: skip

GRANULE_RE = re.compile(
    r"^(?P<mission>S1[A-D])_IW_SLC__1S(?P<pols>[SD][HV])_(?P<start>\d{8}T\d{6})_"
    r"(?P<stop>\d{8}T\d{6})_(?P<orbit>\d{6})_(?P<datatake>[0-9A-F]{6})_(?P<crc>[0-9A-F]{4})$"
)
# element text or attribute values that are timestamps (the leading > or = keeps the scan fast)
_TIME_RE = re.compile(r"([>=])(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?")
_STAMP = (2020, 1, 1, 0, 0, 0)  # zip member times: fixed, so the bytes do not depend on today
_INSET = 0.03  # bursts are mapped this fraction inside the footprint's edges
ALONG_TRACK_DEG_PER_S = 0.063  # latitude swept per second of a near-polar pass (~7 km/s)


# --- granule names ------------------------------------------------------------------------------


def granule_parts(granule: str) -> dict[str, str]:
    match = GRANULE_RE.match(granule)
    if not match:
        raise ValueError(f"{granule!r} is not an IW SLC granule name")
    return match.groupdict()


def granule_times(granule: str) -> tuple[dt.datetime, dt.datetime]:
    parts = granule_parts(granule)
    fmt = "%Y%m%dT%H%M%S"
    return dt.datetime.strptime(parts["start"], fmt), dt.datetime.strptime(parts["stop"], fmt)


def polarizations(granule: str) -> list[str]:
    """Polarizations of a product: 1SDV -> vv, vh; 1SSH -> hh."""
    code = granule_parts(granule)["pols"]
    co = "vv" if code[1] == "V" else "hh"
    cross = "vh" if code[1] == "V" else "hv"
    return [co, cross] if code[0] == "D" else [co]


# --- the source SAFE ----------------------------------------------------------------------------


@functools.cache
def _source() -> dict[str, bytes]:
    """Source members keyed by their path below the .SAFE folder (calibration/noise dropped)."""
    out = {}
    with zipfile.ZipFile(SOURCE_ZIP) as zf:
        for name in zf.namelist():
            rel = name.split(".SAFE/", 1)[1] if ".SAFE/" in name else ""
            if rel == "manifest.safe" or re.fullmatch(r"annotation/s1a-iw[1-3]-slc-v[vh]-.*\.xml", rel):
                out[rel] = zf.read(name)
    return out


@functools.cache
def _source_extent() -> tuple[float, float, float, float]:
    """(t0, t1, tau0, tau1): azimuth time (s after SOURCE_START) and slant-range time spans."""
    times, taus = [], []
    for rel, data in _source().items():
        if rel.startswith("annotation/") and "-vv-" in rel:
            root = ET.fromstring(data)
            for point in root.iter("geolocationGridPoint"):
                times.append(_seconds(point.findtext("azimuthTime")))
                taus.append(float(point.findtext("slantRangeTime")))
    return min(times), max(times), min(taus), max(taus)


def _seconds(text: str | None) -> float:
    value = dt.datetime.fromisoformat((text or "").strip())
    return (value - SOURCE_START).total_seconds()


# --- geometry -----------------------------------------------------------------------------------


def _corners(footprint: Sequence[Sequence[float]] | object, descending: bool) -> np.ndarray:
    """Footprint corners as [early-near, early-far, late-near, late-far] (lon, lat).

    Sentinel-1 looks right: descending passes fly south with near range to the east, ascending
    passes fly north with near range to the west.
    """
    if hasattr(footprint, "exterior"):
        ring = list(footprint.exterior.coords)  # shapely polygon
    elif isinstance(footprint, Sequence) and len(footprint) == 4 and not isinstance(
        footprint[0], Sequence
    ):
        w, s, e, n = (float(v) for v in footprint)  # a [W, S, E, N] box
        ring = [(w, s), (e, s), (e, n), (w, n)]
    else:
        ring = [tuple(p) for p in footprint]  # type: ignore[union-attr]
    unique = []
    for point in ring:
        if tuple(point) not in unique:
            unique.append(tuple(point))
    if len(unique) != 4:
        raise ValueError(f"footprint needs 4 corners, got {len(unique)}")
    by_lat = sorted(unique, key=lambda p: p[1])
    south = sorted(by_lat[:2], key=lambda p: p[0])  # west, east
    north = sorted(by_lat[2:], key=lambda p: p[0])
    if descending:
        return np.array([north[1], north[0], south[1], south[0]], dtype=float)
    return np.array([south[0], south[1], north[0], north[1]], dtype=float)


def _map_point(u: float, v: float, corners: np.ndarray) -> tuple[float, float]:
    """Bilinear map of along-track u and across-track v (0..1) onto the footprint corners."""
    u = _INSET + (1 - 2 * _INSET) * u
    v = _INSET + (1 - 2 * _INSET) * v
    p00, p01, p10, p11 = corners
    point = (1 - u) * (1 - v) * p00 + (1 - u) * v * p01 + u * (1 - v) * p10 + u * v * p11
    return float(point[0]), float(point[1])


# --- zips ---------------------------------------------------------------------------------------


def sparse_tiff(width: int, length: int) -> bytes:
    """A CInt16 TIFF header of the real size with one sparse strip: tiny, and GDAL reads zeros."""
    entries = [
        (256, 4, width), (257, 4, length), (258, 3, 32), (259, 3, 1), (262, 3, 1),
        (273, 4, 0), (277, 3, 1), (278, 4, length), (279, 4, 0), (284, 3, 1), (339, 3, 5),
    ]  # fmt: skip
    out = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)))
    for tag, kind, value in entries:
        if kind == 3:
            out += struct.pack("<HHIHH", tag, kind, 1, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, 1, value)
    out += struct.pack("<I", 0)
    return bytes(out)


def _shift_times(text: str, delta: dt.timedelta) -> str:
    def repl(match: re.Match[str]) -> str:
        value = dt.datetime.fromisoformat(match[2]) + delta
        return match[1] + value.strftime("%Y-%m-%dT%H:%M:%S") + (match[3] or "")

    return _TIME_RE.sub(repl, text)


def _stem_parts(stem: str) -> list[str]:
    # s1a-iw1-slc-vv-20200511t135119-20200511t135144-032518-03c421-004
    return stem.split("-")


def _new_stem(old: str, mission: str, pol: str, delta: dt.timedelta, orbit: str, datatake: str
              ) -> str:  # fmt: skip
    parts = _stem_parts(old)
    fmt = "%Y%m%dt%H%M%S"
    start = dt.datetime.strptime(parts[4], fmt) + delta
    stop = dt.datetime.strptime(parts[5], fmt) + delta
    return "-".join(
        [mission.lower(), parts[1], "slc", pol, start.strftime(fmt), stop.strftime(fmt),
         orbit, datatake.lower(), parts[8]]
    )  # fmt: skip


def _set_tag(text: str, tag: str, value: str) -> str:
    return re.sub(rf"<{tag}>[^<]*</{tag}>", f"<{tag}>{value}</{tag}>", text, count=1)


def _annotation(data: bytes, *, mission: str, pol: str, delta: dt.timedelta, orbit: str,
                datatake: str, corners: np.ndarray, descending: bool) -> bytes:  # fmt: skip
    # Text edits rather than an ElementTree round trip: the annotations are ~1 MB each.
    t0, t1, tau0, tau1 = _source_extent()
    text = data.decode()
    text = _set_tag(text, "missionId", mission)
    text = _set_tag(text, "polarisation", pol.upper())
    text = _set_tag(text, "absoluteOrbitNumber", str(int(orbit)))
    text = _set_tag(text, "missionDataTakeId", str(int(datatake, 16)))
    text = _set_tag(text, "pass", "Descending" if descending else "Ascending")

    def point(match: re.Match[str]) -> str:
        block = match[0]
        u = (_seconds(re.search(r"<azimuthTime>([^<]+)<", block)[1]) - t0) / (t1 - t0)
        v = (float(re.search(r"<slantRangeTime>([^<]+)<", block)[1]) - tau0) / (tau1 - tau0)
        lon, lat = _map_point(u, v, corners)
        block = _set_tag(block, "latitude", repr(lat))
        return _set_tag(block, "longitude", repr(lon))

    text = re.sub(r"<geolocationGridPoint>.*?</geolocationGridPoint>", point, text, flags=re.S)

    def anx(match: re.Match[str]) -> str:
        # time since the ascending node follows the ground position, the same on every date
        # (real repeat passes agree to milliseconds), so bursts over the same ground match
        block = match[0]
        u = (_seconds(re.search(r"<azimuthTime>([^<]+)<", block)[1]) - t0) / (t1 - t0)
        _lon, lat = _map_point(u, 0.5, corners)
        seconds = 1000.0 + (-lat if descending else lat) / ALONG_TRACK_DEG_PER_S
        return re.sub(r"<azimuthAnxTime>[^<]*<", f"<azimuthAnxTime>{seconds:.6f}<", block)

    text = re.sub(r"<burst>.*?</burst>", anx, text, flags=re.S)
    return _shift_times(text, delta).encode()


def safe_zip_bytes(
    granule: str,
    footprint: Sequence[Sequence[float]] | Sequence[float] | object,
    *,
    flight_direction: str = "DESCENDING",
    ipf: str = "003.20",
    layout: str = "safe",
    empty_tiffs: Iterable[int] = (),
    swaths: Iterable[int] = (1, 2, 3),
) -> bytes:
    """A SAFE zip for ``granule`` whose bursts lie inside ``footprint``.

    footprint: the scene's polygon (shapely, or its 4-5 lon/lat corners) or a [W, S, E, N] box.
    layout: "safe" = ``<granule>.SAFE/`` at the top (what ISCE needs); "nested" = the source's
    ``safe/<granule>.SAFE/`` (which ISCE cannot open).
    empty_tiffs: swaths whose measurement TIFFs are 0 bytes.
    """
    parts = granule_parts(granule)
    start, _ = granule_times(granule)
    delta = start - SOURCE_START
    descending = flight_direction.upper().startswith("D")
    corners = _corners(footprint, descending)
    mission = parts["mission"]
    top = f"{granule}.SAFE/" if layout == "safe" else f"safe/{granule}.SAFE/"
    empty = set(empty_tiffs)
    members: dict[str, bytes] = {}
    renames: dict[str, str] = {}
    source = _source()
    for index, pol in enumerate(polarizations(granule)):
        source_pol = "vv" if index == 0 else "vh"
        for rel, data in sorted(source.items()):
            match = re.fullmatch(r"annotation/(s1a-iw([1-3])-slc-" + source_pol + r"-.*)\.xml", rel)
            if not match or int(match[2]) not in set(swaths):
                continue
            old = match[1]
            new = _new_stem(old, mission, pol, delta, parts["orbit"], parts["datatake"])
            renames[old] = new
            renames[old.replace("-", "")] = new.replace("-", "")
            annotation = _annotation(
                data, mission=mission, pol=pol, delta=delta, orbit=parts["orbit"],
                datatake=parts["datatake"], corners=corners, descending=descending,
            )  # fmt: skip
            head = annotation.decode()
            width = int(re.search(r"<samplesPerBurst>(\d+)<", head)[1])
            bursts = int(re.search(r'<burstList count="(\d+)"', head)[1])
            length = int(re.search(r"<linesPerBurst>(\d+)<", head)[1]) * bursts
            members[f"annotation/{new}.xml"] = annotation
            tiff = b"" if int(match[2]) in empty else sparse_tiff(width, length)
            members[f"measurement/{new}.tiff"] = tiff
    manifest = source["manifest.safe"].decode()
    for old, new in renames.items():
        manifest = manifest.replace(old, new)
    manifest = manifest.replace(SOURCE_GRANULE, granule)
    manifest = re.sub(
        r'(<safe:software name="Sentinel-1 IPF" version=")[^"]*(")', rf"\g<1>{ipf}\g<2>", manifest
    )
    manifest = manifest.replace("<safe:number>A</safe:number>", f"<safe:number>{mission[-1]}</safe:number>")
    members["manifest.safe"] = _shift_times(manifest, delta).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        dirs = sorted({top + rel.rsplit("/", 1)[0] + "/" for rel in members if "/" in rel})
        for name in [top, *dirs]:
            zf.writestr(zipfile.ZipInfo(name, _STAMP), b"")
        for rel in sorted(members):
            info = zipfile.ZipInfo(top + rel, _STAMP)
            info.external_attr = 0o644 << 16
            zf.writestr(info, members[rel], compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
    return buffer.getvalue()


@functools.lru_cache(maxsize=64)
def _cached_zip(granule: str, footprint: tuple, flight_direction: str, ipf: str, layout: str,
                empty: tuple, swaths: tuple) -> bytes:  # fmt: skip
    return safe_zip_bytes(granule, [list(p) for p in footprint], flight_direction=flight_direction,
                          ipf=ipf, layout=layout, empty_tiffs=empty, swaths=swaths)  # fmt: skip


def write_safe_zip(path: str | Path, granule: str, footprint: object, **kwargs: object) -> Path:
    """Write :func:`safe_zip_bytes` to ``path`` (atomically); returns the path."""
    if hasattr(footprint, "exterior"):
        ring = tuple(tuple(p) for p in footprint.exterior.coords)  # type: ignore[attr-defined]
    elif isinstance(footprint[0], Sequence):  # type: ignore[index]
        ring = tuple(tuple(p) for p in footprint)  # type: ignore[union-attr]
    else:
        w, s, e, n = footprint  # type: ignore[misc]
        ring = ((w, s), (e, s), (e, n), (w, n))
    data = _cached_zip(
        granule, ring, str(kwargs.get("flight_direction", "DESCENDING")),
        str(kwargs.get("ipf", "003.20")), str(kwargs.get("layout", "safe")),
        tuple(kwargs.get("empty_tiffs", ())), tuple(kwargs.get("swaths", (1, 2, 3))),  # type: ignore[arg-type]
    )  # fmt: skip
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


# --- orbits -------------------------------------------------------------------------------------


@functools.cache
def _eof_source(platform: str) -> str:
    return EOF_SOURCES.get(platform, EOF_SOURCES["S1A"]).read_text()


def eof_text(platform: str, start: dt.datetime, stop: dt.datetime, *, hours: float = 1.0
             ) -> tuple[str, str, tuple[dt.datetime, dt.datetime]]:  # fmt: skip
    """A real POEORB of ``platform`` re-timed to cover [start, stop] (+- ``hours``).

    Returns (file name, text, validity). Only the state vectors inside the validity are kept,
    so the file is small. The state vectors are real, only their times are moved.
    """
    source = _eof_source(platform)
    v0 = dt.datetime.fromisoformat(re.search(r"<Validity_Start>UTC=([^<]+)<", source)[1])
    centre = start + (stop - start) / 2
    # keep whole seconds so the state-vector times stay on their 10 s grid
    delta = dt.timedelta(seconds=round((centre - (v0 + dt.timedelta(hours=13))).total_seconds()))
    lo = centre - dt.timedelta(hours=hours)
    hi = centre + dt.timedelta(hours=hours)
    head, rest = source.split("<List_of_OSVs", 1)
    _, tail = rest.split("</List_of_OSVs>", 1)
    osvs = re.findall(r"<OSV>.*?</OSV>", rest, flags=re.S)
    kept = []
    for osv in osvs:
        utc = dt.datetime.fromisoformat(re.search(r"<UTC>UTC=([^<]+)<", osv)[1]) + delta
        if lo <= utc <= hi:
            kept.append(_shift_times(osv, delta))
    body = "\n      ".join(kept)
    head = re.sub(r"<File_Name>[^<]*</File_Name>", "<File_Name>@NAME@</File_Name>", head)
    head = re.sub(r"<Mission>[^<]*</Mission>", f"<Mission>Sentinel-1{platform[-1]}</Mission>", head)
    head = re.sub(r"<Validity_Start>UTC=[^<]+<", f"<Validity_Start>UTC={lo:%Y-%m-%dT%H:%M:%S}<", head)
    head = re.sub(r"<Validity_Stop>UTC=[^<]+<", f"<Validity_Stop>UTC={hi:%Y-%m-%dT%H:%M:%S}<", head)
    text = f'{head}<List_of_OSVs count="{len(kept)}">\n      {body}\n    </List_of_OSVs>{tail}'
    created = (centre + dt.timedelta(days=20)).strftime("%Y%m%dT%H%M%S")
    name = (
        f"{platform}_OPER_AUX_POEORB_OPOD_{created}_V{lo:%Y%m%dT%H%M%S}_{hi:%Y%m%dT%H%M%S}.EOF"
    )
    return name, text.replace("@NAME@", name.removesuffix(".EOF")), (lo, hi)


# --- DEM ----------------------------------------------------------------------------------------


def write_dem(path: str | Path, bounds: Sequence[float], posting: float,
              height: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> Path:  # fmt: skip
    """An int16 WGS84 ISCE DEM over [W, S, E, N] with ``posting`` degrees; returns its path."""
    from dinsar.isce_image import IsceImage, write_raster

    west, south, east, north = bounds
    width = int(round((east - west) / posting))
    length = int(round((north - south) / posting))
    lon = west + posting * np.arange(width)
    lat = north - posting * np.arange(length)
    lon2, lat2 = np.meshgrid(lon, lat)
    values = height(lon2, lat2) if height else 300 + 50 * (lat2 - south) + 20 * (lon2 - west)
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    image = IsceImage(
        file_name=str(path), width=width, length=length, data_type="SHORT",
        first_lon=west, delta_lon=posting, first_lat=north, delta_lat=-posting,
        image_type="dem", reference="WGS84",
    )  # fmt: skip
    write_raster(path, [np.round(values).astype(np.int16)], image)
    return path


# --- a staged workspace -------------------------------------------------------------------------


def stage_inputs(
    workspace: str | Path,
    slc_cache: str | Path,
    scenes_geojson: str | Path,
    dates: Iterable[str] | None = None,
    *,
    dem_bounds: Sequence[float],
    dem_posting: float = 1 / 400,
    geocode_resample: int = 2,
    orbits_dir: str | Path | None = None,
    zip_kwargs: dict | None = None,
) -> dict[str, list[Path]]:
    """Create what staging and the DEM stage will produce, at their contract paths.

    For every used scene (``dates.csv`` beside ``scenes_geojson``, our inventory) on the given
    dates (all if None): the SAFE zip in the
    SLC cache; per date an orbit manifest ``orbits/<date>.json`` pointing at a re-timed EOF; per
    track ``dem/<track>/dem.json`` with ``dem.wgs84`` and ``geocode_dem.wgs84`` (+ .xml/.vrt).
    Existing files are left alone, so calling it twice is cheap.
    """
    workspace = Path(workspace).resolve()
    slc_cache = Path(slc_cache).resolve()
    orbits_dir = Path(orbits_dir or workspace / "cache" / "orbits").resolve()
    data = json.loads(Path(scenes_geojson).read_text())
    wanted = set(dates) if dates is not None else None
    used = set()
    with open(Path(scenes_geojson).with_name("dates.csv"), newline="") as handle:
        for row in csv.DictReader(handle):
            if row["used"] == "yes":
                used.update(g for g in row["granules"].split(";") if g)
    made: dict[str, list[Path]] = {"zips": [], "orbits": [], "dem": []}
    by_date: dict[str, list[dict]] = {}
    tracks = set()
    for feature in data["features"]:
        props = feature["properties"]
        if props["granule"] not in used or (wanted is not None and props["date"] not in wanted):
            continue
        by_date.setdefault(props["date"], []).append(feature)
        tracks.add(props["track"])
    for date, features in sorted(by_date.items()):
        entries = {}
        for feature in features:
            props = feature["properties"]
            zip_path = slc_cache / f"{props['granule']}.zip"
            if not zip_path.exists():
                write_safe_zip(
                    zip_path, props["granule"], feature["geometry"]["coordinates"][0],
                    flight_direction=props["flight_direction"], ipf=props.get("ipf") or "003.20",
                    **(zip_kwargs or {}),
                )  # fmt: skip
            made["zips"].append(zip_path)
            start, stop = granule_times(props["granule"])
            entry = entries.setdefault(props["platform"], {"start": start, "stop": stop,
                                                           "granules": []})  # fmt: skip
            entry["start"] = min(entry["start"], start)
            entry["stop"] = max(entry["stop"], stop)
            entry["granules"].append(props["granule"])
        orbits = []
        for platform, entry in sorted(entries.items()):
            name, text, validity = eof_text(platform, entry["start"], entry["stop"])
            eof = orbits_dir / name
            if not eof.exists():
                eof.parent.mkdir(parents=True, exist_ok=True)
                eof.write_text(text)
            orbits.append(OrbitEntry(
                platform=platform, type="POEORB", file=str(eof),
                validity=[validity[0].isoformat(), validity[1].isoformat()],
                granules=entry["granules"],
            ))  # fmt: skip
        manifest = workspace / "orbits" / f"{date}.json"
        OrbitManifest(date=date, orbits=orbits).write(manifest)
        made["orbits"].append(manifest)
    for track in sorted(tracks):
        folder = workspace / "dem" / track
        dem = folder / "dem.wgs84"
        geo = folder / "geocode_dem.wgs84"
        if not dem.exists():
            write_dem(dem, dem_bounds, dem_posting)
            write_dem(geo, dem_bounds, dem_posting * geocode_resample)
        manifest = folder / "dem.json"
        DemManifest(track=track, dem=str(dem), geocode_dem=str(geo), source="synthetic",
                    bounds=list(dem_bounds)).write(manifest)  # fmt: skip
        made["dem"].append(manifest)
    return made


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 - a content fingerprint, not security
