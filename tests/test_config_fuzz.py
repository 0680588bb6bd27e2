"""Property-based config fuzzing: any config gives a validation message or a valid Config.

Never a traceback: the only exception validate_config may raise is ConfigError, and its
message names a key.
"""

from __future__ import annotations

import copy
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dinsar.config import Config, validate_config
from dinsar.errors import ConfigError
from dinsar.roi import MIN_AREA_DEG2

VALID = {
    "roi": "POLYGON ((129.2 42.2, 129.3 42.2, 129.3 42.3, 129.2 42.3, 129.2 42.2))",
    "dates": {"start": "2025-12-20", "end": "2026-01-10"},
}

# Values of every JSON/YAML shape, including hostile strings.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))",
            "POLYGON ((0 0, 0 0, 0 0, 0 0))",
            "MULTIPOLYGON EMPTY",
            "POLYGON ((1e308 1e308, -1e308 1, 0 0, 1e308 1e308))",
            "'; rm -rf / #",
            "$(touch /tmp/pwned)",
            "../../etc/passwd",
            "2025-02-30",
            "20251220",
            "auto",
            "all",
            "nan",
            "\x00",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(string.ascii_lowercase + "_", max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)

SECTION_KEYS = {
    name: list(field.annotation.model_fields)  # type: ignore[union-attr]
    for name, field in Config.model_fields.items()
    if isinstance(field.annotation, type) and hasattr(field.annotation, "model_fields")
}
TOP_KEYS = list(Config.model_fields)


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid config with a few keys replaced by arbitrary values (or unknown keys added)."""
    cfg = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        top = draw(st.sampled_from(TOP_KEYS + ["unknown_key"]))
        if top in SECTION_KEYS and draw(st.booleans()):
            section = cfg.setdefault(top, {})
            if not isinstance(section, dict):
                section = cfg[top] = {}
            key = draw(st.sampled_from(SECTION_KEYS[top] + ["typo_key"]))
            section[key] = draw(values)
        else:
            cfg[top] = draw(values)
    return cfg


def check(cfg: Any) -> None:
    try:
        result = validate_config(cfg)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(("invalid configuration:", "config:"))
        assert "Traceback" not in message
        for line in message.splitlines()[1:]:
            assert ":" in line, line  # every problem names its key
        return
    assert isinstance(result, Config)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs())
def test_mutated_configs_never_raise_anything_but_config_error(cfg: dict[str, Any]) -> None:
    check(cfg)


@settings(max_examples=200, deadline=None)
@given(values)
def test_arbitrary_documents_never_raise_anything_but_config_error(doc: Any) -> None:
    check(doc)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-400, max_value=400, allow_nan=False), min_size=4, max_size=4))
def test_any_bbox_is_accepted_only_when_it_is_a_real_area(bbox: list[float]) -> None:
    west, south, east, north = bbox
    in_range = -180 <= west < east <= 180 and -90 <= south < north <= 90
    area = (east - west) * (north - south) if in_range else 0.0
    # a box within a factor 10 of the smallest area allowed could go either way by rounding
    assume(not MIN_AREA_DEG2 / 10 < area < MIN_AREA_DEG2 * 10)
    plausible = in_range and area >= MIN_AREA_DEG2
    try:
        validate_config({**VALID, "roi": bbox})
    except ConfigError as exc:
        assert not plausible, f"{bbox} rejected: {exc}"
        assert "roi:" in str(exc)
    else:
        assert plausible, f"{bbox} accepted"


def test_a_box_too_small_to_have_an_area_is_zero_area() -> None:
    """Found by the fuzzing above: a width of 1e-200 degrees is > 0, its area underflows to 0."""
    with pytest.raises(ConfigError, match=r"roi: polygon has zero area .*smaller than 1e-12"):
        validate_config({**VALID, "roi": [-7.9e-201, -7.9e-201, 0.0, 0.0]})
    with pytest.raises(ConfigError, match="roi: polygon has zero area"):
        validate_config({**VALID, "roi": [10.0, 20.0, 10.0 + 1e-7, 20.0 + 1e-7]})
    accepted = validate_config({**VALID, "roi": [10.0, 20.0, 10.001, 20.001]})  # 110 m square
    assert accepted.roi is not None
