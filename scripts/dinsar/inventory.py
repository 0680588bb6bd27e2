"""Scene inventory: search ASF (or read a saved search), group scenes into acquisitions, pick tracks.

A *scene* is one Sentinel-1 IW SLC product (one slice/frame), or in burst mode one burst of ASF's
``SLC-BURST`` collection (a :class:`Burst`: one burst, one swath, one polarization, cut on demand
from its SLC). An *acquisition* is every slice (or burst) of one pass over the ROI: those go
together to topsApp's ``safe`` list. Acquisitions are keyed by track (``<path>_<ASC|DESC>``) and
date (``YYYYMMDD`` of the first slice's start, UTC).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from .atomic import atomic_path, write_json
from .bursts import boxes_overlap, isce_box
from .errors import DinsarError

log = logging.getLogger(__name__)

INVENTORY_FORMAT = "dinsar-inventory/1"

# Sentinel-1 IW SLC product names: mission, mode, product type, start/stop, orbit, datatake, CRC.
GRANULE_RE = re.compile(
    r"^S1[A-D]_IW_SLC__1S[SD][HV]_\d{8}T\d{6}_\d{8}T\d{6}_\d{6}_[0-9A-F]{6}_[0-9A-F]{4}$"
)
# ASF burst granules: burst ID, swath, burst start, polarization, the source SLC's CRC.
BURST_GRANULE_RE = re.compile(r"^S1_\d{6}_IW[1-3]_\d{8}T\d{6}_(?:VV|VH|HH|HV)_[0-9A-F]{4}-BURST$")
# ASF's burst extractor: /<source SLC>/<swath>/<polarization>/<burst index>.tiff (and .xml)
BURST_URL_PATH_RE = re.compile(
    r"^/(?P<source>S1[A-D]_IW_SLC__1S[SD][HV]_\d{8}T\d{6}_\d{8}T\d{6}_\d{6}_[0-9A-F]{6}_[0-9A-F]{4})"
    r"/(?P<swath>IW[1-3])/(?P<pol>VV|VH|HH|HV)/(?P<index>\d{1,2})\.tiff$"
)
MD5_RE = re.compile(r"^[0-9a-f]{32}$")
# Slices of one pass follow each other within a few seconds; a longer gap means a missing slice.
MAX_SLICE_GAP_S = 5.0


@dataclass(frozen=True)
class Scene:
    """One Sentinel-1 IW SLC product, with what staging and baselines need."""

    granule: str
    url: str
    bytes: int
    md5: str | None
    footprint: Polygon | MultiPolygon
    path: int
    frame: int | None
    platform: str  # "S1A" .. "S1D"
    flight_direction: str  # "ASCENDING" | "DESCENDING"
    start_time: dt.datetime
    stop_time: dt.datetime
    polarization: str  # e.g. "VV+VH"
    orbit: int | None  # absolute orbit
    ipf: str | None
    center_lat: float
    center_lon: float
    baseline: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    perpendicular_baseline: float | None = None  # pre-computed (asf_search export), metres

    @property
    def track(self) -> str:
        return track_id(self.path, self.flight_direction)

    @property
    def date(self) -> str:
        return self.start_time.strftime("%Y%m%d")

    @property
    def filename(self) -> str:
        return f"{self.granule}.zip"

    @property
    def slc(self) -> str:
        """The SLC slice this record is (a burst: the slice it is cut from)."""
        return self.granule

    def to_feature(self) -> dict[str, Any]:
        """Our inventory's GeoJSON feature (also what `inventory:` reads back)."""
        props: dict[str, Any] = {
            "granule": self.granule,
            "url": self.url,
            "bytes": self.bytes,
            "md5": self.md5,
            "path": self.path,
            "frame": self.frame,
            "platform": self.platform,
            "flight_direction": self.flight_direction,
            "track": self.track,
            "date": self.date,
            "start_time": _iso(self.start_time),
            "stop_time": _iso(self.stop_time),
            "polarization": self.polarization,
            "orbit": self.orbit,
            "ipf": self.ipf,
            "center_lat": self.center_lat,
            "center_lon": self.center_lon,
            "perpendicular_baseline": self.perpendicular_baseline,
            "baseline": self.baseline,
        }
        return {"type": "Feature", "geometry": mapping(self.footprint), "properties": props}


BurstKey = tuple[str, str]  # (full burst ID, polarization)


@dataclass(frozen=True, kw_only=True)
class Burst(Scene):
    """One burst of ASF's SLC-BURST collection: one burst, swath and polarization of one SLC.

    ``url`` is the burst's TIFF and ``xml_url`` its metadata, both cut on demand by ASF's burst
    extractor from the ``source`` SLC; ``burst_index`` is the burst's place in that SLC's swath.
    ASF gives no md5 for a burst.
    """

    full_burst_id: str  # "<path>_<relative burst id>_<swath>", e.g. "174_372326_IW3"
    swath: str  # "IW1" .. "IW3"
    burst_index: int
    source: str  # the SLC granule the burst is cut from
    xml_url: str

    @property
    def filename(self) -> str:
        return f"{self.granule}.tiff"

    @property
    def slc(self) -> str:
        return self.source

    @property
    def xml_filename(self) -> str:
        """The extractor's metadata: the source slice's, for this polarization."""
        return f"{self.source}_{self.polarization}.xml"

    @property
    def key(self) -> BurstKey:
        """What stays the same on every date: the full burst ID and the polarization."""
        return self.full_burst_id, self.polarization

    def to_feature(self) -> dict[str, Any]:
        feature = super().to_feature()
        feature["properties"].update(
            full_burst_id=self.full_burst_id,
            swath=self.swath,
            burst_index=self.burst_index,
            source=self.source,
            xml_url=self.xml_url,
        )
        return feature


@dataclass
class Acquisition:
    """All slices of one pass over the ROI: one date of one track."""

    track: str
    date: str
    scenes: list[Scene]
    coverage: float = 0.0
    used: bool = False
    reason: str = ""

    @property
    def platform(self) -> str:
        return self.scenes[0].platform

    @property
    def granules(self) -> list[str]:
        return [s.granule for s in self.scenes]

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.scenes)

    @property
    def safe_names(self) -> list[str]:
        """The SAFE zips topsApp reads for this date, without ``.zip``: the slices' own, or in
        burst mode the one SAFE made from the date's bursts, named after them."""
        bursts = [s for s in self.scenes if isinstance(s, Burst)]
        if not bursts:
            return self.granules
        return [f"{self.track}_{self.date}_{burst_label(b.key for b in bursts)}"]

    @property
    def slices(self) -> list[str]:
        """The SLC slices of the pass, in time order (in burst mode: those its bursts come from)."""
        return list(dict.fromkeys(s.slc for s in sorted(self.scenes, key=lambda s: s.start_time)))

    @property
    def footprint(self) -> Polygon | MultiPolygon:
        return shapely.union_all([s.footprint for s in self.scenes])

    @property
    def start_time(self) -> dt.datetime:
        return min(s.start_time for s in self.scenes)

    @property
    def stop_time(self) -> dt.datetime:
        return max(s.stop_time for s in self.scenes)


def burst_label(keys: Iterable[BurstKey]) -> str:
    """A name saying which bursts a SAFE holds: per swath the first and last burst ID, and the
    polarization, e.g. ``174_IW2_372325-372327_IW3_372326-372326_VV``."""
    keys = sorted(set(keys))
    by_swath: dict[str, list[int]] = defaultdict(list)
    for full_id, _pol in keys:
        path, burst, swath = full_id.split("_")
        by_swath[swath].append(int(burst))
    path = keys[0][0].split("_")[0]
    pols = "+".join(sorted({pol for _, pol in keys}))
    swaths = "_".join(f"{s}_{min(ids):06d}-{max(ids):06d}" for s, ids in sorted(by_swath.items()))
    return f"{path}_{swaths}_{pols}"


def track_id(path: int, flight_direction: str) -> str:
    return f"{int(path)}_{'ASC' if flight_direction.upper().startswith('A') else 'DESC'}"


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> dt.datetime:
    """ISO 8601 (with or without Z / fraction) -> aware UTC datetime."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _platform_code(name: str) -> str:
    """'Sentinel-1A' / 'SENTINEL-1A' / 'S1A' -> 'S1A'."""
    text = name.upper().replace("SENTINEL-", "S")
    if not re.fullmatch(r"S1[A-D]", text):
        raise ValueError(f"unknown platform {name!r}")
    return text


class InventoryError(DinsarError):
    """A saved search or inventory file is unusable."""


INVENTORY_FIX = "fix or remove it in the inventory file"


def validate_granule(name: str, fix: str = INVENTORY_FIX) -> str:
    """Refuse names that are not Sentinel-1 IW SLC products (they end up in paths and commands)."""
    # fullmatch: GRANULE_RE's $ would also accept a trailing newline
    if not isinstance(name, str) or not GRANULE_RE.fullmatch(name):
        raise InventoryError(
            f"granule name {name!r} is not a Sentinel-1 IW SLC product name "
            f"(S1x_IW_SLC__1Sxx_<start>_<stop>_<orbit>_<datatake>_<crc>); {fix}"
        )
    return name


def validate_url(url: Any, granule: str, where: str, fix: str = INVENTORY_FIX) -> str:
    """A product URL must be https (the session may send an Earthdata token to its host), carry
    no credentials and name the granule's zip (what the download is checked against)."""
    text = str(url)
    parts = urlsplit(text)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.username is not None
        or not parts.path.endswith(f"/{granule}.zip")
        or any(c.isspace() for c in text)
    ):
        raise InventoryError(
            f"{where}: download URL {text!r} is not an https URL of {granule}.zip; {fix}"
        )
    return text


# Where each Scene field sits in an asf_search record and in our own inventory feature.
ASF_KEYS = {
    "granule": "sceneName", "md5": "md5sum", "path": "pathNumber", "frame": "frameNumber",
    "flight_direction": "flightDirection", "start_time": "startTime", "stop_time": "stopTime",
    "ipf": "pgeVersion", "center_lat": "centerLat", "center_lon": "centerLon",
    "perpendicular_baseline": "perpendicularBaseline",
}  # fmt: skip
OWN_KEYS: dict[str, str] = {}  # our features use the field names


def scene_from_properties(
    props: dict[str, Any],
    geometry: dict[str, Any] | None,
    baseline: dict[str, Any] | None = None,
    where: str = "record",
    fix: str = INVENTORY_FIX,
) -> Scene:
    """Build a Scene from asf_search product properties (search result or GeoJSON export)."""
    return _scene(props, ASF_KEYS, geometry, baseline, where, fix)


def scene_from_feature(feature: dict[str, Any], where: str) -> Scene:
    """Build a Scene (or a Burst) from one feature of our own inventory file."""
    props = feature.get("properties") or {}
    return _scene(props, OWN_KEYS, feature.get("geometry"), props.get("baseline"), where)


def _scene(
    props: dict[str, Any],
    keys: dict[str, str],
    geometry: dict[str, Any] | None,
    baseline: dict[str, Any] | None,
    where: str,
    fix: str = INVENTORY_FIX,
) -> Scene:
    """A Scene, or a Burst when the record is one (it carries a full burst ID)."""
    if "full_burst_id" in props:
        return _burst(props, keys, where, fix, lambda name, at: _common_fields(
            props, keys, geometry, baseline, at, fix, name, ""))  # fmt: skip
    try:
        name = validate_granule(props.get(keys.get("granule", "granule")), fix)
        where = f"{where} ({name})"
        url = validate_url(_require(props, keys.get("url", "url"), where), name, where, fix)
        return Scene(**_common_fields(props, keys, geometry, baseline, where, fix, name, url))
    except (TypeError, ValueError) as exc:
        raise InventoryError(f"{where}: {exc}") from None


def _common_fields(
    props: dict[str, Any],
    keys: dict[str, str],
    geometry: dict[str, Any] | None,
    baseline: dict[str, Any] | None,
    where: str,
    fix: str,
    name: str,
    url: str,
) -> dict[str, Any]:
    """The fields scenes and bursts share, read and checked the same way for both."""

    def get(field: str) -> Any:
        return props.get(keys.get(field, field))

    def need(field: str) -> Any:
        return _require(props, keys.get(field, field), where)

    def optional_int(field: str) -> int | None:
        return int(get(field)) if get(field) is not None else None

    md5 = get("md5")
    return dict(
        granule=name,
        url=url,
        bytes=int(need("bytes")),
        md5=_check_md5(md5, where) if md5 else None,
        footprint=_footprint(geometry, where),
        path=int(need("path")),
        frame=optional_int("frame"),
        platform=_platform_code(need("platform")),
        flight_direction=str(need("flight_direction")).upper(),
        start_time=parse_time(need("start_time")),
        stop_time=parse_time(need("stop_time")),
        polarization=str(get("polarization") or ""),
        orbit=optional_int("orbit"),
        ipf=str(get("ipf")) if get("ipf") else None,
        center_lat=float(need("center_lat")),
        center_lon=float(need("center_lon")),
        baseline=baseline,
        perpendicular_baseline=_optional_float(get("perpendicular_baseline")),
    )


# --- bursts ------------------------------------------------------------------------------------

FULL_BURST_ID_RE = re.compile(r"^(?P<path>\d{1,3})_(?P<burst>\d{6})_(?P<swath>IW[1-3])$")


def burst_from_properties(
    props: dict[str, Any],
    geometry: dict[str, Any] | None,
    baseline: dict[str, Any] | None = None,
    where: str = "record",
    fix: str = INVENTORY_FIX,
) -> Burst:
    """A Burst from asf_search's properties of an SLC-BURST product (search or GeoJSON export)."""
    burst = props.get("burst") or {}
    extra = props.get("additionalUrls") or []
    flat = {
        **props,
        "full_burst_id": burst.get("fullBurstID"),
        "swath": burst.get("subswath"),
        "burst_index": burst.get("burstIndex"),
        "xml_url": next((u for u in extra if str(u).endswith(".xml")), None),
    }
    return _scene(flat, ASF_KEYS, geometry, baseline, where, fix)


def _burst(props: dict[str, Any], keys: dict[str, str], where: str, fix: str,
           common: Any) -> Burst:  # fmt: skip
    """A Burst from a flat record; ``common(name, where)`` reads the fields scenes share."""
    name = props.get(keys.get("granule", "granule"))
    # fullmatch: the pattern's $ would also accept a trailing newline
    if not isinstance(name, str) or not BURST_GRANULE_RE.fullmatch(name):
        raise InventoryError(
            f"{where}: burst name {name!r} is not an ASF SLC-BURST granule name "
            f"(S1_<burst id>_IW<n>_<start>_<pol>_<crc>-BURST); {fix}"
        )
    where = f"{where} ({name})"
    try:
        fields = common(name, where)
        url, xml_url = str(props.get("url")), str(props.get("xml_url"))
        parts, xml_parts = urlsplit(url), urlsplit(xml_url)
        match = BURST_URL_PATH_RE.fullmatch(parts.path)
        full_id = str(props.get("full_burst_id") or "")
        id_match = FULL_BURST_ID_RE.fullmatch(full_id)
        index = int(props.get("burst_index") or 0)
    except (TypeError, ValueError) as exc:
        raise InventoryError(f"{where}: {exc}") from None
    _, relative_id, swath, _, pol, crc = name.removesuffix("-BURST").split("_")
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or any(c.isspace() for c in url)
        or not match
        or (match["swath"], match["pol"], int(match["index"])) != (swath, pol, index)
        or not match["source"].endswith(crc)
        or (xml_parts.scheme, xml_parts.netloc, xml_parts.path, xml_parts.query)
        != (parts.scheme, parts.netloc, parts.path.removesuffix(".tiff") + ".xml", "")
    ):
        raise InventoryError(
            f"{where}: burst URLs {url!r} and {xml_url!r} are not the https extractor URLs "
            f"of burst {index} of {swath} {pol} (.../<SLC>/{swath}/{pol}/{index}.tiff and .xml); "
            f"{fix}"
        )
    if (
        not id_match
        or (int(id_match["path"]), id_match["burst"], id_match["swath"])
        != (fields["path"], relative_id, swath)
        or fields["polarization"] != pol
    ):
        raise InventoryError(
            f"{where}: full burst ID {full_id!r} (polarization {fields['polarization']!r}) does "
            f"not match the name and path {fields['path']}; {fix}"
        )
    fields["url"] = url
    return Burst(
        **fields,
        full_burst_id=full_id,
        swath=swath,
        burst_index=index,
        source=match["source"],
        xml_url=xml_url,
    )


def _require(props: dict[str, Any], key: str, where: str) -> Any:
    value = props.get(key)
    if value is None or value == "":
        raise InventoryError(f"{where}: field {key!r} is missing; restore it or search again")
    return value


def _check_md5(value: Any, where: str) -> str:
    text = str(value).strip().lower()
    if not MD5_RE.match(text):
        raise InventoryError(
            f"{where}: md5 {value!r} is not a 32-digit hex checksum; "
            "restore the value from ASF or search again"
        )
    return text


def _optional_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def _footprint(geometry: dict[str, Any] | None, where: str) -> Polygon | MultiPolygon:
    if not geometry:
        raise InventoryError(f"{where}: footprint geometry is missing")
    try:
        geom = shape(geometry)
    except (ValueError, AttributeError, KeyError, TypeError) as exc:
        raise InventoryError(f"{where}: footprint geometry is invalid ({exc})") from None
    if not isinstance(geom, (Polygon, MultiPolygon)) or geom.is_empty:
        raise InventoryError(f"{where}: footprint is not a polygon")
    return geom if geom.is_valid else geom.buffer(0)


# --- reading and writing ---------------------------------------------------------------------


def load_saved_search(path: str | Path) -> list[Scene]:
    """Read an asf_search GeoJSON export or our own inventory file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InventoryError(
            f"inventory {str(path)!r} is not readable GeoJSON ({exc}); "
            "give an asf_search GeoJSON export or a <workspace>/inventory/scenes.geojson"
        ) from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise InventoryError(
            f"inventory {str(path)!r} is not a GeoJSON FeatureCollection; "
            "export a search with asf_search's results.geojson() or reuse scenes.geojson"
        )
    features = data.get("features") or []
    scenes = []
    for index, feature in enumerate(features):
        props = (feature or {}).get("properties") or {}
        where = f"inventory {path.name} feature {index}"
        if "granule" in props:
            scenes.append(scene_from_feature(feature, where))
        elif "sceneName" in props:
            build = burst_from_properties if props.get("burst") else scene_from_properties
            scenes.append(build(props, feature.get("geometry"), None, where))
        else:
            raise InventoryError(
                f"{where}: neither 'granule' (our inventory) nor 'sceneName' (asf_search export) "
                "is present; the file is not a scene inventory"
            )
    return scenes


def write_inventory(
    scenes: Sequence[Scene],
    path: str | Path,
    query: dict[str, Any],
    stamp: dict[str, Any] | None = None,
) -> None:
    """Write scenes.geojson: every scene found, with what was searched.

    ``stamp`` records what the search was made for (see search.search_stamp), so a later run
    can tell whether this inventory is still current without searching again.
    """
    collection = {
        "type": "FeatureCollection",
        "format": INVENTORY_FORMAT,
        "query": query,
        **({"stamp": stamp} if stamp is not None else {}),
        "features": [s.to_feature() for s in sorted(scenes, key=lambda s: s.start_time)],
    }
    write_json(path, collection)


DATES_COLUMNS = [
    "track",
    "date",
    "platform",
    "slices",
    "coverage",
    "used",
    "reason",
    "bytes",
    "granules",
]


def write_dates_table(acquisitions: Iterable[Acquisition], path: str | Path) -> None:
    rows = []
    for acq in sorted(acquisitions, key=lambda a: (a.track, a.date)):
        rows.append(
            {
                "track": acq.track,
                "date": acq.date,
                "platform": acq.platform,
                "slices": len(acq.slices),
                "coverage": f"{acq.coverage:.4f}",
                "used": "yes" if acq.used else "no",
                "reason": acq.reason,
                "bytes": acq.bytes,
                "granules": ";".join(acq.granules),
            }
        )
    _atomic_write_csv(Path(path), DATES_COLUMNS, rows)


def read_dates_table(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _atomic_write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


# --- filtering, grouping, coverage, track choice ----------------------------------------------


@dataclass(frozen=True)
class SceneFilter:
    """What the config asks for; applied to online and saved searches alike."""

    roi: Polygon | MultiPolygon
    start: dt.date
    end: dt.date
    polarization: str = "VV"
    flight_direction: str | None = None
    relative_orbits: tuple[int, ...] = ()

    def accepts(self, scene: Scene) -> bool:
        day = scene.start_time.date()
        if isinstance(scene, Burst):  # a burst counts where topsApp's crop would keep it
            meets = boxes_overlap(isce_box(scene.footprint, scene.flight_direction), self.roi.bounds)
        else:
            meets = scene.footprint.intersects(self.roi)
        return (
            self.start <= day <= self.end
            and meets
            and self.polarization in scene.polarization.split("+")
            and (self.flight_direction is None or scene.flight_direction == self.flight_direction)
            and (not self.relative_orbits or scene.path in self.relative_orbits)
        )


def deduplicate(scenes: Iterable[Scene]) -> list[Scene]:
    """One product per granule name (CMR can list reprocessed copies)."""
    unique: dict[str, Scene] = {}
    for scene in scenes:
        unique.setdefault(scene.granule, scene)
    return sorted(unique.values(), key=lambda s: s.start_time)


def group_acquisitions(scenes: Iterable[Scene]) -> list[Acquisition]:
    """Group slices by pass: same track and platform, start times chained within a few minutes."""
    by_key: dict[tuple[str, str], list[Scene]] = defaultdict(list)
    for scene in scenes:
        by_key[(scene.track, scene.platform)].append(scene)
    acquisitions = []
    for (track, _platform), members in by_key.items():
        members.sort(key=lambda s: s.start_time)
        current: list[Scene] = []
        for scene in members:
            # A pass over one area lasts minutes; the next pass of the track is days later.
            if current and (scene.start_time - current[-1].stop_time).total_seconds() > 600:
                acquisitions.append(Acquisition(track, current[0].date, current))
                current = []
            current.append(scene)
        if current:
            acquisitions.append(Acquisition(track, current[0].date, current))
    return sorted(acquisitions, key=lambda a: (a.track, a.date))


def roi_coverage(footprint: Polygon | MultiPolygon, roi: Polygon | MultiPolygon) -> float:
    """Fraction of the ROI's area inside the footprint (areas in degrees; fine for a ratio)."""
    if roi.area == 0:
        return 0.0
    return float(footprint.intersection(roi).area / roi.area)


def select_slices(acq: Acquisition, roi: Polygon | MultiPolygon) -> None:
    """Keep the contiguous run of slices that covers the ROI, trimmed to what adds coverage."""
    scenes = sorted(acq.scenes, key=lambda s: s.start_time)
    runs: list[list[Scene]] = [[scenes[0]]]
    for scene in scenes[1:]:
        gap = (scene.start_time - runs[-1][-1].stop_time).total_seconds()
        if gap > MAX_SLICE_GAP_S:
            runs.append([scene])
        else:
            runs[-1].append(scene)

    def cover(run: list[Scene]) -> float:
        return roi_coverage(shapely.union_all([s.footprint for s in run]), roi)

    best = max(runs, key=lambda run: (round(cover(run), 6), -len(run)))
    full = cover(best)
    # Trim slices at either end that add no ROI coverage: fewer bytes, and fewer IPF mixes.
    while len(best) > 1 and cover(best[1:]) >= full - 1e-9:
        best = best[1:]
    while len(best) > 1 and cover(best[:-1]) >= full - 1e-9:
        best = best[:-1]
    acq.scenes = best
    acq.coverage = full
    if len(runs) > 1:
        acq.reason = f"{len(scenes) - len(best)} slice(s) of this pass not contiguous with the rest"


def assess(
    acquisitions: list[Acquisition], roi: Polygon | MultiPolygon, min_coverage: float
) -> None:
    """Decide which acquisitions are usable; the reason of every rejection is kept."""
    for acq in acquisitions:
        select_slices(acq, roi)
        ipfs = {s.ipf for s in acq.scenes if s.ipf}
        if acq.coverage + 1e-9 < min_coverage:
            acq.used = False
            acq.reason = (
                f"slices cover {acq.coverage:.0%} of the ROI, below search.min_roi_coverage "
                f"{min_coverage:.0%}"
            )
        elif len(ipfs) > 1:
            acq.used = False
            acq.reason = (
                f"slices were processed with different IPF versions ({', '.join(sorted(ipfs))}); "
                "topsApp cannot stitch them"
            )
        else:
            acq.used = True


@dataclass
class TrackChoice:
    tracks: list[str]
    summary: dict[str, dict[str, Any]]


def choose_tracks(acquisitions: list[Acquisition], mode: str | list[str]) -> TrackChoice:
    """tracks: auto (most usable dates, then best mean coverage) | all | explicit list.

    Acquisitions of tracks not chosen are marked unused, with the reason.
    """
    summary: dict[str, dict[str, Any]] = {}
    for acq in acquisitions:
        entry = summary.setdefault(acq.track, {"dates": 0, "usable": 0, "coverage": 0.0})
        entry["dates"] += 1
        if acq.used:
            entry["usable"] += 1
            entry["coverage"] += acq.coverage
    for entry in summary.values():
        entry["mean_coverage"] = entry["coverage"] / entry["usable"] if entry["usable"] else 0.0
    if isinstance(mode, list):
        missing = [t for t in mode if t not in summary]
        if missing:
            raise DinsarError(
                f"search.tracks: no scenes found on track(s) {', '.join(missing)}; tracks found: "
                f"{', '.join(sorted(summary)) or 'none'}. Change search.tracks or the dates/ROI."
            )
        chosen = list(mode)
    elif mode == "all":
        chosen = sorted(t for t, e in summary.items() if e["usable"] >= 2)
    else:
        ranked = sorted(
            summary, key=lambda t: (summary[t]["usable"], summary[t]["mean_coverage"]), reverse=True
        )
        chosen = ranked[:1] if ranked and summary[ranked[0]]["usable"] else []
    for acq in acquisitions:
        if acq.track not in chosen and acq.used:
            acq.used = False
            acq.reason = f"track {acq.track} not selected (search.tracks: {mode})"
    return TrackChoice(chosen, summary)


def used_acquisitions(acquisitions: Iterable[Acquisition]) -> list[Acquisition]:
    return [a for a in acquisitions if a.used]
