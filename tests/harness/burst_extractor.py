"""Emulation of ASF's burst extractor (sentinel1-burst.asf.alaska.edu) over SLC SAFE zips.

``GET /<SLC granule>/<IW1-3>/<VV|VH|HH|HV>/<burst index>.tiff`` answers one burst of the
slice's swath as a CInt16 TIFF (its lines ``index * linesPerBurst`` onward, every sample);
``.xml`` answers the slice's metadata for that polarization: one XML holding, per swath,
``product``, ``calibration`` and ``noise`` elements (each with ``swath``, ``polarisation`` and
the annotation's own elements under ``content``) and the ``manifest`` (the SAFE's XFDU), which
is what the burst-extractor SAFEs of ../shared/fixtures/hyp3-isce2 are made of. A burst index
past the swath's burst list, or a swath or polarization the slice does not hold, is a 404 with
a message, as on the real service, never an empty file. Requests go through the Earthdata
emulator's login gate and faults (``EarthdataEmulator.gate``/``serve``), like SLC products.

The slices are the shared real stack's zips (harness.real_stack): one swath (IW1 VV) of two
bursts. Their calibration and noise annotation are the real ones of the xarray-sentinel fixture
(the stack's source), cut to the stack's lines and moved to its dates the way the stack's own
annotation is. ``burst_records`` makes the asf_search properties of each burst (the fields of
the real SLC-BURST records in ../shared/fixtures/asf_search) from the annotation.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .earthdata import EarthdataEmulator
from .real_stack import SOURCE_ZIP, RealStack, _cint16_tiff, _shift_times
from .server import Request, Response, text_response

ROUTE = re.compile(
    r"/(?P<slc>S1[A-D]_IW_SLC__[0-9A-Z_]+)/(?P<swath>[A-Z0-9]+)/(?P<pol>[A-Z]+)/"
    r"(?P<index>-?\d+)\.(?P<ext>tiff|xml)"
)


@dataclass
class Slice:
    """One SLC zip the extractor cuts bursts from, read once."""

    name: str
    annotations: dict[tuple[str, str], bytes]  # (swath, pol) -> product annotation
    calibration: dict[tuple[str, str], bytes]
    noise: dict[tuple[str, str], bytes]
    tiffs: dict[tuple[str, str], bytes]
    manifest: bytes


class BurstExtractor:
    """Bursts of the registered slices on the Earthdata emulator's data host."""

    def __init__(self, earthdata: EarthdataEmulator) -> None:
        self.earthdata = earthdata
        self.slices: dict[str, Slice] = {}
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str, int, str], bytes] = {}
        self._route = earthdata.server.add_route("GET", ROUTE, self._handle, name="burst-extractor")

    @property
    def base_url(self) -> str:
        return f"https://{self.earthdata.data_host}"

    def close(self) -> None:
        self._route.remove()

    def add_slice(self, zip_path: Path, calibration: dict | None = None,
                  noise: dict | None = None) -> Slice:  # fmt: skip
        """Register an SLC zip; calibration/noise annotation (if the zip has none) by
        (swath, pol)."""
        with zipfile.ZipFile(zip_path) as archive:
            members = {n.split(".SAFE/", 1)[1]: n for n in archive.namelist() if ".SAFE/" in n}
            name = next(iter(archive.namelist())).split(".SAFE/")[0]

            def read(rel: str) -> bytes:
                return archive.read(members[rel])

            annotations, tiffs, cal, noi = {}, {}, dict(calibration or {}), dict(noise or {})
            for rel in members:
                match = re.fullmatch(r"(?:annotation/(calibration/)?)(calibration-|noise-)?"
                                     r"s1[a-d]-(iw\d)-slc-(\w\w)-.*\.xml", rel)  # fmt: skip
                if match:
                    key = (match[3].upper(), match[4].upper())
                    {"calibration-": cal, "noise-": noi}.get(match[2] or "", annotations)[key] = read(rel)
                tiff = re.fullmatch(r"measurement/s1[a-d]-(iw\d)-slc-(\w\w)-.*\.tiff", rel)
                if tiff:
                    tiffs[(tiff[1].upper(), tiff[2].upper())] = read(rel)
            found = Slice(name, annotations, cal, noi, tiffs, read("manifest.safe"))
        with self._lock:
            self.slices[name] = found
        return found

    def url(self, slc: str, swath: str, pol: str, index: int, ext: str = "tiff") -> str:
        return f"{self.base_url}/{slc}/{swath}/{pol}/{index}.{ext}"

    def requests(self) -> list:
        return [e for e in self.earthdata.server.requests("/") if ROUTE.fullmatch(e.path)]

    def bytes_sent(self) -> int:
        return sum(e.bytes_sent for e in self.requests() if e.status in (200, 206))

    # -- the service ------------------------------------------------------------------------
    def _handle(self, request: Request) -> Response:
        refused = self.earthdata.gate(request)
        if refused is not None:
            return refused
        assert request.match is not None
        slc, swath, pol = request.match["slc"], request.match["swath"], request.match["pol"]
        index, ext = int(request.match["index"]), request.match["ext"]
        found = self.slices.get(slc)
        if found is None:
            return text_response(f"granule {slc} not found\n", 404)
        if (swath, pol) not in found.annotations:
            held = ", ".join(f"{s} {p}" for s, p in sorted(found.annotations))
            return text_response(f"{slc} holds no {swath} {pol} (it holds {held})\n", 404)
        root = ET.fromstring(found.annotations[(swath, pol)])
        count = len(root.findall("swathTiming/burstList/burst"))
        if not 0 <= index < count:
            return text_response(
                f"burst index {index} is out of range: {swath} of {slc} has bursts 0-{count - 1}\n",
                404,
            )
        key = (slc, swath, pol, index, ext)
        with self._lock:
            body = self._cache.get(key)
        if body is None:
            body = self._tiff(found, swath, pol, index) if ext == "tiff" else self._xml(found, pol)
            with self._lock:
                self._cache[key] = body
        kind = "image/tiff" if ext == "tiff" else "application/xml"
        return self.earthdata.serve(request, body, kind)

    @staticmethod
    def _tiff(found: Slice, swath: str, pol: str, index: int) -> bytes:
        root = ET.fromstring(found.annotations[(swath, pol)])
        lines = int(root.findtext("swathTiming/linesPerBurst"))
        samples = int(root.findtext("swathTiming/samplesPerBurst"))
        burst = root.findall("swathTiming/burstList/burst")[index]
        offset = int(burst.findtext("byteOffset"))
        raw = np.frombuffer(found.tiffs[(swath, pol)], dtype="<i2", count=lines * samples * 2,
                            offset=offset).reshape(lines, samples, 2)  # fmt: skip
        return _cint16_tiff(raw[..., 0] + 1j * raw[..., 1].astype(np.float64))

    @staticmethod
    def _xml(found: Slice, pol: str) -> bytes:
        top = ET.Element("burst")
        metadata = ET.SubElement(top, "metadata")
        for kind, table in (("product", found.annotations), ("calibration", found.calibration),
                            ("noise", found.noise)):  # fmt: skip
            for (swath, polarization), data in sorted(table.items()):
                if polarization != pol:
                    continue
                element = ET.SubElement(metadata, kind)
                ET.SubElement(element, "swath").text = swath
                ET.SubElement(element, "polarisation").text = polarization
                content = ET.SubElement(element, "content")
                content.extend(list(ET.fromstring(data)))
        manifest = ET.SubElement(top, "manifest")
        manifest.append(ET.fromstring(found.manifest))
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(top)


# --- the real stack's calibration and noise, and its burst records ------------------------------


def stack_calibration(stack: RealStack, date_index: int) -> tuple[dict, dict]:
    """The source's real IW1 VV calibration and noise annotation, cut and moved as the stack's
    own annotation is (lines from the stack's first burst, times by 12 days per date)."""
    from .real_stack import CYCLE_DAYS

    b0 = stack.spec.bursts[0]
    with zipfile.ZipFile(SOURCE_ZIP) as archive:
        names = archive.namelist()

        def member(prefix: str) -> bytes:
            return archive.read(next(n for n in names if f"/{prefix}-s1b-iw1-slc-vv-" in n))

        annotation = ET.fromstring(archive.read(next(
            n for n in names if re.search(r"annotation/s1b-iw1-slc-vv-.*\.xml$", n))))  # fmt: skip
        lines = int(annotation.findtext("swathTiming/linesPerBurst"))
        out = []
        for prefix in ("calibration", "noise"):
            root = ET.fromstring(member(prefix))
            for line in root.iter("line"):  # one line, or a list of them (azimuth noise)
                line.text = " ".join(str(int(v) - b0 * lines) for v in line.text.split())
            for tag in ("firstAzimuthLine", "lastAzimuthLine"):
                for node in root.iter(tag):
                    node.text = str(max(int(node.text) - b0 * lines, 0))
            text = ET.tostring(root, encoding="unicode")
            delta = dt.timedelta(days=CYCLE_DAYS * date_index)
            out.append({("IW1", "VV"): _shift_times(text, delta).encode()})
    return out[0], out[1]


def burst_records(stack: RealStack, extractor: BurstExtractor, slice_: Slice) -> list[dict[str, Any]]:
    """asf_search properties and geometry of each burst of a slice, from its annotation, with
    the fields of the real SLC-BURST records."""
    from burst2safe.burst_id import calculate_burstid

    records = []
    manifest = slice_.manifest.decode()
    rel = int(re.search(r'<safe:relativeOrbitNumber type="start">(\d+)<', manifest)[1])
    anx = re.search(r"<s1:ascendingNodeTime>([^<]+)<", manifest)[1]
    ipf = re.search(r'<safe:software [^>]*version="([^"]+)"', manifest)[1]
    for (swath, pol), data in sorted(slice_.annotations.items()):
        root = ET.fromstring(data)
        lines = int(root.findtext("swathTiming/linesPerBurst"))
        samples = int(root.findtext("swathTiming/samplesPerBurst"))
        ati = float(root.findtext("imageAnnotation/imageInformation/azimuthTimeInterval"))
        absolute = int(root.findtext("adsHeader/absoluteOrbitNumber"))
        grid = [
            (int(p.findtext("line")), int(p.findtext("pixel")), float(p.findtext("latitude")),
             float(p.findtext("longitude")))
            for p in root.iter("geolocationGridPoint")
        ]  # fmt: skip
        for index, burst in enumerate(root.findall("swathTiming/burstList/burst")):
            start = dt.datetime.fromisoformat(burst.findtext("azimuthTime")).replace(tzinfo=dt.UTC)
            stop = start + dt.timedelta(seconds=(lines - 1) * ati)
            burst_id, _ = calculate_burstid(burst.findtext("sensingTime"), anx, rel, rel, swath)
            crc = slice_.name[-4:]
            name = f"S1_{burst_id:06d}_{swath}_{start:%Y%m%dT%H%M%S}_{pol}_{crc}-BURST"
            # the footprint: the burst's corners on the grid (first and last grid line of the
            # burst, first and last grid pixel), a tilted quadrilateral as in the real records
            inside = [(ln, px, lat, lon) for ln, px, lat, lon in grid
                      if index * lines <= ln <= (index + 1) * lines]  # fmt: skip
            first, last = min(p[0] for p in inside), max(p[0] for p in inside)
            near, far = min(p[1] for p in inside), max(p[1] for p in inside)
            corner = {(p[0], p[1]): (p[3], p[2]) for p in inside}
            ring = [list(corner[(first, near)]), list(corner[(first, far)]),
                    list(corner[(last, far)]), list(corner[(last, near)]),
                    list(corner[(first, near)])]  # fmt: skip
            lats = [p[2] for p in inside]
            lons = [p[3] for p in inside]
            records.append({
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {
                    "beamModeType": "IW", "bytes": lines * samples * 4,
                    "centerLat": sum(lats) / len(lats), "centerLon": sum(lons) / len(lons),
                    "fileID": name, "flightDirection": "DESCENDING", "md5sum": None,
                    "orbit": absolute, "pathNumber": rel, "platform": "Sentinel-1" + slice_.name[2],
                    "polarization": pol, "processingLevel": "BURST", "sceneName": name,
                    "startTime": start.isoformat().replace("+00:00", "Z"),
                    "stopTime": stop.isoformat().replace("+00:00", "Z"),
                    "url": extractor.url(slice_.name, swath, pol, index),
                    "additionalUrls": [extractor.url(slice_.name, swath, pol, index, "xml")],
                    "pgeVersion": ipf, "fileName": f"{name}.tiff",
                    "burst": {
                        "fullBurstID": f"{rel:03d}_{burst_id:06d}_{swath}", "relativeBurstID": burst_id,
                        "burstIndex": index, "samplesPerBurst": samples, "subswath": swath,
                        "azimuthTime": burst.findtext("azimuthTime"),
                    },
                },
            })  # fmt: skip
    return records


def split_slice(whole: Slice, first_name: str, second_name: str) -> tuple[Slice, Slice]:
    """One slice of two bursts as two consecutive slices of one burst each, as a pass is cut
    into slices: each keeps its own burst list, lines (the geolocation grid and the
    calibration and noise vectors counted from its own first line) and TIFF. The manifest is
    the whole slice's (burst2safe reads the orbit and ascending-node time from it)."""
    parts = []
    for index, name in enumerate((first_name, second_name)):
        annotations, tiffs, cal, noi = {}, {}, {}, {}
        for key, data in whole.annotations.items():
            root = ET.fromstring(data)
            lines = int(root.findtext("swathTiming/linesPerBurst"))
            burst_list = root.find("swathTiming/burstList")
            bursts = burst_list.findall("burst")
            for other, burst in enumerate(bursts):
                if other != index:
                    burst_list.remove(burst)
            burst_list.set("count", "1")
            root.find("imageAnnotation/imageInformation/numberOfLines").text = str(lines)
            split = dt.datetime.fromisoformat(bursts[1].findtext("azimuthTime"))
            shift = split - dt.datetime.fromisoformat(bursts[0].findtext("azimuthTime"))
            _cut_time_lists(root, split, shift, index)
            grid = root.find("geolocationGrid/geolocationGridPointList")
            kept = 0
            for point in grid.findall("geolocationGridPoint"):
                line = int(point.findtext("line")) - index * lines
                if 0 <= line <= lines:
                    point.find("line").text = str(line)
                    kept += 1
                else:
                    grid.remove(point)
            grid.set("count", str(kept))
            annotations[key] = ET.tostring(root)
            tiffs[key] = whole.tiffs[key]  # byteOffset still points at this burst's lines
            for table, out in ((whole.calibration, cal), (whole.noise, noi)):
                if key in table:
                    vectors = ET.fromstring(table[key])
                    for node in vectors.iter("line"):
                        node.text = " ".join(str(int(v) - index * lines) for v in node.text.split())
                    _cut_time_lists(vectors, split, shift, index)
                    out[key] = ET.tostring(vectors)
        parts.append(Slice(name, annotations, cal, noi, tiffs, whole.manifest))
    return parts[0], parts[1]


_TIME_TAGS = ("azimuthTime", "time", "referenceReplica/azimuthTime", "noiseSensingTime")


def _cut_time_lists(root: ET.Element, split: dt.datetime, shift: dt.timedelta, index: int) -> None:
    """The time-stamped lists of an annotation (every ``count`` list but the burst list and
    the geolocation grid, which are cut by line) as each of two slices holds its own: the
    first ends where the second slice begins; the second holds the whole list, and a list
    recorded once per slice (downlink, raw data analysis, replica...) at its own later time."""
    lists = [e for e in root.iter() if e.get("count") is not None
             and e.tag not in ("burstList", "geolocationGridPointList")]  # fmt: skip
    for items in lists:
        stamped = [(item, node) for item in items for node in [_time_node(item)] if node is not None]
        if not stamped:
            continue
        times = [dt.datetime.fromisoformat(node.text) for _, node in stamped]
        if index == 0:
            for (item, _), when in zip(stamped, times, strict=True):
                if when >= split and len(items) > 1:
                    items.remove(item)
        elif max(times) < split:
            for (_, node), when in zip(stamped, times, strict=True):
                node.text = (when + shift).isoformat(timespec="microseconds")
        if items.get("count") is not None:
            items.set("count", str(len(items)))


def _time_node(item: ET.Element) -> ET.Element | None:
    for tag in _TIME_TAGS:
        node = item.find(tag)
        if node is not None and node.text:
            return node
    return None
