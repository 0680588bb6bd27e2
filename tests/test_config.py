"""Config validation: every bad input named in the foundation issue gives a clear message."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from dinsar.config import Config, json_schema, validate_config
from dinsar.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
ROI = "POLYGON ((129.2 42.2, 129.3 42.2, 129.3 42.3, 129.2 42.3, 129.2 42.2))"
BASE = {"roi": ROI, "dates": {"start": "2025-12-20", "end": "2026-01-10"}}


def with_changes(**changes: object) -> dict:
    cfg = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = cfg
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return cfg


def test_minimal_config_is_valid_and_fills_defaults() -> None:
    cfg = validate_config(copy.deepcopy(BASE))
    assert cfg.workspace == "insar_workspace"
    assert cfg.isce.azimuth_looks == 7 and cfg.isce.range_looks == 19
    assert cfg.search.polarization == "VV"
    assert cfg.dem.buffer == 0.2
    assert cfg.cache_dir("slc") == Path("insar_workspace/cache/slc")


def test_example_roi_config_matches_the_seed() -> None:
    merged = yaml.safe_load((REPO / "config/config.yaml").read_text())
    example = yaml.safe_load((REPO / "config/roi.yaml").read_text())
    merged.update({k: v for k, v in example.items() if not isinstance(v, dict)})
    for key, value in example.items():
        if isinstance(value, dict):
            merged[key] = {**merged.get(key, {}), **value}
    cfg = validate_config(merged)
    assert cfg.roi == ROI
    assert str(cfg.dates.start) == "2025-12-20" and str(cfg.dates.end) == "2026-01-10"
    assert (cfg.dem.buffer, cfg.isce.azimuth_looks, cfg.isce.range_looks) == (0.2, 7, 19)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # unknown keys (typos), with a suggestion and the allowed keys
        ({"serach": {}}, [r"serach: unknown key", "did you mean 'search'", "Allowed keys"]),
        ({"isce__azimuth_loks": 3}, [r"isce.azimuth_loks: unknown key", "'azimuth_looks'"]),
        # ROI problems
        (
            {"roi": "POLYGON ((1 2, 3"},
            ["roi: invalid WKT", "POLYGON ((1 2, 3", "write e.g.", "YAML list [W, S, E, N]"],
        ),
        # a bbox written as a string: the message shows the YAML list form
        (
            {"roi": "129.2, 42.2, 129.3, 42.3"},
            ["roi: '129.2, 42.2, 129.3, 42.3' is a string", "`roi: [129.2, 42.2, 129.3, 42.3]`"],
        ),
        (
            {"roi": "[-1.5 42.2 -1e-1 42.3]"},
            ["is a string, not a bbox", "YAML list [W, S, E, N]", "`roi: [-1.5, 42.2, -1e-1, 42.3]`"],
        ),
        ({"roi": "LINESTRING (0 0, 1 1)"}, ["roi: WKT is a LineString, not a polygon"]),
        (
            {"roi": "POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))"},
            ["roi: polygon is not valid", "Self-intersection", "edges do not cross"],
        ),
        (
            {"roi": "POLYGON ((0 0, 1 1, 2 2, 0 0))"},
            ["roi: polygon has zero area", "non-collinear"],
        ),
        (
            {"roi": "POLYGON ((42.2 129.2, 42.3 129.2, 42.3 129.3, 42.2 129.2))"},
            ["roi: coordinates out of range", "N=129.3", "latitude -90..90", "(lon lat)"],
        ),
        ({"roi": [129.3, 42.2, 129.2, 42.3]}, ["roi: bbox", "inverted", "[W, S, E, N]"]),
        ({"roi": [1, 2, 3]}, ["roi: bbox [1, 2, 3] must be 4 numbers"]),
        ({"roi": "missing_area.geojson"}, ["roi: GeoJSON file 'missing_area.geojson' not found"]),
        ({"roi": None}, ["roi: required but not set"]),
        # dates
        (
            {"dates": {"start": "2026-01-10", "end": "2025-12-20"}},
            ["dates: end 2025-12-20 is before start 2026-01-10", "swap"],
        ),
        ({"dates__start": "2025-13-40"}, ["dates.start: got '2025-13-40'", "YYYY-MM-DD"]),
        ({"dates__end": "next week"}, ["dates.end: got 'next week'", "YYYY-MM-DD"]),
        # enums
        (
            {"search__flight_direction": "sideways"},
            ["search.flight_direction", "'SIDEWAYS'", "'ASCENDING' or 'DESCENDING'"],
        ),
        ({"search__tracks": "best"}, ["search.tracks: got 'best'", "'auto', 'all'"]),
        (
            {"search__tracks": ["13_DSC"]},
            ["search.tracks", "'13_DSC'", "<relative orbit>_<ASC|DESC>"],
        ),
        ({"search__polarization": "vv"}, ["search.polarization: got 'vv'", "'VV'"]),
        ({"isce__unwrapper": "magic"}, ["isce.unwrapper: got 'magic'", "'snaphu_mcf'"]),
        ({"dem__source": "srtm"}, ["dem.source: got 'srtm'", "'glo_30'"]),
        ({"keep": "some"}, ["keep: got 'some'", "'products' or 'all'"]),
        # numbers
        ({"isce__azimuth_looks": -3}, ["isce.azimuth_looks: got -3; must be >= 1"]),
        ({"isce__range_looks": 0}, ["isce.range_looks: got 0; must be >= 1"]),
        ({"search__min_roi_coverage": 1.5}, ["search.min_roi_coverage: got 1.5; must be <= 1"]),
        ({"dem__buffer": -0.1}, ["dem.buffer: got -0.1; must be >= 0"]),
        # a list entry is named by its index
        ({"isce__swaths": [1, 5]}, ["isce.swaths.1: got 5; must be <= 3"]),
        # pairs
        (
            {"pairs__explicit": ["20260101_20251220"]},
            ["pairs.explicit", "reference (first) date must be earlier", "'20251220_20260101'"],
        ),
        ({"pairs__explicit": ["2025-12-20"]}, ["pairs.explicit", "YYYYMMDD_YYYYMMDD"]),
        (
            {"pairs__single_reference": "20251340"},
            ["pairs.single_reference", "not a calendar date"],
        ),
        # files that must exist
        ({"inventory": "nowhere.geojson"}, ["inventory: saved search 'nowhere.geojson' not found"]),
        ({"isce__geocode_list": ["filt_topophase.unw"]}, ["isce.geocode_list", "'merged/'"]),
        (
            {"network__ca_bundle": "nowhere.pem"},
            ["network.ca_bundle: CA bundle 'nowhere.pem' not found", "PEM file or null"],
        ),
    ],
)
def test_bad_config_gives_clear_message(changes: dict, expected: list[str]) -> None:
    cfg = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        cfg = with_changes(**{dotted: value}) if "__" in dotted else {**cfg, dotted: value}
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    message = str(info.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "Traceback" not in message


def test_geojson_roi_file(tmp_path: Path) -> None:
    area = tmp_path / "area.geojson"
    area.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [[[10, 45], [11, 45], [11, 46], [10, 46], [10, 45]]],
                        },
                    }
                ],
            }
        )
    )
    cfg = validate_config({**BASE, "roi": str(area)})
    assert cfg.roi == str(area)
    area.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(ConfigError, match="contains no Polygon"):
        validate_config({**BASE, "roi": str(area)})


def test_several_errors_are_all_reported() -> None:
    cfg = with_changes(isce__azimuth_looks=-1, search__tracks="best")
    cfg["typo"] = 1
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    lines = str(info.value).splitlines()
    assert any("isce.azimuth_looks" in line for line in lines)
    assert any("search.tracks" in line for line in lines)
    assert any(line.strip().startswith("typo: unknown key") for line in lines)


def test_schema_file_is_in_sync_with_the_models() -> None:
    """config/schema.json is generated from the pydantic models; regenerate it when they change:
    python -m dinsar schema > config/schema.json"""
    on_disk = json.loads((REPO / "config/schema.json").read_text())
    assert on_disk == json_schema()
    assert on_disk["$schema"].endswith("2020-12/schema")
    assert on_disk["additionalProperties"] is False


def _documented_keys(node: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in node.items():
        keys.add(prefix + key)
        if isinstance(value, dict):
            keys |= _documented_keys(value, prefix + key + ".")
    return keys


def _model_keys(model: type, prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            keys |= _model_keys(annotation, prefix + name + ".")
    return keys


def test_config_yaml_is_generated_from_the_models() -> None:
    """config/config.yaml is the models' defaults and descriptions; regenerate it when they
    change: python -m dinsar defaults > config/config.yaml"""
    from dinsar.config import defaults_yaml

    assert (REPO / "config/config.yaml").read_text() == defaults_yaml()
    assert yaml.safe_load(defaults_yaml())["isce"]["azimuth_looks"] == 7


def test_settings_declare_where_they_go() -> None:
    """A setting declares on its field whether it goes into topsApp.xml (x-topsapp) and whether a
    change reruns the pairs; the rules read that, not a list of their own."""
    from dinsar.config import Isce, topsapp_properties, xml_settings

    isce = Isce(azimuth_looks=5, threads=8)
    assert topsapp_properties(isce)["azimuth looks"] == 5
    assert topsapp_properties(isce)["do ESD"] is True
    assert "threads" not in xml_settings(isce) and "topsapp" not in xml_settings(isce)
    assert xml_settings(isce)["azimuth_looks"] == 5 and "geocode_list" in xml_settings(isce)
    assert xml_settings(Isce(threads=1)) == xml_settings(Isce(threads=16))


def test_config_yaml_documents_every_key_and_nothing_else() -> None:
    documented = _documented_keys(yaml.safe_load((REPO / "config/config.yaml").read_text()))
    assert documented == _model_keys(Config)
    # every leaf key carries a comment on its line or just above it
    previous = ""
    for line in (REPO / "config/config.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "-")) and ":" in stripped:
            key, _, rest = stripped.partition(":")
            if rest.strip():
                assert "#" in rest or previous.startswith("#"), f"key {key!r} has no comment"
        if stripped:
            previous = stripped
