"""Emulation of NASA CMR's granule search over real recorded granule records.

Why: our search step must be tested against the *real* asf_search code, which builds CMR
queries itself (see ``asf_search/CMR/translate.py``). The emulator implements the part of
``/search/granules.umm_json`` that asf_search uses, by genuinely filtering, sorting and
paging recorded CMR records, so a wrong query (wrong ROI, dates, track, direction...)
returns a wrong answer, exactly as real CMR would. Anything it does not implement is
answered ``400 {"errors": [...]}`` instead of being silently ignored.

Supported request parameters (GET query string and/or POST form body; ``name`` and
``name[]`` are equivalent, camelCase is read as snake_case like CMR does):

==========================  =====================================================================
``page_size``               0..2000 (default 10)
``page_num`` / ``offset``   classic paging (not together, not with ``CMR-Search-After``)
``sort_key``                start_date, end_date, granule_ur, producer_granule_id,
                            readable_granule_name, short_name, version, provider, platform,
                            revision_date; ``-`` descending, ``+`` ascending
``provider``                meta provider-id
``short_name``              umm.CollectionReference.ShortName (``shortName`` from asf_search)
``version``                 umm.CollectionReference.Version
``concept_id``              granule or collection concept id;
``echo_granule_id``         granule concept id; ``collection_concept_id`` / ``echo_collection_id``
``granule_ur``              umm.GranuleUR (asf_search ``product_list``)
``producer_granule_id``     DataGranule ProducerGranuleId
``readable_granule_name``   GranuleUR or ProducerGranuleId (asf_search ``granule_list``)
``platform`` / ``instrument``  umm.Platforms[].ShortName / .Instruments[].ShortName
``attribute``               AdditionalAttributes: ``NAME``, ``type,NAME,value``,
                            ``type,NAME,min,max`` (open ends allowed); type string|int|float;
                            string values compare case-insensitively (as CMR)
``temporal``                ``start,end[,start_day[,end_day]]`` or ``start/end``; open ends;
                            overlap with TemporalExtent RangeDateTime/SingleDateTime
``bounding_box``            ``W,S,E,N`` (W > E crosses the antimeridian)
``polygon``                 ``lon,lat,...`` closed, counter-clockwise, not self-intersecting
``point`` / ``line``        ``lon,lat`` / ``lon,lat,lon,lat,...``
``circle``                  ``lon,lat,radius_m`` (10 m .. 6000 km, spherical approximation)
``orbit_number``            ``n`` or ``min,max`` against OrbitCalculatedSpatialDomains
``updated_since``           meta revision-date >= value
``pretty``                  indent the JSON
==========================  =====================================================================

Options (``options[param][key]=true|false``): ``ignore_case`` / ``pattern`` (``*``, ``?``) for
the string fields; ``and`` for platform/instrument/temporal (several temporal ranges are ORed
by default); ``or`` for attribute, each spatial type and ``spatial``; ``exclude_boundary``
for attribute/temporal;
``exclude_collection`` for attribute (no-op: no collection metadata is loaded).

Headers: ``CMR-Search-After`` (request and response, opaque JSON token: the sort values of
the last item, as CMR) is returned only while more results remain; ``CMR-Hits``,
``CMR-Took``, ``CMR-Request-Id`` on every reply. Body: ``{"hits", "took", "items":
[{"umm", "meta"}]}`` - the asf_search-derived ``properties``/``baseline``/``geometry`` of
the fixture files are not served (real CMR does not send them).

Known approximations: spatial tests are planar in lon/lat (CMR uses great-circle edges
for geodetic polygons) and footprints crossing the antimeridian are not split.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from shapely.geometry import LineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from shapely.validation import make_valid

from .server import Fault, FaultQueue, LocalHTTPSServer, Request, Response, Route

CMR_GRANULE_PATH = "/search/granules.umm_json"
UMM_JSON_CONTENT_TYPE = "application/vnd.nasa.cmr.umm_results+json;version=1.6.6; charset=utf-8"
STACK_FIXTURE = "S1A_IW_SLC__1SSV_20160528T141908_20160528T141938_011460_011746_335C_stack.yml"
MAX_PAGE_SIZE = 2000
DEFAULT_PAGE_SIZE = 10
DEFAULT_SORT: tuple[tuple[str, bool], ...] = (("provider", False), ("start_date", False))

Record = dict[str, Any]
RecordRewrite = Callable[[Record], Record | None]
Predicate = Callable[["Granule"], bool]

_STRING_OPTIONS = frozenset({"ignore_case", "pattern"})
_MULTI_STRING_OPTIONS = frozenset({"ignore_case", "pattern", "and"})
_SPATIAL_TYPES = ("bounding_box", "polygon", "point", "line", "circle")
SUPPORTED_OPTIONS: Mapping[str, frozenset[str]] = {
    "provider": _STRING_OPTIONS,
    "short_name": _STRING_OPTIONS,
    "version": _STRING_OPTIONS,
    "granule_ur": _STRING_OPTIONS,
    "producer_granule_id": _STRING_OPTIONS,
    "readable_granule_name": _STRING_OPTIONS,
    "platform": _MULTI_STRING_OPTIONS,
    "instrument": _MULTI_STRING_OPTIONS,
    "attribute": frozenset({"or", "exclude_boundary", "exclude_collection"}),
    "temporal": frozenset({"and", "exclude_boundary"}),
    "spatial": frozenset({"or"}),
    **{name: frozenset({"or"}) for name in _SPATIAL_TYPES},
}
_STRING_FIELDS: Mapping[str, Callable[[Granule], tuple[str | None, ...]]] = {
    "provider": lambda g: (g.provider,),
    "short_name": lambda g: (g.short_name,),
    "version": lambda g: (g.version,),
    "granule_ur": lambda g: (g.granule_ur,),
    "producer_granule_id": lambda g: (g.producer_granule_id,),
    "readable_granule_name": lambda g: (g.granule_ur, g.producer_granule_id),
    "platform": lambda g: g.platforms,
    "instrument": lambda g: g.instruments,
}
_ID_FIELDS: Mapping[str, Callable[[Granule], tuple[str | None, ...]]] = {
    "concept_id": lambda g: (g.concept_id, g.collection_concept_id),
    "echo_granule_id": lambda g: (g.concept_id,),
    "collection_concept_id": lambda g: (g.collection_concept_id,),
    "echo_collection_id": lambda g: (g.collection_concept_id,),
}
_SINGLE_VALUED = frozenset({"page_size", "page_num", "offset", "updated_since", "pretty"})


class CMRError(Exception):
    """A CMR-style client error: answered with ``status`` and ``{"errors": messages}``."""

    def __init__(self, messages: Sequence[str], status: int = 400) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)
        self.status = status


# --------------------------------------------------------------------------- records


@functools.lru_cache(maxsize=16)
def _load_cached(path: Path) -> tuple[Record, ...]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(text, Loader=loader)  # noqa: S506 - safe loaders only
    records = [data] if isinstance(data, dict) else list(data)
    for index, record in enumerate(records):
        if not isinstance(record, dict) or "umm" not in record or "meta" not in record:
            raise ValueError(f"{path}: item {index} is not a CMR record with 'umm' and 'meta'")
    return tuple(records)


def load_records(*paths: Path) -> list[Record]:
    """Read recorded CMR granule records from JSON or YAML fixture files (list or single).

    Parsed files are cached for the session; treat the returned dicts as read-only.
    """
    records: list[Record] = []
    for path in paths:
        records.extend(_load_cached(Path(path).resolve()))
    return records


def parse_datetime(text: str) -> datetime:
    """ISO 8601 date/time as an aware UTC datetime (naive input is taken as UTC)."""
    value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _epoch_ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _dig(data: Any, *keys: Any) -> Any:
    for key in keys:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def footprint(umm: Mapping[str, Any]) -> BaseGeometry | None:
    """Shapely geometry of a UMM-G HorizontalSpatialDomain (polygons, boxes, points, lines)."""
    geometry = _dig(umm, "SpatialExtent", "HorizontalSpatialDomain", "Geometry") or {}
    parts: list[BaseGeometry] = []
    for polygon in geometry.get("GPolygons", []):
        ring = [(p["Longitude"], p["Latitude"]) for p in _dig(polygon, "Boundary", "Points") or []]
        if len(ring) >= 3:
            parts.append(make_valid(Polygon(ring)))
    for rect in geometry.get("BoundingRectangles", []):
        parts.append(
            box(
                rect["WestBoundingCoordinate"],
                rect["SouthBoundingCoordinate"],
                rect["EastBoundingCoordinate"],
                rect["NorthBoundingCoordinate"],
            )
        )
    for point in geometry.get("Points", []):
        parts.append(Point(point["Longitude"], point["Latitude"]))
    for line in geometry.get("Lines", []):
        parts.append(LineString([(p["Longitude"], p["Latitude"]) for p in line.get("Points", [])]))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else unary_union(parts)


@dataclass(frozen=True)
class Granule:
    """A record plus the searchable fields extracted from it once."""

    record: Record
    concept_id: str
    collection_concept_id: str | None
    provider: str | None
    revision_date: datetime | None
    granule_ur: str | None
    producer_granule_id: str | None
    short_name: str | None
    version: str | None
    platforms: tuple[str, ...]
    instruments: tuple[str, ...]
    begin: datetime | None
    end: datetime | None
    footprint: BaseGeometry | None
    attributes: Mapping[str, tuple[str, ...]]
    orbit_numbers: tuple[float, ...]

    @classmethod
    def from_record(cls, record: Record) -> Granule:
        """Index one CMR record (``{"umm": ..., "meta": ...}``)."""
        umm, meta = record["umm"], record["meta"]
        temporal = umm.get("TemporalExtent") or {}
        single = temporal.get("SingleDateTime")
        begin_text = _dig(temporal, "RangeDateTime", "BeginningDateTime") or single
        end_text = _dig(temporal, "RangeDateTime", "EndingDateTime") or single
        identifiers = _dig(umm, "DataGranule", "Identifiers") or []
        producer = next(
            (
                i.get("Identifier")
                for i in identifiers
                if i.get("IdentifierType") == "ProducerGranuleId"
            ),
            None,
        )
        platforms = umm.get("Platforms") or []
        return cls(
            record=record,
            concept_id=meta["concept-id"],
            collection_concept_id=meta.get("collection-concept-id"),
            provider=meta.get("provider-id"),
            revision_date=parse_datetime(meta["revision-date"])
            if meta.get("revision-date")
            else None,
            granule_ur=umm.get("GranuleUR"),
            producer_granule_id=producer,
            short_name=_dig(umm, "CollectionReference", "ShortName"),
            version=_dig(umm, "CollectionReference", "Version"),
            platforms=tuple(p["ShortName"] for p in platforms if "ShortName" in p),
            instruments=tuple(
                i["ShortName"]
                for p in platforms
                for i in p.get("Instruments", [])
                if "ShortName" in i
            ),
            begin=parse_datetime(begin_text) if begin_text else None,
            end=parse_datetime(end_text) if end_text else None,
            footprint=footprint(umm),
            attributes={
                a["Name"]: tuple(str(v) for v in a.get("Values", []))
                for a in umm.get("AdditionalAttributes", [])
            },
            orbit_numbers=tuple(
                float(o["OrbitNumber"])
                for o in umm.get("OrbitCalculatedSpatialDomains", [])
                if o.get("OrbitNumber") is not None
            ),
        )


# --------------------------------------------------------------------------- parsing


def normalize_name(raw: str) -> str:
    """``shortName[]`` -> ``short_name`` (CMR reads camelCase and ``[]`` forms alike)."""
    name = raw[:-2] if raw.endswith("[]") else raw
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


@dataclass
class ParsedParams:
    """Request parameters grouped by normalized name, plus ``options[...]`` flags."""

    values: dict[str, list[str]] = field(default_factory=dict)
    options: dict[str, dict[str, bool]] = field(default_factory=dict)

    def option(self, param: str, key: str, default: bool = False) -> bool:
        """The boolean ``options[param][key]``."""
        return self.options.get(param, {}).get(key, default)


_OPTION_RE = re.compile(r"options\[([^\]]+)\]\[([^\]]+)\]")


def group_params(pairs: Iterable[tuple[str, str]]) -> ParsedParams:
    """Group raw pairs; reject unknown parameters/options like CMR does (all at once)."""
    parsed = ParsedParams()
    errors: list[str] = []
    for raw_name, value in pairs:
        option = _OPTION_RE.fullmatch(raw_name)
        if option:
            param, key = normalize_name(option.group(1)), option.group(2)
            if key not in SUPPORTED_OPTIONS.get(param, frozenset()):
                errors.append(f"Parameter [{param}] with option [{key}] was not recognized.")
            elif value.lower() not in ("true", "false"):
                errors.append(
                    f"Option [{key}] for param [{param}] must be true or false, was [{value}]."
                )
            else:
                parsed.options.setdefault(param, {})[key] = value.lower() == "true"
            continue
        name = normalize_name(raw_name)
        if name not in _KNOWN_PARAMS:
            errors.append(f"Parameter [{name}] was not recognized.")
            continue
        parsed.values.setdefault(name, []).append(value)
    for name in _SINGLE_VALUED & parsed.values.keys():
        if len(parsed.values[name]) > 1:
            errors.append(f"Parameter [{name}] must have a single value.")
    if errors:
        raise CMRError(errors)
    return parsed


def _floats(text: str, what: str, count: int | None = None) -> list[float]:
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        raise CMRError([f"[{text}] is not a valid URL encoded {what}"]) from None
    if any(math.isnan(n) or math.isinf(n) for n in numbers) or (
        count is not None and len(numbers) != count
    ):
        raise CMRError([f"[{text}] is not a valid URL encoded {what}"])
    return numbers


def _check_lon_lat(points: Sequence[tuple[float, float]]) -> None:
    errors = []
    for index, (lon, lat) in enumerate(points):
        if not -180 <= lon <= 180:
            errors.append(
                f"Point {index + 1} had the following error: Point longitude [{lon}] must be within -180.0 and 180.0"
            )
        if not -90 <= lat <= 90:
            errors.append(
                f"Point {index + 1} had the following error: Point latitude [{lat}] must be within -90 and 90.0"
            )
    if errors:
        raise CMRError(errors)


def _pairs(numbers: Sequence[float]) -> list[tuple[float, float]]:
    return list(zip(numbers[0::2], numbers[1::2], strict=True))


def parse_bounding_box(text: str) -> BaseGeometry:
    """``W,S,E,N``; a box with W > E wraps across the antimeridian."""
    west, south, east, north = _floats(text, "bounding_box", 4)
    _check_lon_lat([(west, south), (east, north)])
    if north < south:
        raise CMRError(
            [
                f"The bounding rectangle north value [{north}] was less than the south value [{south}]"
            ]
        )
    if west > east:
        return unary_union([box(west, south, 180, north), box(-180, south, east, north)])
    return box(west, south, east, north)


def parse_polygon(text: str) -> BaseGeometry:
    """Closed, counter-clockwise ring of ``lon,lat`` pairs (CMR's rules)."""
    numbers = _floats(text, "polygon")
    if len(numbers) % 2 or len(numbers) < 8:
        raise CMRError([f"[{text}] is not a valid URL encoded polygon"])
    points = _pairs(numbers)
    _check_lon_lat(points)
    if points[0] != points[-1]:
        raise CMRError(
            ["Polygon boundary was not closed. The last point must be equal to the first point."]
        )
    polygon = Polygon(points)
    if not polygon.exterior.is_ccw:
        raise CMRError(
            [
                "The polygon boundary points are listed in the wrong order. Points must be provided in counter-clockwise order."
            ]
        )
    if not polygon.is_valid:
        raise CMRError(["The polygon boundary intersected itself."])
    return polygon


def parse_point(text: str) -> BaseGeometry:
    """``lon,lat``."""
    lon, lat = _floats(text, "point", 2)
    _check_lon_lat([(lon, lat)])
    return Point(lon, lat)


def parse_line(text: str) -> BaseGeometry:
    """``lon,lat,lon,lat,...`` with at least two points."""
    numbers = _floats(text, "line")
    if len(numbers) % 2 or len(numbers) < 4:
        raise CMRError([f"[{text}] is not a valid URL encoded line"])
    points = _pairs(numbers)
    _check_lon_lat(points)
    return LineString(points)


def parse_circle(text: str) -> BaseGeometry:
    """``lon,lat,radius_m`` as a 64-gon on a sphere (CMR: 10 m <= radius <= 6000 km)."""
    lon, lat, radius = _floats(text, "circle", 3)
    _check_lon_lat([(lon, lat)])
    if not 10 <= radius <= 6_000_000:
        raise CMRError([f"Circle radius [{radius}] must be between 10 and 6000000."])
    distance = radius / 6_371_008.8
    phi1, lam1 = math.radians(lat), math.radians(lon)
    ring = []
    for step in range(64):
        bearing = 2 * math.pi * step / 64
        phi2 = math.asin(
            math.sin(phi1) * math.cos(distance)
            + math.cos(phi1) * math.sin(distance) * math.cos(bearing)
        )
        lam2 = lam1 + math.atan2(
            math.sin(bearing) * math.sin(distance) * math.cos(phi1),
            math.cos(distance) - math.sin(phi1) * math.sin(phi2),
        )
        ring.append((math.degrees(lam2), math.degrees(phi2)))
    return Polygon(ring)


_SPATIAL_PARSERS: Mapping[str, Callable[[str], BaseGeometry]] = {
    "bounding_box": parse_bounding_box,
    "polygon": parse_polygon,
    "point": parse_point,
    "line": parse_line,
    "circle": parse_circle,
}


@dataclass(frozen=True)
class TemporalRange:
    """One ``temporal`` value: bounds (None = open) and an optional day-of-year window."""

    start: datetime | None
    end: datetime | None
    start_day: int | None = None
    end_day: int | None = None

    @classmethod
    def parse(cls, text: str) -> TemporalRange:
        """``start,end[,start_day[,end_day]]`` or ISO ``start/end`` (one side may be empty)."""
        iso_interval = "/" in text and "," not in text
        parts = text.split("/") if iso_interval else text.split(",")
        if len(parts) < 2 or len(parts) > (2 if iso_interval else 4):
            raise CMRError([f"temporal [{text}] is not a valid temporal range"])
        try:
            start = parse_datetime(parts[0]) if parts[0].strip() else None
            end = parse_datetime(parts[1]) if parts[1].strip() else None
            days = [int(p) if p.strip() else None for p in parts[2:]]
        except ValueError:
            raise CMRError(
                [
                    f"temporal [{text}] is not a valid temporal range (only datetimes are supported, not durations)"
                ]
            ) from None
        if start is None and end is None:
            raise CMRError([f"temporal [{text}] must have a start or an end"])
        if start is not None and end is not None and start > end:
            raise CMRError([f"temporal [{text}]: start must be before end"])
        start_day = days[0] if days else None
        end_day = days[1] if len(days) > 1 else None
        for day in (start_day, end_day):
            if day is not None and not 1 <= day <= 366:
                raise CMRError([f"temporal [{text}]: day of year must be within 1..366"])
        return cls(start, end, start_day, end_day)

    def windows(self, begin: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The time windows a granule must overlap (several for a periodic range)."""
        low = self.start or datetime.min.replace(tzinfo=UTC)
        high = self.end or datetime.max.replace(tzinfo=UTC)
        if self.start_day is None and self.end_day is None:
            return [(low, high)]
        first_day, last_day = self.start_day or 1, self.end_day or 366
        years = range(max(max(low, begin).year - 1, 1), min(min(high, end).year, 9998) + 1)
        result = []
        for year in years:
            jan1 = datetime(year, 1, 1, tzinfo=UTC)
            window_start = jan1 + timedelta(days=first_day - 1)
            stop_year = jan1 if first_day <= last_day else datetime(year + 1, 1, 1, tzinfo=UTC)
            window_end = stop_year + timedelta(days=last_day) - timedelta(microseconds=1)
            result.append((max(window_start, low), min(window_end, high)))
        return [(a, b) for a, b in result if a <= b]

    def matches(self, granule: Granule, exclude_boundary: bool) -> bool:
        """Whether the granule's time span overlaps this range."""
        if granule.begin is None:
            return False
        begin = granule.begin
        end = granule.end or datetime.max.replace(tzinfo=UTC)
        for low, high in self.windows(begin, end):
            if exclude_boundary and begin < high and end > low:
                return True
            if not exclude_boundary and begin <= high and end >= low:
                return True
        return False


@dataclass(frozen=True)
class AttributeCondition:
    """One ``attribute[]`` value: ``NAME`` | ``type,NAME,value`` | ``type,NAME,min,max``."""

    name: str
    type: str | None = None
    value: Any = None
    minimum: Any = None
    maximum: Any = None
    is_range: bool = False

    @classmethod
    def parse(cls, text: str) -> AttributeCondition:
        """Split on unescaped commas (``\\,`` is a literal comma), like CMR."""
        parts = [p.replace("\0", ",") or None for p in text.replace("\\,", "\0").split(",", 4)]
        if len(parts) == 1 and parts[0]:
            return cls(name=parts[0])
        if len(parts) not in (3, 4) or not parts[1]:
            raise CMRError(
                [
                    f"Invalid additional attribute [{text}]: expected NAME, type,NAME,value or type,NAME,min,max"
                ]
            )
        kind = (parts[0] or "").lower()
        if kind in ("date", "time", "datetime"):
            raise CMRError([f"attribute type [{kind}] is not supported by the CMR emulator"])
        if kind not in ("string", "int", "float"):
            raise CMRError([f"[{parts[0]}] is an invalid type"])
        convert = _attribute_converter(kind)
        try:
            if len(parts) == 3:
                if parts[2] is None:
                    raise ValueError
                return cls(name=parts[1], type=kind, value=convert(parts[2]))
            if parts[2] is None and parts[3] is None:
                raise CMRError(
                    [f"Invalid additional attribute [{text}]: one of min or max is required"]
                )
            low = None if parts[2] is None else convert(parts[2])
            high = None if parts[3] is None else convert(parts[3])
        except ValueError:
            raise CMRError([f"Invalid value in [{text}] for type [{kind}]"]) from None
        return cls(name=parts[1], type=kind, minimum=low, maximum=high, is_range=True)

    def matches(self, granule: Granule, exclude_boundary: bool) -> bool:
        """Whether any of the record's values for this attribute satisfies the condition."""
        values = granule.attributes.get(self.name)
        if values is None:
            return False
        if self.type is None:
            return True
        convert = _attribute_converter(self.type)
        for raw in values:
            try:
                value = convert(raw)
            except ValueError:
                continue
            if self._accepts(value, exclude_boundary):
                return True
        return False

    def _accepts(self, value: Any, exclude_boundary: bool) -> bool:
        if not self.is_range:
            return value == self.value
        if self.minimum is not None:
            if value < self.minimum or (exclude_boundary and value == self.minimum):
                return False
        if self.maximum is not None:
            if value > self.maximum or (exclude_boundary and value == self.maximum):
                return False
        return True


def _attribute_converter(kind: str) -> Callable[[str], Any]:
    if kind == "int":
        return lambda text: int(text.strip())
    if kind == "float":
        return lambda text: float(text.strip())
    return lambda text: text.lower()


def _string_matcher(name: str, wanted: list[str], params: ParsedParams) -> Predicate:
    ignore_case = params.option(name, "ignore_case", True)
    pattern = params.option(name, "pattern", False)
    require_all = params.option(name, "and", False)

    def normal(text: str) -> str:
        return text.lower() if ignore_case else text

    # exact values are matched as fully-escaped patterns, so one code path serves both
    regexes = [
        re.compile(fnmatch.translate(normal(w)) if pattern else re.escape(normal(w)) + r"\Z")
        for w in wanted
    ]
    getter = _STRING_FIELDS[name]

    def predicate(granule: Granule) -> bool:
        targets = [normal(t) for t in getter(granule) if t is not None]
        hits = [any(regex.match(t) for t in targets) for regex in regexes]
        return all(hits) if require_all else any(hits)

    return predicate


def _id_matcher(name: str, wanted: list[str]) -> Predicate:
    getter, wanted_set = _ID_FIELDS[name], set(wanted)
    return lambda granule: any(value in wanted_set for value in getter(granule))


def _orbit_matcher(values: list[str]) -> Predicate:
    ranges = []
    for text in values:
        numbers = _floats(text, "orbit_number")
        if len(numbers) not in (1, 2):
            raise CMRError([f"orbit_number [{text}] must be a number or a min,max range"])
        ranges.append((numbers[0], numbers[-1]))
    return lambda g: any(lo <= n <= hi for n in g.orbit_numbers for lo, hi in ranges)


def _updated_since_matcher(values: list[str]) -> Predicate:
    try:
        since = parse_datetime(values[0])
    except ValueError:
        raise CMRError([f"updated_since [{values[0]}] is not a valid datetime"]) from None
    return lambda g: g.revision_date is not None and g.revision_date >= since


def _spatial_predicate(params: ParsedParams) -> Predicate | None:
    per_type: list[tuple[list[BaseGeometry], bool]] = []
    for name in _SPATIAL_TYPES:
        if name in params.values:
            shapes = [_SPATIAL_PARSERS[name](text) for text in params.values[name]]
            per_type.append((shapes, params.option(name, "or")))
    if not per_type:
        return None
    any_type = params.option("spatial", "or")

    def predicate(granule: Granule) -> bool:
        if granule.footprint is None:
            return False
        results = [
            (any if use_or else all)(shape.intersects(granule.footprint) for shape in shapes)
            for shapes, use_or in per_type
        ]
        return any(results) if any_type else all(results)

    return predicate


def _temporal_predicate(params: ParsedParams) -> Predicate | None:
    if "temporal" not in params.values:
        return None
    ranges = [TemporalRange.parse(text) for text in params.values["temporal"]]
    exclude = params.option("temporal", "exclude_boundary")
    # several temporal ranges are ORed unless options[temporal][and]=true
    combine = all if params.option("temporal", "and") else any
    return lambda g: combine(r.matches(g, exclude) for r in ranges)


def _attribute_predicate(params: ParsedParams) -> Predicate | None:
    if "attribute" not in params.values:
        return None
    conditions = [AttributeCondition.parse(text) for text in params.values["attribute"]]
    exclude = params.option("attribute", "exclude_boundary")
    combine = any if params.option("attribute", "or") else all
    return lambda g: combine(c.matches(g, exclude) for c in conditions)


# --------------------------------------------------------------------------- sorting

_SORT_FIELDS: Mapping[str, Callable[[Granule], Any]] = {
    "start_date": lambda g: _epoch_ms(g.begin),
    "end_date": lambda g: _epoch_ms(g.end),
    "granule_ur": lambda g: g.granule_ur.lower() if g.granule_ur else None,
    "producer_granule_id": lambda g: (
        g.producer_granule_id.lower() if g.producer_granule_id else None
    ),
    "readable_granule_name": lambda g: (
        (g.producer_granule_id or g.granule_ur or "").lower() or None
    ),
    "short_name": lambda g: g.short_name.lower() if g.short_name else None,
    "version": lambda g: g.version,
    "provider": lambda g: g.provider.lower() if g.provider else None,
    "platform": lambda g: g.platforms[0].lower() if g.platforms else None,
    "revision_date": lambda g: _epoch_ms(g.revision_date),
}


def parse_sort_keys(values: list[str]) -> list[tuple[str, bool]]:
    """``["-end_date", "granule_ur"]`` -> ``[("end_date", True), ("granule_ur", False)]``."""
    keys, errors = [], []
    for raw in values:
        text = raw.strip()  # a literal '+' arrives as ' ' when not URL-encoded
        descending = text.startswith("-")
        name = text.lstrip("+-").strip()
        if name not in _SORT_FIELDS:
            errors.append(f"The sort key [{name}] is not a valid field for sorting granules.")
        keys.append((name, descending))
    if errors:
        raise CMRError(errors)
    return keys


def _compare(left: list[Any], right: list[Any], directions: Sequence[bool]) -> int:
    """Compare sort-value lists; missing values sort last whatever the direction (like ES)."""
    for a, b, descending in zip(left, right, directions, strict=True):
        if a == b:
            continue
        if a is None:
            return 1
        if b is None:
            return -1
        if type(a) is not type(b):
            a, b = str(a), str(b)
        order = -1 if a < b else 1
        return -order if descending else order
    return 0


# --------------------------------------------------------------------------- search


@dataclass(frozen=True)
class SearchResult:
    """One page: total ``hits``, the page's granules and the next search-after token."""

    hits: int
    granules: list[Granule]
    search_after: str | None
    pretty: bool = False


@dataclass(frozen=True)
class ReceivedQuery:
    """What the emulator was asked (for tests asserting on what the client sent)."""

    method: str
    params: list[tuple[str, str]]
    search_after: str | None
    status: int
    hits: int | None = None
    returned: int | None = None


_KNOWN_PARAMS = frozenset(
    {
        "page_size",
        "page_num",
        "offset",
        "sort_key",
        "updated_since",
        "pretty",
        "temporal",
        "attribute",
        "orbit_number",
        *_STRING_FIELDS,
        *_ID_FIELDS,
        *_SPATIAL_TYPES,
    }
)


def _int_param(
    params: ParsedParams, name: str, low: int, high: int | None, default: int | None
) -> int | None:
    if name not in params.values:
        return default
    text = params.values[name][0]
    bound = f"between {low} and {high}" if high is not None else f"greater than or equal to {low}"
    try:
        value = int(text)
    except ValueError:
        raise CMRError([f"{name} must be a number {bound}"]) from None
    if value < low or (high is not None and value > high):
        raise CMRError([f"{name} must be a number {bound}"])
    return value


def build_predicates(params: ParsedParams) -> list[Predicate]:
    """All filters of a query, collecting every error before failing (CMR lists them all)."""
    predicates: list[Predicate] = []
    errors: list[str] = []
    builders: list[Callable[[], Predicate | None]] = [
        functools.partial(_spatial_predicate, params),
        functools.partial(_temporal_predicate, params),
        functools.partial(_attribute_predicate, params),
    ]
    for name, values in params.values.items():
        if name in _STRING_FIELDS:
            builders.append(functools.partial(_string_matcher, name, values, params))
        elif name in _ID_FIELDS:
            builders.append(functools.partial(_id_matcher, name, values))
        elif name == "orbit_number":
            builders.append(functools.partial(_orbit_matcher, values))
        elif name == "updated_since":
            builders.append(functools.partial(_updated_since_matcher, values))
    for build in builders:
        try:
            predicate = build()
        except CMRError as error:
            errors.extend(error.messages)
            continue
        if predicate is not None:
            predicates.append(predicate)
    if errors:
        raise CMRError(errors)
    return predicates


def search(
    granules: Sequence[Granule], pairs: Iterable[tuple[str, str]], search_after: str | None = None
) -> SearchResult:
    """Run one CMR granule query (a page of it) over ``granules``."""
    params = group_params(pairs)
    page_size = _int_param(params, "page_size", 0, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE)
    page_num = _int_param(params, "page_num", 1, None, None)
    offset = _int_param(params, "offset", 0, None, None)
    assert page_size is not None
    if page_num is not None and offset is not None:
        raise CMRError(["Only one of offset or page-num may be specified"])
    if search_after and (page_num is not None or offset is not None):
        raise CMRError(["page_num and offset are not allowed with the CMR-Search-After header"])
    pretty = params.values.get("pretty", ["false"])[0].lower() == "true"
    sort_keys = (
        parse_sort_keys(params.values["sort_key"])
        if "sort_key" in params.values
        else list(DEFAULT_SORT)
    )
    predicates = build_predicates(params)

    matched = [g for g in granules if all(p(g) for p in predicates)]
    directions = [descending for _, descending in sort_keys] + [False]

    def sort_values(granule: Granule) -> list[Any]:
        return [_SORT_FIELDS[name](granule) for name, _ in sort_keys] + [granule.concept_id]

    keyed = sorted(
        ((sort_values(g), g) for g in matched),
        key=functools.cmp_to_key(lambda a, b: _compare(a[0], b[0], directions)),
    )
    if search_after:
        token = _decode_token(search_after, len(directions))
        start = next(
            (i for i, (values, _) in enumerate(keyed) if _compare(values, token, directions) > 0),
            len(keyed),
        )
    else:
        start = offset if offset is not None else ((page_num or 1) - 1) * page_size
    page = keyed[start : start + page_size]
    more = bool(page) and start + len(page) < len(keyed)
    token_out = json.dumps(page[-1][0]) if more else None
    return SearchResult(len(keyed), [g for _, g in page], token_out, pretty)


def _decode_token(text: str, length: int) -> list[Any]:
    try:
        token = json.loads(text)
    except json.JSONDecodeError:
        token = None
    if not isinstance(token, list) or len(token) != length:
        raise CMRError([f"The CMR-Search-After header value [{text}] is invalid for this query"])
    return token


def error_response(status: int, messages: Sequence[str] | None = None) -> Response:
    """CMR-style error reply: ``{"errors": [...]}`` (asf_search reads ``errors`` on failure)."""
    default = f"emulated CMR failure (HTTP {status})"
    body = json.dumps({"errors": list(messages or [default])}).encode("utf-8")
    return Response(
        status, body, [("Content-Type", "application/json"), ("CMR-Request-Id", str(uuid.uuid4()))]
    )


# --------------------------------------------------------------------------- emulator


class CMREmulator:
    """CMR granule search mounted on a :class:`LocalHTTPSServer`.

    ``host`` is what asf_search takes as ``host=`` (and our config as ``search.host``).
    ``prefix`` mounts a second, independent emulator on the same server
    (``host`` then includes the prefix, which asf_search simply prepends to the path).
    """

    def __init__(
        self, server: LocalHTTPSServer, records: Iterable[Record] = (), *, prefix: str = ""
    ) -> None:
        self._server = server
        self._prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self._lock = threading.Lock()
        self._default: tuple[Granule, ...] = self._index(records)
        self._granules = self._default
        self._received: list[ReceivedQuery] = []
        self.faults = FaultQueue()
        self.rewrite: RecordRewrite | None = None
        pattern = re.compile(re.escape(self._prefix + CMR_GRANULE_PATH) + r"(?:_v[0-9_]+)?")
        self._route: Route = server.add_route(
            ("GET", "POST"), pattern, self._handle, name="cmr.granules"
        )

    # -- configuration --------------------------------------------------------------
    @property
    def host(self) -> str:
        """``127.0.0.1:PORT[/prefix]`` for asf_search ``host=``."""
        return self._server.host + self._prefix

    @property
    def url(self) -> str:
        """Full granule search URL."""
        return f"https://{self.host}{CMR_GRANULE_PATH}"

    @property
    def records(self) -> list[Record]:
        """Records currently searchable (as loaded, incl. fixture-only keys; read-only)."""
        return [g.record for g in self._granules]

    def set_records(self, records: Iterable[Record]) -> None:
        """Replace the searchable records until the next :meth:`reset`."""
        self._granules = self._index(records)

    def reset(self) -> None:
        """Back to the default records; clear faults, rewrite hook and the received-queries log."""
        self.faults.clear()
        self.rewrite = None
        self._granules = self._default
        with self._lock:
            self._received.clear()

    def close(self) -> None:
        """Unregister from the server."""
        self.faults.clear()
        self._route.remove()

    @staticmethod
    def _index(records: Iterable[Record]) -> tuple[Granule, ...]:
        granules = tuple(Granule.from_record(record) for record in records)
        ids = [g.concept_id for g in granules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate granule concept ids: {duplicates[:5]}")
        return granules

    # -- fault hooks ----------------------------------------------------------------
    def fail_next(
        self, status: int = 503, times: int = 1, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """The next ``times`` requests get ``status`` with a CMR-style error body."""
        self.faults.push(Fault(status=status, headers=tuple(headers)), times)

    def drop_next(self, times: int = 1, *, reset: bool = True) -> None:
        """The next ``times`` requests get their connection cut without a response."""
        self.faults.push(Fault(drop=True, reset=reset), times)

    def delay_next(self, seconds: float, times: int = 1, *, status: int | None = None) -> None:
        """The next ``times`` requests hang ``seconds`` first (client timeouts); ``reset()`` ends hangs."""
        self.faults.push(Fault(delay=seconds, status=status), times)

    # -- observation ----------------------------------------------------------------
    @property
    def received(self) -> list[ReceivedQuery]:
        """Queries answered since the last reset (faulted ones included, dropped ones not)."""
        with self._lock:
            return list(self._received)

    def search(
        self, pairs: Iterable[tuple[str, str]], search_after: str | None = None
    ) -> SearchResult:
        """Run a query directly (no HTTP) - handy to compute expectations in tests."""
        return search(self._granules, pairs, search_after)

    # -- HTTP -----------------------------------------------------------------------
    def _remember(
        self,
        request: Request,
        pairs: list[tuple[str, str]],
        status: int,
        result: SearchResult | None = None,
    ) -> None:
        entry = ReceivedQuery(
            method=request.method,
            params=pairs,
            search_after=request.header("CMR-Search-After"),
            status=status,
            hits=None if result is None else result.hits,
            returned=None if result is None else len(result.granules),
        )
        with self._lock:
            self._received.append(entry)

    def _handle(self, request: Request) -> Response:
        started = time.perf_counter()
        pairs = request.params()
        faulted = self.faults.next_response(error_response)
        if faulted is not None:
            self._remember(request, pairs, faulted.status)
            return faulted
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if (
            request.method == "POST"
            and request.body
            and content_type != "application/x-www-form-urlencoded"
        ):
            self._remember(request, pairs, 400)
            return error_response(
                400,
                [f"The CMR emulator only supports form-encoded POST bodies, got [{content_type}]"],
            )
        if request.header("CMR-Scroll-Id"):
            self._remember(request, pairs, 400)
            return error_response(
                400,
                [
                    "CMR-Scroll-Id (scrolling) is not supported by the CMR emulator; use CMR-Search-After"
                ],
            )
        try:
            result = self.search(pairs, request.header("CMR-Search-After"))
        except CMRError as error:
            self._remember(request, pairs, error.status)
            return error_response(error.status, error.messages)
        items = [self._serve(g.record) for g in result.granules]
        took = int((time.perf_counter() - started) * 1000)
        body = json.dumps(
            {"hits": result.hits, "took": took, "items": items}, indent=2 if result.pretty else None
        )
        headers = [
            ("Content-Type", UMM_JSON_CONTENT_TYPE),
            ("CMR-Hits", str(result.hits)),
            ("CMR-Took", str(took)),
            ("CMR-Request-Id", str(uuid.uuid4())),
        ]
        if result.search_after is not None:
            headers.append(("CMR-Search-After", result.search_after))
        self._remember(request, pairs, 200, result)
        return Response(200, body.encode("utf-8"), headers)

    def _serve(self, record: Record) -> Record:
        """Only ``umm`` + ``meta`` (as CMR); the rewrite hook sees a private deep copy."""
        item = {"umm": record["umm"], "meta": record["meta"]}
        rewrite = self.rewrite
        if rewrite is None:
            return item
        item = copy.deepcopy(item)
        replaced = rewrite(item)
        return item if replaced is None else replaced


__all__ = [
    "CMR_GRANULE_PATH",
    "STACK_FIXTURE",
    "CMREmulator",
    "CMRError",
    "Granule",
    "ReceivedQuery",
    "SearchResult",
    "footprint",
    "load_records",
    "parse_datetime",
    "search",
]
