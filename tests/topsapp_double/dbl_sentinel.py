"""The Sentinel-1 reader of topsApp's preprocess step (isceobj/Sensor/TOPS/Sentinel1.py).

Reproduces how ISCE finds and opens files, and where it fails:
* zips: annotation/measurement found with fnmatch ``*SAFE/annotation/s1?-iw<n>-slc-<pol>*.xml``
  over the member names, then read back as the last three path parts, so a zip with an extra top
  folder (``safe/X.SAFE/...``) is matched but cannot be read (KeyError);
* the measurement TIFF is opened (GDAL); a 0-byte file gives None -> AttributeError;
* orbits: ``orbit file`` (state vectors within first burst start - 60 s .. last burst stop + 60 s),
  else ``orbit directory`` (file-name validity must span the slice), else the annotation's;
* bursts are kept when their bounding box overlaps ``region of interest`` (rectangle test).
Errors raised here are caught by preprocess, which prints "Could not extract swath" and goes on.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import glob
import os
import struct
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

C = 299792458.0
FMT = "%Y-%m-%dT%H:%M:%S.%f"
EPOCH = dt.datetime(1970, 1, 1)


def secs(value: dt.datetime) -> float:
    """Seconds since 1970 of a naive UTC time (never the local time zone)."""
    return (value - EPOCH).total_seconds()


def t(text: str) -> dt.datetime:
    text = text.strip()
    return dt.datetime.strptime(text if "." in text else text + ".0", FMT)


@dataclass
class BurstMeta:
    number: int  # in its slice (1-based)
    sensing_start: dt.datetime
    sensing_stop: dt.datetime
    burst_start: dt.datetime
    first_valid_line: int
    num_valid_lines: int
    first_valid_sample: int
    num_valid_samples: int
    bbox: tuple[float, float, float, float]  # S, N, W, E
    tiff: str = ""
    full_width: int = 0
    full_length: int = 0


@dataclass
class SwathMeta:
    swath: int
    mission: str
    polarization: str
    orbit_number: int
    pass_direction: str
    radar_frequency: float
    range_sampling_rate: float
    azimuth_time_interval: float
    prf: float
    lines: int
    samples: int
    starting_range: float
    terrain_height: float
    steering_rate: float
    ascending_node: dt.datetime
    ipf: str = ""
    facility: str = ""
    orbit_source: str = "Annotation"
    bursts: list[BurstMeta] = field(default_factory=list)
    # geolocation grid: row times (s), column slant-range times (s), lat/lon/inc (rows x cols)
    grid: dict[str, Any] = field(default_factory=dict)
    safe_paths: list[str] = field(default_factory=list)
    processing: dict[str, Any] = field(default_factory=dict)  # window types, bandwidths
    state_vectors: list[tuple[dt.datetime, list[float], list[float]]] = field(default_factory=list)

    @property
    def wavelength(self) -> float:
        return C / self.radar_frequency

    @property
    def range_pixel_size(self) -> float:
        return C / (2.0 * self.range_sampling_rate)


def _open_member(path: str, pattern: str) -> tuple[str, bytes | None, str]:
    """(vsizip path, bytes, member) of the first member matching like ISCE; raises like ISCE."""
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        match = fnmatch.filter(names, os.path.join("*SAFE", pattern))
        if not match:
            kind = "annotation xml" if "annotation" in pattern else "tiff"
            raise Exception(f"No {kind} file found in zip file: {path}")  # noqa: TRY002
        vsi = "/vsizip/" + os.path.join(path, match[0])
        parts = vsi.split(os.path.sep)
        # ISCE reads back only the last parts of the /vsizip/ path: three for annotation and
        # measurement files, two for the manifest
        inner = os.path.join(*parts[-2:] if "manifest" in pattern else parts[-3:])
        with zipfile.ZipFile(path) as zf:
            data = zf.read(inner) if "annotation" in pattern or "manifest" in pattern else None
            if data is None:
                zf.getinfo(inner)  # KeyError for a nested layout, as GDAL would fail
        return vsi, data, inner
    match = sorted(glob.glob(os.path.join(path, pattern)))
    if not match:
        raise Exception(f"No annotation xml file found in {path}")  # noqa: TRY002
    data = Path(match[0]).read_bytes() if "annotation" in pattern else None
    return match[0], data, match[0]


def tiff_shape(path: str, member: str) -> tuple[int, int] | None:
    """What GDAL would report (width, length), or None if it cannot open the TIFF."""
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            head = zf.open(member).read(65536) if zf.getinfo(member).file_size else b""
    else:
        head = Path(member).read_bytes()[:65536]
    if len(head) < 8 or head[:2] not in (b"II", b"MM"):
        return None
    order = "<" if head[:2] == b"II" else ">"
    offset = struct.unpack(order + "I", head[4:8])[0]
    count = struct.unpack(order + "H", head[offset : offset + 2])[0]
    tags = {}
    for index in range(count):
        start = offset + 2 + 12 * index
        tag, kind = struct.unpack(order + "HH", head[start : start + 4])
        fmt = "H" if kind == 3 else "I"
        tags[tag] = struct.unpack(order + fmt, head[start + 8 : start + 8 + struct.calcsize(fmt)])[0]
    return tags.get(256), tags.get(257)


def ipf_version(path: str) -> tuple[str, str]:
    """(IPF version, processing facility) from manifest.safe, as populateIPFVersion reads them."""
    try:
        if path.endswith(".zip"):
            _, data, _ = _open_member(path, "manifest.safe")
        else:
            data = Path(path, "manifest.safe").read_bytes()
        root = ET.fromstring(data or b"")
        for element in root.iter():
            if element.tag.endswith("}facility") and element.get("site"):
                facility = f"{element.get('site')}, {element.get('country')}"
                for child in element:
                    if child.tag.endswith("}software") and child.get("name") == "Sentinel-1 IPF":
                        return child.get("version", ""), facility
    except Exception:  # noqa: BLE001 - ISCE: "Not a critical error ... continuing"
        print(f"Could not read version number successfully from manifest file: {path}")
    return "", ""


def _grid(root: ET.Element) -> dict[str, Any]:
    points = root.findall("geolocationGrid/geolocationGridPointList/geolocationGridPoint")
    lines = sorted({int(p.findtext("line")) for p in points})
    pixels = sorted({int(p.findtext("pixel")) for p in points})
    shape = (len(lines), len(pixels))
    lat = np.zeros(shape)
    lon = np.zeros(shape)
    inc = np.zeros(shape)
    hgt = np.zeros(shape)
    times = np.zeros(shape)
    taus = np.zeros(shape)
    for p in points:
        r = lines.index(int(p.findtext("line")))
        c = pixels.index(int(p.findtext("pixel")))
        lat[r, c] = float(p.findtext("latitude"))
        lon[r, c] = float(p.findtext("longitude"))
        inc[r, c] = float(p.findtext("incidenceAngle"))
        hgt[r, c] = float(p.findtext("height"))
        times[r, c] = secs(t(p.findtext("azimuthTime")))
        taus[r, c] = float(p.findtext("slantRangeTime"))
    return {"lines": lines, "pixels": pixels, "lat": lat, "lon": lon, "inc": inc, "hgt": hgt,
            "time": times.mean(axis=1), "tau": taus.mean(axis=0)}  # fmt: skip


def parse_slice(path: str, swath: int, pol: str) -> SwathMeta:
    """One SAFE (zip or directory): metadata and all bursts of one swath (no cropping)."""
    _, xml, _ = _open_member(path, os.path.join("annotation", f"s1?-iw{swath}") + f"-slc-{pol}*.xml")
    tiff_vsi, _, tiff_member = _open_member(
        path, os.path.join("measurement", f"s1?-iw{swath}") + f"-slc-{pol}*.tiff"
    )
    shape = tiff_shape(path, tiff_member)
    if shape is None:
        raise AttributeError("'NoneType' object has no attribute 'RasterXSize'")
    root = ET.fromstring(xml or b"")
    g = root.findtext
    mission = g("adsHeader/missionId")
    if mission not in ("S1A", "S1B", "S1C", "S1D"):
        raise ValueError(f"Encountered unknown mission id {mission}")
    lines = int(g("swathTiming/linesPerBurst"))
    samples = int(g("swathTiming/samplesPerBurst"))
    meta = SwathMeta(
        swath=int(g("adsHeader/swath").strip()[-1]),
        mission=mission,
        polarization=g("adsHeader/polarisation"),
        orbit_number=int(g("adsHeader/absoluteOrbitNumber")),
        pass_direction=g("generalAnnotation/productInformation/pass").upper(),
        radar_frequency=float(g("generalAnnotation/productInformation/radarFrequency")),
        range_sampling_rate=float(g("generalAnnotation/productInformation/rangeSamplingRate")),
        azimuth_time_interval=float(g("imageAnnotation/imageInformation/azimuthTimeInterval")),
        prf=float(g("generalAnnotation/downlinkInformationList/downlinkInformation/prf")),
        lines=lines,
        samples=samples,
        starting_range=float(g("imageAnnotation/imageInformation/slantRangeTime")) * C / 2.0,
        terrain_height=float(g("generalAnnotation/terrainHeightList/terrainHeight/value")),
        steering_rate=np.radians(float(g("generalAnnotation/productInformation/azimuthSteeringRate"))),
        ascending_node=t(g("imageAnnotation/imageInformation/ascendingNodeTime")),
        ipf=ipf_version(path)[0],
        facility=ipf_version(path)[1],
        grid=_grid(root),
        safe_paths=[path],
    )
    for osv in root.findall("generalAnnotation/orbitList/orbit"):
        meta.state_vectors.append((
            t(osv.findtext("time")),
            [float(osv.findtext(f"position/{k}")) for k in "xyz"],
            [float(osv.findtext(f"velocity/{k}")) for k in "xyz"],
        ))  # fmt: skip
    proc = "imageAnnotation/processingInformation/swathProcParamsList/swathProcParams/"
    for kind in ("range", "azimuth"):
        meta.processing[f"{kind}windowtype"] = g(f"{proc}{kind}Processing/windowType") or ""
        meta.processing[f"{kind}windowcoefficient"] = float(
            g(f"{proc}{kind}Processing/windowCoefficient") or 0
        )
        meta.processing[f"{kind}processingbandwidth"] = float(
            g(f"{proc}{kind}Processing/processingBandwidth") or 0
        )
    grid = meta.grid
    for index, node in enumerate(root.findall("swathTiming/burstList/burst")):
        start = t(node.findtext("azimuthTime"))
        first = [int(v) for v in node.findtext("firstValidSample").split()]
        last = [int(v) for v in node.findtext("lastValidSample").split()]
        first_line = next(i for i, v in enumerate(first) if v >= 0)
        n_lines = next((i for i in range(first_line, len(first)) if first[i] < 0), len(first)) - first_line
        last_line = first_line + n_lines - 1
        first_sample = max(first[first_line], first[last_line])
        n_samples = min(last[first_line], last[last_line]) - first_sample
        rows = [r for r, line in enumerate(grid["lines"]) if index * lines - 1 <= line <= (index + 1) * lines]
        lat = grid["lat"][rows]
        lon = grid["lon"][rows]
        meta.bursts.append(
            BurstMeta(
                number=index + 1,
                sensing_start=start,
                sensing_stop=start + dt.timedelta(seconds=(lines - 1) * meta.azimuth_time_interval),
                burst_start=t(node.findtext("sensingTime")),
                first_valid_line=first_line,
                num_valid_lines=n_lines,
                first_valid_sample=first_sample,
                num_valid_samples=n_samples,
                bbox=(float(lat.min()), float(lat.max()), float(lon.min()), float(lon.max())),
                tiff=tiff_vsi,
                full_width=shape[0],
                full_length=shape[1],
            )
        )
    return meta


def read_orbit(orbit_file: str, tstart: dt.datetime, tend: dt.datetime
               ) -> list[tuple[dt.datetime, list[float], list[float]]]:  # fmt: skip
    """State vectors of an .EOF inside the window (extractPreciseOrbit, margin 60 s)."""
    try:
        root = ET.parse(orbit_file).getroot()
    except OSError as exc:
        print(f"IOError: {exc}")
        raise TypeError("'NoneType' object is not iterable") from None
    times = []
    for osv in root.findall("Data_Block/List_of_OSVs/OSV"):
        stamp = t(osv.findtext("UTC")[4:])
        if tstart - dt.timedelta(seconds=60) <= stamp < tend + dt.timedelta(seconds=60):
            times.append((
                stamp,
                [float(osv.findtext(k)) for k in ("X", "Y", "Z")],
                [float(osv.findtext(k)) for k in ("VX", "VY", "VZ")],
            ))  # fmt: skip
    return times


def find_orbit(orbit_dir: str, tstart: dt.datetime, tstop: dt.datetime, mission: str) -> str:
    """s1_findOrbitFile: POEORB then RESORB whose file-name validity spans the slice."""
    for kind in ("POEORB", "RESORB"):
        matches = []
        for name in glob.glob(os.path.join(orbit_dir, f"{mission}_OPER_AUX_{kind}_OPOD*")):
            fields = name.split("_")
            after = dt.datetime.strptime(fields[-1][0:15], "%Y%m%dT%H%M%S")
            before = dt.datetime.strptime(fields[-2][1:16], "%Y%m%dT%H%M%S")
            if before <= tstart and after >= tstop:
                matches.append(name)
        if matches:
            return sorted(matches)[0]
    raise Exception(  # noqa: TRY002
        "No suitable orbit file found. If you want to process anyway - unset the orbitdir parameter"
    )


def isce_bboxes(meta: SwathMeta) -> list[tuple[float, float, float, float]]:
    """BurstSLC.getBbox of every burst (S, N, W, E): its four corners mapped with the orbit at
    heights -500 and 9000 m (zero Doppler), as Sentinel1.crop tests them against the ROI.

    The synthetic SAFEs of tests/harness/safe_factory keep the source product's orbit while
    their geolocation grid is moved onto another footprint; for those (the orbit puts the first
    grid node more than 2 km from where the grid says) the grid's own box stands in.
    """
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from harness.radar_geometry import Orbit, crop_box, rdr2geo

    orbit = Orbit.from_vectors(meta.state_vectors)
    grid = meta.grid
    t0 = EPOCH + dt.timedelta(seconds=float(grid["time"][0]))
    lat, lon = rdr2geo(orbit, orbit.seconds(t0), grid["tau"][0] * C / 2, grid["hgt"][0, 0])
    if abs(lat - grid["lat"][0, 0]) * 111e3 > 2000 or abs(lon - grid["lon"][0, 0]) * 70e3 > 2000:
        return [b.bbox for b in meta.bursts]
    far = meta.starting_range + (meta.samples - 1) * C / (2 * meta.range_sampling_rate)
    out = []
    for burst in meta.bursts:
        w, s, e, n = crop_box(orbit, burst.sensing_start, burst.sensing_stop, meta.starting_range, far)
        out.append((s, n, w, e))
    return out


def overlap(box1: tuple[float, ...], box2: list[float]) -> bool:
    """Sentinel1.crop's rectangle test (both S, N, W, E)."""
    h = not (box1[2] >= box2[3] or box1[3] <= box2[2])
    v = not (box1[1] <= box2[0] or box1[0] >= box2[1])
    return h and v


def read_swath(sensor: dict[str, Any], swath: int, roi: list[float]) -> SwathMeta:
    """All slices of one date for one swath: validate, parse, orbit, crop, stitch."""
    safes = sensor.get("safe") or []
    if not isinstance(safes, list):
        safes = [safes]
    if not safes:
        raise Exception("SAFE directory is not provided")  # noqa: TRY002
    if roi and (len(roi) != 4 or roi[0] >= roi[1] or roi[2] >= roi[3]):
        raise Exception("Error in bbox definition: SNWE expected")  # noqa: TRY002
    pol = sensor.get("polarization") or "vv"
    slices = [parse_slice(str(s), swath, pol) for s in safes]
    for one in slices:
        start, stop = one.bursts[0].sensing_start, one.bursts[-1].sensing_stop
        orbit_file = sensor.get("orbitfile")
        if not orbit_file and sensor.get("orbitdirectory"):
            orbit_file = find_orbit(sensor["orbitdirectory"], start, stop, one.mission)
        if orbit_file:
            vectors = read_orbit(orbit_file, start, stop)
            if len(vectors) < 4:
                # the pass-direction interpolation at mid-burst has too few state vectors
                raise Exception(f"Cannot interpolate orbit from {orbit_file} at {start}")  # noqa: TRY002
            one.orbit_source = os.path.basename(orbit_file)
            one.state_vectors = vectors
        if roi:
            boxes = isce_bboxes(one)
            one.bursts = [b for b, box in zip(one.bursts, boxes, strict=True) if overlap(box, roi)]
    slices = [s for s in slices if s.bursts]
    if not slices:
        raise Exception("NODATA: No bursts to extract")  # noqa: TRY002
    if len({s.ipf for s in slices}) > 1:
        raise Exception("Trying to combine SLC products from different IPF versions")  # noqa: TRY002
    slices.sort(key=lambda s: s.bursts[0].sensing_start)
    merged = slices[0]
    for other in slices[1:]:
        merged.safe_paths += other.safe_paths
        last = merged.bursts[-1].burst_start
        for burst in other.bursts:
            if (burst.burst_start - last).total_seconds() > 1.0:  # not a repeat of the overlap
                merged.bursts.append(burst)
                last = burst.burst_start
    return merged


def burst_vrt(burst: BurstMeta, width: int, length: int, line_offset: int, vrt_dir: Path) -> str:
    """createBurstVRT: the valid part of a burst, read in place from the TIFF."""
    source = burst.tiff
    rel = "0"
    if not source.startswith("/vsizip/"):
        source = os.path.relpath(os.path.abspath(source), os.path.abspath(vrt_dir))
        rel = "1"
    return (
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{length}">\n'
        '    <VRTRasterBand dataType="CFloat32" band="1">\n'
        "        <NoDataValue>0.0</NoDataValue>\n"
        "        <SimpleSource>\n"
        f'            <SourceFilename relativeToVRT="{rel}">{source}</SourceFilename>\n'
        "            <SourceBand>1</SourceBand>\n"
        f'            <SourceProperties RasterXSize="{burst.full_width}" RasterYSize="{burst.full_length}" DataType="CInt16"/>\n'
        f'            <SrcRect xOff="{burst.first_valid_sample}" yOff="{line_offset + burst.first_valid_line}" '
        f'xSize="{burst.num_valid_samples}" ySize="{burst.num_valid_lines}"/>\n'
        f'            <DstRect xOff="{burst.first_valid_sample}" yOff="{burst.first_valid_line}" '
        f'xSize="{burst.num_valid_samples}" ySize="{burst.num_valid_lines}"/>\n'
        "        </SimpleSource>\n"
        "    </VRTRasterBand>\n"
        "</VRTDataset>"
    )
