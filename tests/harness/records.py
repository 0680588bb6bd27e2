"""Workflow records as the steps write them, for tests that start in the middle of the chain."""

from __future__ import annotations

from typing import Any

from dinsar.records import PairRecord


def pair_record(**changes: Any) -> PairRecord:
    """A PairRecord of a one-swath pair (what topsapp_xml writes), with ``changes``."""
    date = {"platform": "S1A", "track": "13_DESC", "granules": []}
    values: dict[str, Any] = {
        "pair": "20161007_20161031",
        "reference": {**date, "date": "20161007"},
        "secondary": {**date, "date": "20161031"},
        "swaths": [2],
        "bursts_per_swath": {"2": 3},
        "bursts": 3,
        "wavelength": 0.05546576,
        "ipf": ["002.72"],
        "range_looks": 19,
        "azimuth_looks": 7,
        "unwrap": True,
        "unwrapper": "snaphu_mcf",
        "esd": True,
        "geocode": [],
        "output_dirs": {"reference": "reference", "secondary": "secondary"},
    }
    return PairRecord(**{**values, **changes})
