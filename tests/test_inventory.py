"""Grouping slices into acquisitions, ROI coverage, track choice and inventory files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
import shapely
from shapely import wkt
from shapely.geometry import box

from dinsar.errors import DinsarError
from dinsar.inventory import (
    InventoryError,
    assess,
    choose_tracks,
    group_acquisitions,
    load_saved_search,
    roi_coverage,
    write_inventory,
)
from fixture_scenes import TEST_ROI, scenes, write_asf_export

# Frames 406 (54.56-56.75 N) and 412 (53.04-55.10 N) of one pass are needed together here.
TWO_SLICE_ROI = box(-121.2, 54.3, -120.8, 55.6)
TWO_SLICE_DATES = {"20161007", "20161031", "20161124", "20161218", "20170111", "20170204"}


@pytest.fixture(scope="module")
def all_scenes(shared_dir: Path) -> list:
    return scenes(shared_dir)


def window(items: list, start: str, end: str) -> list:
    lo, hi = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    return [s for s in items if lo <= s.start_time.date() <= hi]


def test_slices_of_one_pass_form_one_acquisition(all_scenes: list) -> None:
    acquisitions = group_acquisitions(all_scenes)
    assert len(all_scenes) == 176
    # 170 distinct dates in the record set; 6 of them have two slices
    assert len(acquisitions) == 170
    two = {a.date for a in acquisitions if len(a.scenes) == 2}
    assert two == TWO_SLICE_DATES
    for acq in acquisitions:
        times = [s.start_time for s in acq.scenes]
        assert times == sorted(times)
        assert {s.track for s in acq.scenes} == {"13_DESC"}


def test_coverage_needs_both_slices_and_drops_dates_that_miss(all_scenes: list) -> None:
    acquisitions = group_acquisitions(window(all_scenes, "2016-09-01", "2017-03-01"))
    assess(acquisitions, TWO_SLICE_ROI, min_coverage=0.95)
    by_date = {a.date: a for a in acquisitions}
    for date in TWO_SLICE_DATES:
        acq = by_date[date]
        assert acq.used and len(acq.scenes) == 2
        union = shapely.union_all([s.footprint for s in acq.scenes])
        assert acq.coverage == pytest.approx(
            union.intersection(TWO_SLICE_ROI).area / TWO_SLICE_ROI.area
        )
        assert acq.coverage > 0.99
    # Frame 409 alone reaches far enough north; frame 411 (20170222) covers only ~57 %.
    assert by_date["20160901"].used and [s.frame for s in by_date["20160901"].scenes] == [409]
    dropped = by_date["20170222"]
    assert not dropped.used
    assert dropped.coverage == pytest.approx(
        roi_coverage(dropped.scenes[0].footprint, TWO_SLICE_ROI)
    )
    assert 0.5 < dropped.coverage < 0.6
    assert "slices cover 57% of the ROI, below search.min_roi_coverage 95%" in dropped.reason


def test_a_slice_that_adds_no_coverage_is_trimmed(all_scenes: list) -> None:
    roi = wkt.loads(TEST_ROI)  # inside frame 412 alone on the two-slice dates
    acquisitions = group_acquisitions(window(all_scenes, "2016-10-01", "2016-10-10"))
    assess(acquisitions, roi, 0.95)
    (acq,) = acquisitions
    assert acq.used and len(acq.scenes) == 1
    assert acq.scenes[0].frame == 412


def test_gap_between_slices_keeps_the_covering_run(all_scenes: list) -> None:
    (acq,) = group_acquisitions(window(all_scenes, "2016-10-07", "2016-10-07"))
    early, late = acq.scenes
    # Move the later slice 60 s away: no longer contiguous with the first.
    shifted = dataclasses.replace(
        late,
        start_time=late.start_time + dt.timedelta(seconds=60),
        stop_time=late.stop_time + dt.timedelta(seconds=60),
    )
    (acq,) = group_acquisitions([early, shifted])
    assess([acq], TWO_SLICE_ROI, 0.5)
    assert len(acq.scenes) == 1
    assert "not contiguous" in acq.reason


def test_mixed_ipf_slices_are_dropped_with_reason(all_scenes: list) -> None:
    (acq,) = group_acquisitions(window(all_scenes, "2016-10-07", "2016-10-07"))
    first, second = acq.scenes
    (acq,) = group_acquisitions([first, dataclasses.replace(second, ipf="002.36")])
    assess([acq], TWO_SLICE_ROI, 0.95)
    assert not acq.used
    assert "different IPF versions (002.36, 002.72)" in acq.reason


def test_track_choice_auto_all_and_explicit(all_scenes: list) -> None:
    roi = wkt.loads(TEST_ROI)
    members = window(all_scenes, "2016-09-01", "2017-03-01")
    # A second, made-up ascending track with fewer dates: auto must keep the descending one.
    ascending = [dataclasses.replace(s, path=42, flight_direction="ASCENDING") for s in members[:3]]
    acquisitions = group_acquisitions(members + ascending)
    assess(acquisitions, roi, 0.95)
    choice = choose_tracks(acquisitions, "auto")
    assert choice.tracks == ["13_DESC"]
    assert all(not a.used for a in acquisitions if a.track == "42_ASC")
    assert any("not selected" in a.reason for a in acquisitions if a.track == "42_ASC")

    acquisitions = group_acquisitions(members + ascending)
    assess(acquisitions, roi, 0.95)
    assert choose_tracks(acquisitions, "all").tracks == ["13_DESC", "42_ASC"]

    with pytest.raises(DinsarError, match=r"no scenes found on track\(s\) 99_ASC.*13_DESC"):
        choose_tracks(acquisitions, ["99_ASC"])


def test_inventory_round_trip_keeps_every_field(all_scenes: list, tmp_path: Path) -> None:
    path = tmp_path / "scenes.geojson"
    write_inventory(all_scenes[:20], path, {"source": "test"})
    loaded = load_saved_search(path)
    assert loaded == sorted(all_scenes[:20], key=lambda s: s.start_time)
    assert [s.baseline for s in loaded] == [
        s.baseline for s in sorted(all_scenes[:20], key=lambda s: s.start_time)
    ]
    data = json.loads(path.read_text())
    props = data["features"][0]["properties"]
    for key in ("granule", "url", "bytes", "md5", "path", "frame", "platform", "start_time",
                "polarization"):  # fmt: skip
        assert props[key] not in (None, "")
    assert data["features"][0]["geometry"]["type"] == "Polygon"


def test_asf_search_geojson_export_is_accepted(shared_dir: Path, tmp_path: Path) -> None:
    export = write_asf_export(shared_dir, tmp_path / "export.geojson")
    loaded = load_saved_search(export)
    assert len(loaded) == 176
    first = loaded[0]
    assert first.md5 and len(first.md5) == 32 and first.bytes > 1e9
    assert first.url.endswith(first.granule + ".zip")


def _edit_first_feature(path: Path, edit) -> Path:
    data = json.loads(path.read_text())
    edit(data["features"][0]["properties"])
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p.update(md5="not-a-checksum"), r"md5 'not-a-checksum' is not a 32-digit hex"),
        (lambda p: p.pop("url"), r"field 'url' is missing"),
        (lambda p: p.update(bytes=None), r"field 'bytes' is missing"),
        (
            lambda p: p.update(granule="S1A_IW_SLC__1SDV_x; rm -rf ~"),
            r"is not a Sentinel-1 IW SLC product name",
        ),
        (
            lambda p: p.update(granule="../../etc/passwd"),
            r"is not a Sentinel-1 IW SLC product name",
        ),
    ],
)
def test_hand_edited_inventory_gives_clear_error(
    all_scenes: list, tmp_path: Path, edit, message: str
) -> None:
    path = tmp_path / "scenes.geojson"
    write_inventory(all_scenes[:3], path, {})
    _edit_first_feature(path, edit)
    with pytest.raises(InventoryError, match=message):
        load_saved_search(path)


def test_not_an_inventory_gives_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.geojson"
    path.write_text("{not json")
    with pytest.raises(InventoryError, match="not readable GeoJSON"):
        load_saved_search(path)
    path.write_text(json.dumps({"type": "Feature"}))
    with pytest.raises(InventoryError, match="not a GeoJSON FeatureCollection"):
        load_saved_search(path)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{"properties": {}}]}))
    with pytest.raises(InventoryError, match="not a scene inventory"):
        load_saved_search(path)
