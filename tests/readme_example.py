"""The README's example (config/roi.yaml: the seed's Tumen river area, 2025-12-20..2026-01-10)
as a saved search, for planning it offline.

No recorded search covers that area and window, so three consecutive real path-13 records
(2021-11-28, -12-10, -12-22) are moved there: footprints translated so the area sits where the
test area sits in them, times shifted by whole days (names and URLs follow). The first date
falls before the window and must be left out; the other two make one pair.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import yaml

from fixture_scenes import asf_products, stack_records

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = yaml.safe_load((REPO / "config" / "roi.yaml").read_text())
SOURCE_DATES = ("2021-11-28", "2021-12-10", "2021-12-22")
SHIFT = dt.date(2025, 12, 22) - dt.date(2021, 12, 10)
EXPECTED_DATES = ["20251222", "20260103"]
# test area centre (-121.0, 54.65) -> the example's centre (129.25, 42.25)
DLON, DLAT = 129.25 - -121.0, 42.25 - 54.65


def _moved(text: str, old: dt.date) -> str:
    new = old + SHIFT
    return text.replace(old.strftime("%Y%m%d"), new.strftime("%Y%m%d")).replace(
        old.isoformat(), new.isoformat()
    )


def write_example_search(shared_dir: Path, path: Path) -> Path:
    """An asf_search GeoJSON export (results.geojson()) over the README's example area."""
    import asf_search as asf

    records = [r for r in stack_records(shared_dir)
               if r["umm"]["TemporalExtent"]["RangeDateTime"]["BeginningDateTime"][:10]
               in SOURCE_DATES]  # fmt: skip
    assert len(records) == len(SOURCE_DATES), "the recorded stack changed"
    exported = asf.ASFSearchResults(asf_products(records)).geojson()
    for feature in exported["features"]:
        props: dict[str, Any] = feature["properties"]
        day = dt.date.fromisoformat(props["startTime"][:10])
        for key, value in list(props.items()):
            if isinstance(value, str):
                props[key] = _moved(value, day)
            elif isinstance(value, list):
                props[key] = [_moved(v, day) if isinstance(v, str) else v for v in value]
        feature["geometry"]["coordinates"] = [
            [[lon + DLON, lat + DLAT] for lon, lat in ring]
            for ring in feature["geometry"]["coordinates"]
        ]
    path.write_text(json.dumps(exported))
    return path
