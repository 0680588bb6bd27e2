"""Region of interest: parse a WKT polygon, a [W, S, E, N] bbox or a GeoJSON file, and validate it.

Bounding boxes are [W, S, E, N] (shapely ``bounds`` order) everywhere except when talking to
ISCE, which wants [S, N, W, E]; :func:`to_snwe` is the one place that converts.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import shapely
from shapely import wkt as shapely_wkt
from shapely.errors import ShapelyError
from shapely.geometry import MultiPolygon, Polygon, box, shape
from shapely.validation import explain_validity

from .errors import ConfigError

RoiSpec = str | Sequence[float]

_ALLOWED = "a WKT POLYGON/MULTIPOLYGON string, a [W, S, E, N] list, or a path to a .geojson file"


def parse_roi(spec: RoiSpec, key: str = "roi") -> Polygon | MultiPolygon:
    """Turn the config's ``roi`` value into a valid lon/lat (EPSG:4326) polygon.

    Raises ConfigError naming the key, the bad value and what is allowed.
    """
    if isinstance(spec, (list, tuple)):
        geom = _from_bbox(spec, key)
    elif isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise ConfigError(f"{key}: empty value; give {_ALLOWED}")
        if text.lower().endswith((".geojson", ".json")):
            geom = _from_geojson(Path(text), key)
        else:
            geom = _from_wkt(text, key)
    else:
        raise ConfigError(f"{key}: got {spec!r} ({type(spec).__name__}); give {_ALLOWED}")
    check_polygon(geom, key)
    return geom


def _from_bbox(values: Sequence[float], key: str) -> Polygon:
    if len(values) != 4 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise ConfigError(f"{key}: bbox {list(values)!r} must be 4 numbers [W, S, E, N] in degrees")
    west, south, east, north = (float(v) for v in values)
    if west >= east or south >= north:
        raise ConfigError(
            f"{key}: bbox {list(values)!r} is empty or inverted; use [W, S, E, N] with W < E and S < N"
        )
    return box(west, south, east, north)


# a bbox written as one string ("129.2, 42.2, 129.3, 42.3" or "[129.2 42.2 129.3 42.3]")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_BBOX_STRING = re.compile(rf"^\[?\s*{_NUMBER}(?:\s*[,\s]\s*{_NUMBER}){{3}}\s*\]?$")


def _from_wkt(text: str, key: str) -> Polygon | MultiPolygon:
    short = text if len(text) <= 80 else text[:77] + "..."
    if _BBOX_STRING.match(text):
        numbers = ", ".join(re.findall(_NUMBER, text))
        raise ConfigError(
            f"{key}: {short!r} is a string, not a bbox; write the bbox as a YAML list "
            f"[W, S, E, N] without quotes: `{key}: [{numbers}]`"
        )
    try:
        geom = shapely_wkt.loads(text)
    except (ShapelyError, ValueError) as exc:
        raise ConfigError(
            f"{key}: invalid WKT {short!r} ({str(exc).splitlines()[0]}); "
            "write e.g. 'POLYGON ((129.2 42.2, 129.3 42.2, 129.3 42.3, 129.2 42.3, 129.2 42.2))', "
            f"or a bbox as the YAML list [W, S, E, N]: `{key}: [129.2, 42.2, 129.3, 42.3]`"
        ) from None
    if not isinstance(geom, (Polygon, MultiPolygon)):
        raise ConfigError(f"{key}: WKT is a {geom.geom_type}, not a polygon; give {_ALLOWED}")
    return geom


def _from_geojson(path: Path, key: str) -> Polygon | MultiPolygon:
    if not path.is_file():
        raise ConfigError(f"{key}: GeoJSON file {str(path)!r} not found; check the path")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{key}: {str(path)!r} is not readable GeoJSON ({exc})") from None
    geometries = []
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        geometries = [f.get("geometry") for f in data.get("features", [])]
    elif isinstance(data, dict) and data.get("type") == "Feature":
        geometries = [data.get("geometry")]
    elif isinstance(data, dict):
        geometries = [data]
    try:
        shapes = [shape(g) for g in geometries if g]
    except (ShapelyError, ValueError, AttributeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{key}: {str(path)!r} holds an invalid geometry ({exc})") from None
    polygons = [s for s in shapes if isinstance(s, (Polygon, MultiPolygon))]
    if not polygons:
        raise ConfigError(f"{key}: {str(path)!r} contains no Polygon or MultiPolygon geometry")
    for geom in polygons:
        check_polygon(geom, key)
    return shapely.union_all(polygons)


# About 10 cm x 10 cm: anything smaller is no area to process (and a bbox of 1e-200 degrees
# would otherwise pass as width > 0 while its area underflows to exactly 0).
MIN_AREA_DEG2 = 1e-12


def check_polygon(geom: Polygon | MultiPolygon, key: str = "roi") -> None:
    """Reject self-intersections, zero area and coordinates outside lon/lat range."""
    if geom.is_empty:
        raise ConfigError(f"{key}: polygon is empty; give {_ALLOWED}")
    west, south, east, north = geom.bounds
    if west < -180 or east > 180 or south < -90 or north > 90:
        raise ConfigError(
            f"{key}: coordinates out of range (bounds W={west}, S={south}, E={east}, N={north}); "
            "use longitude -180..180 and latitude -90..90, in that order (lon lat)"
        )
    if geom.convex_hull.area < MIN_AREA_DEG2:
        raise ConfigError(
            f"{key}: polygon has zero area (its corners are collinear or repeated, or it is "
            f"smaller than {MIN_AREA_DEG2:g} square degrees); give at least 3 distinct, "
            "non-collinear corners"
        )
    if not geom.is_valid:
        raise ConfigError(
            f"{key}: polygon is not valid ({explain_validity(geom)}); "
            "fix the vertex order so edges do not cross (a self-intersecting 'bow-tie' is not allowed)"
        )


def to_snwe(bounds: Sequence[float]) -> list[float]:
    """[W, S, E, N] -> [S, N, W, E], the order ISCE's 'region of interest' and bboxes use."""
    west, south, east, north = bounds
    return [south, north, west, east]
