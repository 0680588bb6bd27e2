"""Scenes from the real recorded CMR search (path 13 DESC, 176 records) for tests.

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

# Inside the stack's footprints; 2016-09-01..2017-03-01 gives 8 dates (some with 2 slices).
TEST_ROI = "POLYGON ((-121.2 54.5, -120.8 54.5, -120.8 54.8, -121.2 54.8, -121.2 54.5))"


@cache
def stack_records(shared_dir: Path) -> list[dict[str, Any]]:
    return json.loads((shared_dir / "fixtures" / STACK_FILE).read_text())


def asf_products(records: list[dict[str, Any]]) -> list[Any]:
    import asf_search as asf
    from asf_search.search.search_generator import as_ASFProduct

    session = asf.ASFSession()
    return [as_ASFProduct({"umm": r["umm"], "meta": r["meta"]}, session) for r in records]


def scenes(shared_dir: Path) -> list[Any]:
    """Every record as our Scene, with state vectors (as a live search gives them)."""
    from dinsar.inventory import scene_from_properties

    return [
        scene_from_properties(p.properties, p.geometry, p.baseline, "fixture")
        for p in asf_products(stack_records(shared_dir))
    ]


def write_asf_export(shared_dir: Path, path: Path) -> Path:
    """An asf_search GeoJSON export (results.geojson()) of the whole recorded stack."""
    import asf_search as asf

    results = asf.ASFSearchResults(asf_products(stack_records(shared_dir)))
    path.write_text(json.dumps(results.geojson()))
    return path
