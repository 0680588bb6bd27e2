"""Burst mode (download.mode burst | auto): records, the burst set, dropped dates, the plan.

The bursts are the real recorded SLC-BURST records of ../shared/fixtures/asf_search (burst
174_372326_IW3, 166 dates), read through asf_search's own product classes. Sets of several
bursts are made from them by moving a real record to a neighbouring burst ID (the footprint
shifted by one burst length along track), so every field keeps the real record's form.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
import shapely
from shapely import affinity

from dinsar.burst_set import (
    AUTO_MAX_BURSTS,
    SLC_BYTES_MEAN,
    assess_bursts,
    full_slc_bytes,
    isce_box,
    resolve_mode,
)
from dinsar.config import validate_config
from dinsar.errors import DinsarError
from dinsar.inventory import (
    Burst,
    InventoryError,
    burst_from_properties,
    burst_label,
    group_acquisitions,
    load_saved_search,
    scene_from_feature,
    write_inventory,
)
from dinsar.pairs import network_for_tracks
from dinsar.roi import parse_roi
from dinsar.search import SearchError, run_search
from fixture_scenes import BURST_ROI, BURST_STACK_FILE, scenes, stack_records, write_asf_export
from workflow_runner import output_of, snakemake

DATES = {"start": "2018-06-01", "end": "2018-09-30"}  # 10 dates of 174_372326_IW3 (S1B, every 12 days)
BURST_LENGTH_DEG = 0.1755  # one IW burst along track at 57 N (about 19.5 km): for neighbours


def real_bursts(shared_dir: Path) -> list[Burst]:
    return [b for b in scenes(shared_dir, BURST_STACK_FILE) if isinstance(b, Burst)]


def neighbour(burst: Burst, step: int, swath: str | None = None) -> Burst:
    """The real record moved to the burst ``step`` IDs along track (and to another swath)."""
    path, number, own_swath = burst.full_burst_id.split("_")
    swath = swath or own_swath
    new_id = f"{int(number) + step:06d}"
    index = burst.burst_index + step
    time_shift = dt.timedelta(seconds=2.758 * step)
    # descending pass: later bursts lie further south
    footprint = affinity.translate(burst.footprint, yoff=-BURST_LENGTH_DEG * step)
    if swath != own_swath:
        footprint = affinity.translate(footprint, xoff=(int(swath[2]) - int(own_swath[2])) * -0.9)
    return dataclasses.replace(
        burst,
        granule=burst.granule.replace(f"_{number}_{own_swath}_", f"_{new_id}_{swath}_"),
        url=burst.url.replace(f"/{own_swath}/", f"/{swath}/").replace(
            f"/{burst.burst_index}.tiff", f"/{index}.tiff"
        ),
        xml_url=burst.xml_url.replace(f"/{own_swath}/", f"/{swath}/").replace(
            f"/{burst.burst_index}.xml", f"/{index}.xml"
        ),
        full_burst_id=f"{path}_{new_id}_{swath}",
        swath=swath,
        burst_index=index,
        footprint=footprint,
        start_time=burst.start_time + time_shift,
        stop_time=burst.stop_time + time_shift,
    )


def in_dates(bursts: list[Burst]) -> list[Burst]:
    start, end = (dt.date.fromisoformat(DATES[k]) for k in ("start", "end"))
    return [b for b in bursts if start <= b.start_time.date() <= end]


# --- records -------------------------------------------------------------------------------


def test_real_burst_records_read_with_every_field(shared_dir: Path) -> None:
    bursts = real_bursts(shared_dir)
    assert len(bursts) == 166
    first = min(bursts, key=lambda b: b.start_time)
    assert first.granule == "S1_372326_IW3_20141017T151617_VV_3B42-BURST"
    assert first.full_burst_id == "174_372326_IW3" and first.key == ("174_372326_IW3", "VV")
    assert (first.swath, first.burst_index, first.bytes) == ("IW3", 3, 144671472)
    assert first.source == "S1A_IW_SLC__1SSV_20141017T151607_20141017T151631_002871_0033F3_3B42"
    assert first.xml_url.endswith("/IW3/VV/3.xml") and first.md5 is None
    assert first.track == "174_DESC" and first.baseline is not None
    # our inventory keeps every field: a saved burst search reads back the same bursts
    assert scene_from_feature(first.to_feature(), "test") == first


@pytest.mark.parametrize(
    "change, message",
    [
        ({"sceneName": "S1_372326_IW3_x-BURST"}, "is not an ASF SLC-BURST granule name"),
        ({"url": "http://sentinel1-burst.asf.alaska.edu/S/IW3/VV/3.tiff"}, "are not the https"),
        ({"additionalUrls": []}, "are not the https extractor URLs"),
        ({"burst": {"fullBurstID": "174_372327_IW3", "burstIndex": 3, "subswath": "IW3"}},
         "does not match the name"),
        ({"burst": {"fullBurstID": "174_372326_IW3", "burstIndex": 4, "subswath": "IW3"}},
         "are not the https extractor URLs of burst 4"),
        ({"bytes": None}, "field 'bytes' is missing"),
    ],
)  # fmt: skip
def test_bad_burst_records_are_refused_in_one_line(
    shared_dir: Path, change: dict, message: str
) -> None:
    record = stack_records(shared_dir, BURST_STACK_FILE)[0]
    props = {**record["properties"], **change}
    with pytest.raises(InventoryError, match=message) as err:
        burst_from_properties(props, record["geometry"], None, "saved search feature 0")
    assert "\n" not in str(err.value)


# --- mode ----------------------------------------------------------------------------------


def test_auto_mode_threshold() -> None:
    # at most half of the smallest whole scene (one single-pol slice): 9 bursts of 147 MB
    assert AUTO_MAX_BURSTS == 9
    small = parse_roi(BURST_ROI)  # 6 km: 2 bursts x 2 swaths at most
    large = parse_roi([-121.5, 54.0, -120.0, 55.0])  # 110 km: 7 bursts x 3 swaths
    assert resolve_mode("auto", small) == "burst"
    assert resolve_mode("auto", large) == "slc"
    assert resolve_mode("slc", small) == "slc" and resolve_mode("burst", large) == "burst"


# --- the burst set, dropped dates, pairs ---------------------------------------------------


def three_burst_stack(shared_dir: Path) -> list[Burst]:
    """Per date the real burst and its two neighbours along track (a 3-burst set)."""
    out = []
    for burst in in_dates(real_bursts(shared_dir)):
        out += [neighbour(burst, -1), burst, neighbour(burst, 1)]
    return out


def tall_roi(shared_dir: Path) -> shapely.Polygon:
    """An area reaching into both neighbours of 174_372326_IW3 along track."""
    centre = next(iter(real_bursts(shared_dir))).footprint.centroid
    return shapely.box(centre.x - 0.05, centre.y - 0.2, centre.x + 0.05, centre.y + 0.2)


def test_one_burst_set_per_track_and_dates_lacking_a_burst_are_dropped(shared_dir: Path) -> None:
    bursts = three_burst_stack(shared_dir)
    dates = sorted({b.date for b in bursts})
    # one date lacks the southern neighbour; another lacks every burst but that one
    lacking_one, lacking_two = dates[2], dates[5]
    bursts = [
        b for b in bursts
        if not (b.date == lacking_one and b.full_burst_id == "174_372327_IW3")
        and not (b.date == lacking_two and b.full_burst_id != "174_372327_IW3")
    ]  # fmt: skip
    acquisitions = group_acquisitions(bursts)
    choices = assess_bursts(acquisitions, tall_roi(shared_dir), 0.95)
    choice = choices["174_DESC"]
    assert choice.keys == (
        ("174_372325_IW3", "VV"), ("174_372326_IW3", "VV"), ("174_372327_IW3", "VV"),
    )  # fmt: skip
    assert choice.label == "174_IW3_372325-372327_VV"
    by_date = {a.date: a for a in acquisitions}
    assert not by_date[lacking_one].used
    assert by_date[lacking_one].reason == (
        "lacks 1 burst(s) of the track's set 174_IW3_372325-372327_VV: 174_372327_IW3 VV"
    )
    assert not by_date[lacking_two].used
    assert by_date[lacking_two].reason.startswith("lacks 2 burst(s)")
    used = [a for a in acquisitions if a.used]
    assert len(used) == len(dates) - 2
    for acq in used:
        assert sorted(b.key for b in acq.scenes) == list(choice.keys)
    # no pair mixes burst sets: both dates of every pair hold exactly the set
    pairs = network_for_tracks(used, validate_config({"roi": BURST_ROI, "dates": DATES}).pairs)
    assert pairs
    keys = {a.date: sorted(b.key for b in a.scenes) for a in used}
    for pair in pairs:
        assert keys[pair.reference] == keys[pair.secondary] == list(choice.keys)


def test_the_set_is_what_isce_crop_keeps(shared_dir: Path) -> None:
    """ISCE keeps a burst when the box of its corners at -500 m and 9000 m overlaps the area's
    box. A burst tilted by a descending pass spans 0.31 degrees of latitude, so the box of a
    6 km area inside the middle burst meets both neighbours' boxes: all three are kept, as
    topsApp would keep them from whole slices."""
    bursts = three_burst_stack(shared_dir)
    acquisitions = group_acquisitions(bursts)
    small = parse_roi(BURST_ROI)
    choice = assess_bursts(acquisitions, small, 0.95)["174_DESC"]
    assert [k[0] for k in choice.keys] == ["174_372325_IW3", "174_372326_IW3", "174_372327_IW3"]
    # an area in the band of latitude that only the middle burst's box reaches
    boxes = {b.full_burst_id: isce_box(b.footprint, b.flight_direction) for b in bursts[:3]}
    south_top, north_bottom = boxes["174_372327_IW3"][3], boxes["174_372325_IW3"][1]
    assert south_top < north_bottom
    west = boxes["174_372326_IW3"][0]
    narrow = shapely.box(west + 0.5, south_top + 0.001, west + 0.55, north_bottom - 0.001)
    choice = assess_bursts(group_acquisitions(bursts), narrow, 0.95)["174_DESC"]
    assert [k[0] for k in choice.keys] == ["174_372326_IW3"]


def test_a_set_spanning_two_slices_makes_one_date(shared_dir: Path) -> None:
    """Consecutive bursts of one pass cut from two SLC slices: one date, one SAFE, two slices."""
    bursts = []
    for burst in in_dates(real_bursts(shared_dir)):
        after = neighbour(burst, 1)
        next_slice = after.source.replace(after.source[17:32], "20990101T000000", 1)
        bursts += [burst, dataclasses.replace(after, source=next_slice)]
    acquisitions = group_acquisitions(bursts)
    assess_bursts(acquisitions, tall_roi(shared_dir), 0.5)
    used = [a for a in acquisitions if a.used]
    assert used and all(len(a.slices) == 2 and len(a.scenes) == 2 for a in used)
    # one SAFE per date all the same, named after its bursts
    assert {len(a.safe_names) for a in used} == {1}
    assert used[0].safe_names == [f"174_DESC_{used[0].date}_174_IW3_372326-372327_VV"]
    total, exact = full_slc_bytes(used)
    kinds = [a.scenes[0].source[14:16] for a in used]  # SV or DV: the records hold both
    assert not exact and total == sum(2 * SLC_BYTES_MEAN[k] for k in kinds)


def test_burst_label_names_each_swath() -> None:
    keys = [("174_372325_IW2", "VV"), ("174_372327_IW2", "VV"), ("174_372326_IW3", "VV")]
    assert burst_label(keys) == "174_IW2_372325-372327_IW3_372326-372326_VV"


# --- search and plan from the real records, offline ----------------------------------------


def burst_config(tmp_path: Path, inventory: Path, **extra: object) -> dict:
    return {
        "workspace": str(tmp_path / "ws"),
        "roi": BURST_ROI,
        "dates": DATES,
        "inventory": str(inventory),
        "download": {"mode": "burst"},
        **extra,
    }


def test_search_keeps_burst_records_and_writes_dates(shared_dir: Path, tmp_path: Path) -> None:
    export = write_asf_export(shared_dir, tmp_path / "bursts.geojson", BURST_STACK_FILE)
    cfg = validate_config(burst_config(tmp_path, export))
    outcome = run_search(cfg, tmp_path / "scenes.geojson", tmp_path / "dates.csv")
    assert outcome.bursts is not None
    assert outcome.bursts["174_DESC"].keys == (("174_372326_IW3", "VV"),)
    rows = list(csv.DictReader(open(tmp_path / "dates.csv")))
    assert len(rows) == 10 and {r["slices"] for r in rows} == {"1"}
    assert all(r["granules"].endswith("-BURST") for r in rows)
    # the inventory keeps the burst records: the saved search reads back as bursts
    saved = load_saved_search(tmp_path / "scenes.geojson")
    assert saved and all(isinstance(b, Burst) for b in saved)
    assert json.loads((tmp_path / "scenes.geojson").read_text())["query"]["collection"] == (
        "SLC-BURST"
    )


def test_slc_mode_on_a_burst_search_says_so(shared_dir: Path, tmp_path: Path) -> None:
    export = write_asf_export(shared_dir, tmp_path / "bursts.geojson", BURST_STACK_FILE)
    cfg = validate_config(burst_config(tmp_path, export, download={"mode": "slc"}))
    with pytest.raises(SearchError) as err:
        run_search(cfg, tmp_path / "scenes.geojson", tmp_path / "dates.csv")
    assert "no Sentinel-1 IW SLC scenes found" in str(err.value)
    assert "save the search again with this download.mode" in str(err.value)
    assert isinstance(err.value, DinsarError) and "\n" not in str(err.value)


@pytest.mark.parametrize("form", ["asf_search export", "dinsar saved search"])
def test_plan_from_real_burst_records_offline(
    shared_dir: Path, tmp_path: Path, form: str
) -> None:
    """`snakemake plan` in burst mode from the real SLC-BURST records, no network at all."""
    if form == "asf_search export":
        saved = write_asf_export(shared_dir, tmp_path / "bursts.geojson", BURST_STACK_FILE)
    else:  # what `dinsar search --save` writes: the records with their state vectors
        saved = tmp_path / "saved.geojson"
        write_inventory(real_bursts(shared_dir), saved, {"source": "test"})
    result = snakemake(tmp_path, burst_config(tmp_path, saved), "plan", "-c1")
    assert result.returncode == 0, output_of(result)
    summary = (tmp_path / "ws" / "plan" / "summary.txt").read_text()
    burst_bytes = sum(b.bytes for b in in_dates(real_bursts(shared_dir)))
    assert "download mode: burst; bursts: 10 to use on 10 date(s)" in summary
    assert "track 174_DESC: 1 burst(s) per date, the same on every date (174_IW3_372326-372326_VV)" \
        in summary  # fmt: skip
    assert f"{burst_bytes / 1e9:.1f} GB in total" in summary
    # the burst set (1 burst), not the area's estimate, is what a pair processes
    assert "per pair (1 bursts;" in summary
    # no SLC record in a burst search: the whole-SLC figure is an estimate, and says so
    slc = 10 * SLC_BYTES_MEAN["DV"]  # the bursts are cut from dual-pol SLCs
    assert f"whole SLCs instead: 10 slice(s), {slc / 1e9:.1f} GB (estimate: mean size of real " \
        f"IW SLC records, their records are not in the search), {slc / burst_bytes:.0f}x the " \
        "bursts" in summary  # fmt: skip
    scenes_csv = list(csv.DictReader(open(tmp_path / "ws" / "plan" / "scenes.csv")))
    assert {r["granule"].endswith("-BURST") for r in scenes_csv} == {True}
    pairs = list(csv.DictReader(open(tmp_path / "ws" / "plan" / "pairs.csv")))
    assert pairs
    if form == "dinsar saved search":  # state vectors kept: Bperp from asf_search's calculator
        assert all(p["bperp_m"] for p in pairs)


def test_burst_search_through_the_emulated_cmr(cmr, ca_bundle: str, shared_dir: Path,
                                               tmp_path: Path) -> None:  # fmt: skip
    """asf_search asks CMR for SLC-BURST records; the emulation filters the real records as CMR
    does (collection, polarization, area, dates), so a wrong query would find a wrong set."""
    from harness.cmr import load_records

    cmr.set_records(load_records(shared_dir / "fixtures" / BURST_STACK_FILE))
    cfg = validate_config({
        "workspace": str(tmp_path / "ws"), "roi": BURST_ROI, "dates": DATES,
        "search": {"host": cmr.host}, "network": {"ca_bundle": ca_bundle},
        "download": {"mode": "burst"},
    })  # fmt: skip
    outcome = run_search(cfg, tmp_path / "scenes.geojson", tmp_path / "dates.csv")
    assert len(outcome.scenes) == 10 and all(isinstance(b, Burst) for b in outcome.scenes)
    assert outcome.bursts["174_DESC"].keys == (("174_372326_IW3", "VV"),)
    asked = [v for q in cmr.received for _, v in q.params]
    assert any("BURST" in v for v in asked)  # asf_search's query for the SLC-BURST collection
    # auto picks bursts for this 6 km area; `dinsar search --save` keeps the burst records,
    # state vectors included, and they plan offline as bursts
    from dinsar.search import save_search

    auto = cfg.model_copy(update={"download": cfg.download.model_copy(update={"mode": "auto"})})
    saved = save_search(auto, tmp_path / "saved.geojson")
    assert len(saved) == 10 and all(isinstance(b, Burst) for b in saved)
    reread = load_saved_search(tmp_path / "saved.geojson")
    assert reread == saved and all(b.baseline for b in reread)
    # the same query in SLC mode asks for SLC products: none among these records
    slc = cfg.model_copy(update={"download": cfg.download.model_copy(update={"mode": "slc"})})
    with pytest.raises(SearchError, match="no Sentinel-1 IW SLC scenes found"):
        run_search(slc, tmp_path / "s.geojson", tmp_path / "d.csv")



def test_auto_follows_a_saved_search_and_falls_back_to_slc_where_asf_has_no_burst(
    cmr, ca_bundle: str, shared_dir: Path, tmp_path: Path, caplog
) -> None:
    """download.mode auto (the default): a saved search of one kind decides the mode; a live
    search for a small area asks for bursts first, and where ASF holds none for the area and
    dates (here: the emulated CMR holds only the path-13 SLC stack), it says so and asks for
    whole SLCs."""
    from fixture_scenes import TEST_ROI

    assert validate_config({"roi": TEST_ROI, "dates": DATES}).download.mode == "auto"
    # a saved burst search plans as bursts, a saved SLC search as scenes, the area aside
    export = write_asf_export(shared_dir, tmp_path / "slc_export.geojson")
    slc_cfg = validate_config({"workspace": str(tmp_path / "a"), "roi": TEST_ROI,
                               "dates": {"start": "2016-09-01", "end": "2017-03-01"},
                               "inventory": str(export)})  # fmt: skip
    slc = run_search(slc_cfg, tmp_path / "a.geojson", tmp_path / "a.csv")
    assert slc.bursts is None and not any(isinstance(s, Burst) for s in slc.scenes)
    saved = tmp_path / "bursts.geojson"
    write_inventory(real_bursts(shared_dir), saved, {"source": "test"})
    burst_cfg = validate_config({"workspace": str(tmp_path / "b"), "roi": BURST_ROI,
                                 "dates": DATES, "inventory": str(saved)})  # fmt: skip
    bursts = run_search(burst_cfg, tmp_path / "b.geojson", tmp_path / "b.csv")
    assert bursts.bursts and all(isinstance(s, Burst) for s in bursts.scenes)
    # live: the burst query first, then the SLC query, and the run says why
    live = validate_config({"workspace": str(tmp_path / "c"), "roi": TEST_ROI,
                            "dates": {"start": "2016-09-01", "end": "2017-03-01"},
                            "search": {"host": cmr.host}, "network": {"ca_bundle": ca_bundle}})  # fmt: skip
    with caplog.at_level("WARNING", logger="dinsar.search"):
        found = run_search(live, tmp_path / "c.geojson", tmp_path / "c.csv")
    assert found.bursts is None and len(found.scenes) >= 8
    assert "ASF holds no burst of the area for these dates; searching whole SLC scenes" in caplog.text
    asked_bursts = [any("BURST" in v for _, v in q.params) for q in cmr.received]
    assert asked_bursts[0] and not asked_bursts[-1], asked_bursts  # bursts first, then SLCs
