"""Scenes from the real recorded CMR search (path 13 DESC, 176 records) for tests, and bursts
from the real recorded SLC-BURST search (burst 174_372326_IW3, 166 records).

The records go through asf_search's own product classes, the same path a live search takes.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

STACK_FILE = (
    "asf_search/S1A_IW_SLC__1SSV_20160528T141908_20160528T141938_011460_011746_335C_stack.yml"
)
BURST_STACK_FILE = "asf_search/SLC_BURST_stack.yml"

# Inside the stack's footprints; 2016-09-01..2017-03-01 gives 8 dates (some with 2 slices).
TEST_ROI = "POLYGON ((-121.2 54.5, -120.8 54.5, -120.8 54.8, -121.2 54.8, -121.2 54.5))"


# Inside the footprint of burst 174_372326_IW3 (Sitka, Alaska), about 6 x 6 km.
BURST_ROI = "POLYGON ((-136.0 57.02, -135.9 57.02, -135.9 57.07, -136.0 57.07, -136.0 57.02))"


@cache
def stack_records(shared_dir: Path, name: str = STACK_FILE) -> list[dict[str, Any]]:
    """A recorded stack: JSON (the SLC stack) or YAML (the burst stack), as recorded."""
    text = (shared_dir / "fixtures" / name).read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        import yaml

        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506


def asf_products(records: list[dict[str, Any]]) -> list[Any]:
    import asf_search as asf
    from asf_search.search.search_generator import as_ASFProduct

    session = asf.ASFSession()
    return [as_ASFProduct({"umm": r["umm"], "meta": r["meta"]}, session) for r in records]


def scenes(shared_dir: Path, name: str = STACK_FILE) -> list[Any]:
    """Every record as our Scene (or Burst), with state vectors (as a live search gives them)."""
    from dinsar.inventory import burst_from_properties, scene_from_properties

    out = []
    for p in asf_products(stack_records(shared_dir, name)):
        build = burst_from_properties if p.properties.get("burst") else scene_from_properties
        out.append(build(p.properties, p.geometry, p.baseline, "fixture"))
    return out


def write_asf_export(shared_dir: Path, path: Path, name: str = STACK_FILE) -> Path:
    """An asf_search GeoJSON export (results.geojson()) of a whole recorded stack."""
    import asf_search as asf

    results = asf.ASFSearchResults(asf_products(stack_records(shared_dir, name)))
    path.write_text(json.dumps(results.geojson()))
    return path
