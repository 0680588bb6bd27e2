"""The online search through real asf_search against the emulated CMR: results and faults."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from shapely import wkt
from shapely.geometry import shape

from dinsar.config import validate_config
from dinsar.search import SearchError, inventory_is_current, run_search, search_asf
from fixture_scenes import TEST_ROI, stack_records
from harness.server import Fault


def config(cmr_host: str, ca_bundle: str | None, tmp_path: Path, **network: object):
    return validate_config(
        {
            "workspace": str(tmp_path / "ws"),
            "roi": TEST_ROI,
            "dates": {"start": "2016-09-01", "end": "2017-03-01"},
            "search": {"host": cmr_host},
            "network": {"ca_bundle": ca_bundle, "retries": 2, "backoff": 0.01, **network},
        }
    )


def expected_granules(shared_dir: Path) -> set[str]:
    """Computed independently: records whose footprint meets the ROI within the dates."""
    roi = wkt.loads(TEST_ROI)
    return {
        r["properties"]["sceneName"]
        for r in stack_records(shared_dir)
        if "2016-09-01" <= r["properties"]["startTime"][:10] <= "2017-03-01"
        and shape(r["geometry"]).intersects(roi)
    }


def test_search_returns_the_intersecting_scenes(cmr, ca_bundle, tmp_path, shared_dir) -> None:
    scenes = search_asf(config(cmr.host, ca_bundle, tmp_path), wkt.loads(TEST_ROI), bursts=False)
    assert {s.granule for s in scenes} == expected_granules(shared_dir)
    assert all(
        s.baseline and s.baseline["stateVectors"]["positions"]["prePosition"] for s in scenes
    )
    assert all(len(s.md5 or "") == 32 and s.bytes > 1e9 for s in scenes)


def test_run_search_writes_inventory_and_dates(cmr, ca_bundle, tmp_path) -> None:
    ws = tmp_path / "ws" / "inventory"
    outcome = run_search(
        config(cmr.host, ca_bundle, tmp_path), ws / "scenes.geojson", ws / "dates.csv"
    )
    assert outcome.choice.tracks == ["13_DESC"]
    saved = json.loads((ws / "scenes.geojson").read_text())
    assert saved["query"]["start"] == "2016-09-01"
    assert len(saved["features"]) == len(outcome.scenes)
    assert (ws / "dates.csv").read_text().count("\n") == len(outcome.acquisitions) + 1


def test_a_finished_search_is_current_only_for_its_own_config(cmr, ca_bundle, tmp_path) -> None:
    """The workflow reads a finished search without its checkpoint only when this holds."""
    cfg = config(cmr.host, ca_bundle, tmp_path)
    ws = tmp_path / "ws" / "inventory"
    scenes, dates = ws / "scenes.geojson", ws / "dates.csv"
    assert not inventory_is_current(scenes, dates, cfg)  # nothing searched yet
    run_search(cfg, scenes, dates)
    assert inventory_is_current(scenes, dates, cfg)
    assert inventory_is_current(str(scenes), str(dates), cfg)  # the rules pass strings
    moved = config(cmr.host, ca_bundle, tmp_path, timeout=7)  # network settings: still current
    assert inventory_is_current(scenes, dates, moved)
    later = cfg.model_copy(
        update={"dates": cfg.dates.model_copy(update={"end": cfg.dates.end.replace(year=2018)})}
    )
    assert not inventory_is_current(scenes, dates, later)  # other dates: search again
    dates.write_text(dates.read_text() + "\n")  # the table no longer matches the stamp
    assert not inventory_is_current(scenes, dates, cfg)

    # a saved search: current until the saved file is newer than the inventory made from it
    saved = tmp_path / "saved.geojson"
    saved.write_text(scenes.read_text())
    from_file = validate_config({**cfg.model_dump(mode="json"), "inventory": str(saved)})
    run_search(from_file, scenes, dates)
    assert inventory_is_current(str(scenes), str(dates), from_file)
    later_ns = scenes.stat().st_mtime_ns + 5_000_000_000
    os.utime(saved, ns=(later_ns, later_ns))
    assert not inventory_is_current(str(scenes), str(dates), from_file)


@pytest.mark.parametrize(
    "inject",
    [
        lambda cmr: cmr.drop_next(times=2),  # connection resets
        lambda cmr: cmr.fail_next(429, times=1),  # rate limited
        lambda cmr: cmr.fail_next(503, times=2),  # asf_search retries 5xx itself, then we do
        lambda cmr: cmr.faults.push(  # a reply cut short: invalid JSON
            Fault(status=200, body=b'{"hits": 8, "took": 3, "items": [{"umm": {"Gran'), 2
        ),
    ],
    ids=["reset", "429", "503", "truncated"],
)
def test_transient_faults_are_retried(cmr, ca_bundle, tmp_path, shared_dir, inject, caplog) -> None:
    inject(cmr)
    with caplog.at_level(logging.WARNING, logger="dinsar"):
        scenes = search_asf(config(cmr.host, ca_bundle, tmp_path), wkt.loads(TEST_ROI), bursts=False)
    assert {s.granule for s in scenes} == expected_granules(shared_dir)
    assert cmr.faults.pending() == 0


def test_persistent_failure_names_the_service_and_what_to_do(cmr, ca_bundle, tmp_path) -> None:
    cmr.fail_next(429, times=10)
    with pytest.raises(SearchError) as info:
        search_asf(config(cmr.host, ca_bundle, tmp_path), wkt.loads(TEST_ROI), bursts=False)
    message = str(info.value)
    assert f"ASF search at https://{cmr.host} failed after 2 retries" in message
    assert "HTTP 429" in message and "inventory:" in message


def test_timeouts_are_retried_then_reported(cmr, ca_bundle, tmp_path, https_server) -> None:
    cmr.delay_next(5.0, times=10)
    with pytest.raises(SearchError, match=r"timed out after 0.3 s \(2 retries\).*network.timeout"):
        search_asf(config(cmr.host, ca_bundle, tmp_path, timeout=0.3), wkt.loads(TEST_ROI), bursts=False)
    assert len(https_server.requests(path_prefix="/search", settle=0)) >= 3  # 1 try + 2 retries
    cmr.reset()  # release the hung handlers so they do not spill into the next test
    https_server.requests(settle=3.0)


def test_wrong_certificate_authority_is_not_retried(cmr, tmp_path) -> None:
    # without our CA the local server's certificate is untrusted
    with pytest.raises(
        SearchError, match="TLS verification of https://.* failed.*network.ca_bundle"
    ):
        search_asf(config(cmr.host, None, tmp_path), wkt.loads(TEST_ROI), bursts=False)
    assert len(cmr.received) == 0
