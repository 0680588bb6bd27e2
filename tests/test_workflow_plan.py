"""The workflow up to the plan, run with real Snakemake: saved search and emulated CMR search."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from dinsar.isce_run import CPU_S_PER_BURST
from fixture_scenes import TEST_ROI, write_asf_export
from workflow_runner import executed_rules, output_of, snakemake

PLAN_FILES = ("scenes.csv", "pairs.csv", "network.png", "coverage.png", "summary.txt")
EXPECTED_DATES = [
    "20160901", "20161007", "20161031", "20161124",
    "20161218", "20170111", "20170204", "20170222",
]  # fmt: skip


def base_config(tmp_path: Path, **extra: object) -> dict:
    return {
        "workspace": str(tmp_path / "ws"),
        "roi": TEST_ROI,
        "dates": {"start": "2016-09-01", "end": "2017-03-01"},
        **extra,
    }


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def assert_plan(workspace: Path, n_pairs: int) -> list[dict[str, str]]:
    for name in PLAN_FILES:
        path = workspace / "plan" / name
        assert path.is_file() and path.stat().st_size > 0, name
    for png in ("network.png", "coverage.png"):
        assert (workspace / "plan" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pairs = read_csv(workspace / "plan" / "pairs.csv")
    assert len(pairs) == n_pairs
    return pairs


def test_plan_from_saved_search(tmp_path: Path, shared_dir: Path) -> None:
    export = write_asf_export(shared_dir, tmp_path / "asf_export.geojson")
    config = base_config(tmp_path, inventory=str(export), timeseries={"enabled": "auto"})
    result = snakemake(tmp_path, config, "plan", "-c1")
    assert result.returncode == 0, output_of(result)
    ws = tmp_path / "ws"
    pairs = assert_plan(ws, n_pairs=7)
    assert [p["pair"] for p in pairs] == [
        f"{a}_{b}" for a, b in zip(EXPECTED_DATES, EXPECTED_DATES[1:], strict=False)
    ]
    assert {p["btemp_days"] for p in pairs} == {"36", "24", "18"}
    # an asf_search export holds no state vectors: Bperp is unknown, not invented
    assert {p["bperp_m"] for p in pairs} == {""}
    summary = (ws / "plan" / "summary.txt").read_text()
    assert "pairs: 7" in summary and "dates: 8" in summary
    assert "Bperp unknown" in summary and "`dinsar search --config FILE --save OUT`" in summary
    assert "scenes: 8 to use" in summary and "still to download" in summary
    # sequential: 1 over every date: one connected network, MintPy can invert it
    assert "  track 13_DESC: 8 usable date(s) of 8\n    time series: 8 dates, 7 pairs, " \
        "connected (MintPy runs)\n" in summary  # fmt: skip
    assert "pairs: 7" in output_of(result)  # the summary is printed, not only written
    # CPU time beside bytes and disk: the ROI needs 3 bursts x 2 swaths; at 19 x 7 looks a pair
    # costs the calibrated CPU-seconds per burst of every group: 6 x 243.7 s = 24 min
    assert sum(CPU_S_PER_BURST.values()) == pytest.approx(243.7)
    # with isce.reuse_geometry (the default) one geometry job per reference date: at
    # sequential: 1 each date is the reference of one pair, so the geometry job's preprocess
    # comes on top (dinsar.geometry.expected_cpu_ratio: 2.8 h -> 2.9 h)
    assert "estimated CPU time (topsApp): ~24 min per pair (6 bursts; topo 12 min, " \
        "coregistration 11 min), ~2.9 h for 7 pair(s) with topo once per reference date " \
        "(7 geometry job(s), isce.reuse_geometry)" in summary  # fmt: skip
    assert summary.index("estimated disk") < summary.index("estimated CPU")
    # the one grid every pair of the track is exported onto: CRS, posting, size, bounds
    assert re.search(r"track grid \(every pair of a track is exported onto it\): EPSG:4326.*\n"
                     r"    posting 2\" \(0.000555556 deg; glo_30 x 2 \(auto.*\), \d+ x \d+ "
                     r"pixels, bounds \[W, S, E, N\] \[", summary), summary  # fmt: skip
    scenes = read_csv(ws / "plan" / "scenes.csv")
    assert {s["date"] for s in scenes if s["used"] == "yes"} == set(EXPECTED_DATES)


def test_plan_from_emulated_cmr_search(tmp_path: Path, cmr, ca_bundle: str) -> None:
    cfg = base_config(
        tmp_path,
        search={"host": cmr.host},
        network={"ca_bundle": ca_bundle},
        pairs={"sequential": 2},
    )
    result = snakemake(tmp_path, cfg, "plan", "-c1")
    assert result.returncode == 0, output_of(result)
    ws = tmp_path / "ws"
    inventory = json.loads((ws / "inventory" / "scenes.geojson").read_text())
    granules = {f["properties"]["granule"] for f in inventory["features"]}
    dates = read_csv(ws / "inventory" / "dates.csv")
    assert [d["date"] for d in dates] == EXPECTED_DATES
    assert all(d["used"] == "yes" for d in dates)
    assert {g for d in dates for g in d["granules"].split(";")} <= granules
    pairs = assert_plan(ws, n_pairs=13)  # 7 + 6 with sequential: 2
    # a live search carries state vectors: every pair has a perpendicular baseline
    assert all(p["bperp_m"] not in ("", "nan") for p in pairs)
    assert max(abs(float(p["bperp_m"])) for p in pairs) > 10


# 18 days between the last two dates only; the explicit pair adds the first two: two parts
SPLIT_PAIRS = {"sequential": 1, "max_temporal_baseline": 20, "explicit": ["20160901_20161007"]}


def test_a_disconnected_network_warns_or_stops_the_plan(tmp_path: Path, shared_dir: Path) -> None:
    export = write_asf_export(shared_dir, tmp_path / "asf_export.geojson")
    auto = snakemake(tmp_path, base_config(tmp_path, inventory=str(export), pairs=SPLIT_PAIRS,
                                           timeseries={"enabled": "auto"}),
                     "plan", "-c1")  # fmt: skip
    assert auto.returncode == 0, output_of(auto)
    summary = (tmp_path / "ws" / "plan" / "summary.txt").read_text()
    assert "    WARNING time series: not run on this track (timeseries.enabled: auto): no pair " \
        "links 20161007 to 20170204: widen pairs.max_temporal_baseline" in summary  # fmt: skip
    assert "pairs.explicit: [20161007_20170204]" in summary
    assert "usable date(s) in no pair, so not in the time series: 20161031, 20161124, " \
        "20161218, 20170111" in summary  # fmt: skip
    cfg = base_config(tmp_path, inventory=str(export), pairs=SPLIT_PAIRS,
                      timeseries={"enabled": True})  # fmt: skip
    stopped = snakemake(tmp_path, cfg, "plan", "-c1")
    text = output_of(stopped)
    assert stopped.returncode != 0
    assert "dInSAR-Toolkit error in rule plan: timeseries.enabled: true, but MintPy cannot " \
        "invert track 13_DESC: no pair links 20161007 to 20170204:" in text  # fmt: skip
    assert "Traceback" not in text
    # the whole workflow (not only the plan) stops alike, before any job
    whole = snakemake(tmp_path, cfg, "-n")
    text = output_of(whole)
    assert whole.returncode != 0 and "Traceback" not in text
    assert "timeseries.enabled: true, but MintPy cannot invert track 13_DESC: no pair links " \
        "20161007 to 20170204" in text  # fmt: skip
    off = base_config(tmp_path, inventory=str(export), pairs=SPLIT_PAIRS,
                      timeseries={"enabled": False})  # fmt: skip
    assert snakemake(tmp_path, off, "plan", "-c1").returncode == 0
    summary = (tmp_path / "ws" / "plan" / "summary.txt").read_text()
    assert "    time series: off (timeseries.enabled: false)\n" in summary
    assert "WARNING" not in summary


def test_dry_run_shows_the_plan_then_nothing_left(tmp_path: Path, shared_dir: Path) -> None:
    export = write_asf_export(shared_dir, tmp_path / "asf_export.geojson")
    cfg = base_config(tmp_path, inventory=str(export))
    before = snakemake(tmp_path, cfg, "plan", "-n")
    assert before.returncode == 0, output_of(before)
    assert executed_rules(before) == ["search", "plan"]
    assert not (tmp_path / "ws" / "inventory").exists()  # a dry run writes nothing
    assert snakemake(tmp_path, cfg, "plan", "-c1").returncode == 0
    after = snakemake(tmp_path, cfg, "plan", "-n")
    assert after.returncode == 0 and executed_rules(after) == []
    assert "Nothing to be done" in output_of(after)


def test_changing_the_pair_settings_replans_without_searching_again(
    tmp_path: Path, shared_dir: Path
) -> None:
    export = write_asf_export(shared_dir, tmp_path / "asf_export.geojson")
    assert snakemake(tmp_path, base_config(tmp_path, inventory=str(export)), "plan", "-c1").returncode == 0
    cfg = base_config(tmp_path, inventory=str(export), pairs={"sequential": 3})
    result = snakemake(tmp_path, cfg, "plan", "-c1")
    assert result.returncode == 0, output_of(result)
    assert executed_rules(result) == ["plan"]
    assert len(read_csv(tmp_path / "ws" / "plan" / "pairs.csv")) == 7 + 6 + 5


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"roi": "POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))"}, "roi: polygon is not valid"),
        ({"dates": {"start": "2017-03-01", "end": "2016-09-01"}}, "dates: end 2016-09-01 is before"),
        ({"isce": {"azimuth_looks": -7}}, "isce.azimuth_looks: got -7; must be >= 1"),
        ({"serach": {}}, "serach: unknown key"),
    ],
)
def test_bad_config_stops_snakemake_with_one_clear_line(
    tmp_path: Path, changes: dict, message: str
) -> None:
    result = snakemake(tmp_path, {**base_config(tmp_path), **changes}, "-n")
    text = output_of(result)
    assert result.returncode != 0
    assert message in text
    assert "Traceback" not in text and "File \"" not in text


def test_unreachable_search_host_says_what_to_do(tmp_path: Path, ca_bundle: str) -> None:
    # port 9 on loopback: nothing listens, the connection is refused at once
    cfg = base_config(tmp_path, search={"host": "127.0.0.1:9"}, network={"ca_bundle": ca_bundle, "retries": 0})
    result = snakemake(tmp_path, cfg, "plan", "-c1")
    text = output_of(result)
    assert result.returncode != 0
    assert "ASF search at https://127.0.0.1:9 could not be reached" in text
    assert "needs network access" in text and "inventory:" in text
    assert "Traceback" not in text


def test_no_scenes_found_names_the_search(tmp_path: Path, cmr, ca_bundle: str) -> None:
    cfg = base_config(
        tmp_path,
        roi=[10.0, 45.0, 10.1, 45.1],  # far from the recorded stack
        search={"host": cmr.host},
        network={"ca_bundle": ca_bundle},
    )
    result = snakemake(tmp_path, cfg, "plan", "-c1")
    text = output_of(result)
    assert result.returncode != 0
    assert "no Sentinel-1 IW SLC scenes found" in text
    assert "roi_bounds_wsen=[10.0, 45.0, 10.1, 45.1]" in text
    assert "widen the dates" in text
    assert "Traceback" not in text


def test_dinsar_search_save_keeps_the_baselines_for_an_offline_plan(
    tmp_path: Path, cmr, ca_bundle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dinsar search --config FILE --save OUT` searches once; the plan from OUT, with no
    network, has the baselines that an asf_search .geojson() export loses."""
    import yaml

    from dinsar.cli import main

    config_file = tmp_path / "roi.yaml"
    online = base_config(tmp_path, search={"host": cmr.host}, network={"ca_bundle": ca_bundle})
    config_file.write_text(yaml.safe_dump(online))
    saved = tmp_path / "saved" / "search.geojson"
    assert main(["search", "--config", str(config_file), "--save", str(saved)]) == 0
    out = capsys.readouterr().out
    assert f"saved to {saved}" in out and "8 date(s)" in out and "with state vectors" in out
    features = json.loads(saved.read_text())["features"]
    assert features and all(f["properties"]["baseline"] for f in features)
    # offline: the search host does not answer, the saved search is all the plan reads
    offline = base_config(tmp_path, inventory=str(saved), search={"host": "127.0.0.1:9"})
    result = snakemake(tmp_path, offline, "plan", "-c1")
    assert result.returncode == 0, output_of(result)
    pairs = assert_plan(tmp_path / "ws", n_pairs=7)
    assert all(p["bperp_m"] not in ("", "nan") for p in pairs)
    assert "Bperp unknown" not in (tmp_path / "ws" / "plan" / "summary.txt").read_text()


def test_dinsar_search_without_a_config_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dinsar.cli import main

    missing = tmp_path / "nope.yaml"
    assert main(["search", "--config", str(missing), "--save", str(tmp_path / "s.geojson")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dinsar: error: config file {missing} not found; check the path "
                   "(config/roi.yaml is an example)"]  # fmt: skip


def test_coverage_figure_is_written_when_every_date_is_dropped(
    tmp_path: Path, shared_dir: Path
) -> None:
    """The ROI reaches past the track's swaths: each date covers 55 %, below 90 %."""
    export = write_asf_export(shared_dir, tmp_path / "asf_export.geojson")
    cfg = base_config(tmp_path, inventory=str(export), roi=[-124.5, 54.5, -120.8, 54.8],
                      search={"min_roi_coverage": 0.9})  # fmt: skip
    result = snakemake(tmp_path, cfg, "plan", "-c1")
    text = output_of(result)
    assert result.returncode != 0
    coverage = tmp_path / "ws" / "plan" / "coverage.png"
    assert "no date is usable" in text and "slices cover 55% of the ROI" in text
    assert f"see {coverage} for each date's coverage" in text
    assert coverage.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Traceback" not in text


def report_items(html: str) -> dict[str, dict]:
    """The report's items (Snakemake's `results` table), keyed by file."""
    import re

    match = re.search(r"var results = (\{.*?\});\n", html, re.S)
    assert match, "no results table in the report"
    return json.loads(match.group(1))


def test_report_works_from_the_plan_onwards(tmp_path: Path, shared_dir: Path) -> None:
    export = write_asf_export(shared_dir, tmp_path / "asf_export.geojson")
    cfg = base_config(tmp_path, inventory=str(export))
    report = tmp_path / "report.html"
    # before the plan: one line saying what to run
    early = snakemake(tmp_path, cfg, "--report", str(report))
    assert early.returncode != 0 and not report.exists()
    assert "nothing to report yet: the report starts with the plan; run `snakemake plan` first" \
        in output_of(early)  # fmt: skip
    assert "Traceback" not in output_of(early)
    assert snakemake(tmp_path, cfg, "plan", "-c1").returncode == 0
    # after the plan, no pair processed: the report holds what exists, nothing runs
    result = snakemake(tmp_path, cfg, "--report", str(report))
    assert result.returncode == 0, output_of(result)
    items = report_items(report.read_text())
    assert {Path(k).name for k in items} == {"network.png", "coverage.png"}
    labels = {item["filename"]: item["labels"] for item in items.values()}
    assert labels == {"network.png": {"figure": "pair network"},
                      "coverage.png": {"figure": "coverage of the area by each date"}}  # fmt: skip
    for item in items.values():
        assert "Pair network" in item["caption"] or "region of interest" in item["caption"]
    assert not (tmp_path / "ws" / "products").exists()
