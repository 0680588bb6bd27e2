"""Orbit selection and download from the emulated ASF bucket holding the REAL fixture EOF files.

POEORB: S1A 2018-04-19T22:59:42..04-21T00:59:42, S1B 2018-05-01T22:59:42..05-03T00:59:42.
RESORB: S1A 2023-08-23 12:31:39..15:49:09 (created 16:20:50) and 14:10:24..17:27:54 (17:48:49).
Also AUX_CAL (only IPF 002.36 needs it), from an emulated SAR MPC bundle.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import shutil
import zipfile
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests

from dinsar.aux_cal import fetch_aux_cal, ipf_from_zip, needs_aux_cal
from dinsar.config import Network, Orbits
from dinsar.net import pin_ca_bundle
from dinsar.orbits import (
    OrbitError,
    OrbitRequest,
    find_orbit,
    orbit_requests,
    request_from_params,
    request_to_params,
)
from dinsar.records import OrbitEntry, OrbitManifest, RecordError
from harness.orbit_server import REAL_EOFS, serve_aux_cal

UTC = dt.UTC
S1A_POE = "S1A_OPER_AUX_POEORB_OPOD_20210307T053325_V20180419T225942_20180421T005942.EOF"
S1B_POE = "S1B_OPER_AUX_POEORB_OPOD_20210313T012515_V20180501T225942_20180503T005942.EOF"
RES_EARLY = "S1A_OPER_AUX_RESORB_OPOD_20230823T162050_V20230823T123139_20230823T154909.EOF"
RES_LATE = "S1A_OPER_AUX_RESORB_OPOD_20230823T174849_V20230823T141024_20230823T172754.EOF"
FAST = Network(retries=2, backoff=0.01, timeout=10)


def request(platform: str, start: str, seconds: int = 55, date: str | None = None) -> OrbitRequest:
    t0 = dt.datetime.fromisoformat(start).replace(tzinfo=UTC)
    return OrbitRequest(
        date or t0.strftime("%Y%m%d"), platform, t0, t0 + dt.timedelta(seconds=seconds), ("G1",)
    )


@pytest.fixture
def bucket(orbit_bucket, shared_dir):
    orbit_bucket.add_real(shared_dir)
    orbit_bucket.page_size = 2  # several pages, so the paging is exercised
    return orbit_bucket


@pytest.fixture
def session(ca_bundle):
    return pin_ca_bundle(requests.Session(), ca_bundle)


def settings(bucket, tmp_path: Path, **changes) -> dict:
    """find_orbit's settings, cache folder and network for the emulated bucket."""
    return {"settings": Orbits(asf_url=bucket.url, **changes), "cache_dir": tmp_path / "orbits",
            "network": FAST}  # fmt: skip


def file_gets(bucket) -> list:
    return [e for e in bucket.requests() if "/AUX_" in e.path]


@pytest.mark.parametrize(
    ("platform", "start", "name"),
    [
        ("S1A", "2018-04-19T23:00:42", S1A_POE),  # 60 s after the validity start: just inside
        ("S1A", "2018-04-20T14:19:13", S1A_POE),
        ("S1A", "2018-04-21T00:57:47", S1A_POE),  # stop + 60 s = validity stop
        ("S1B", "2018-05-02T14:19:13", S1B_POE),
    ],
)
def test_poeorb_from_the_real_files(bucket, session, tmp_path, shared_dir, platform, start, name):
    entry = find_orbit(request(platform, start), **settings(bucket, tmp_path), session=session)
    assert entry.type == "POEORB" and entry.platform == platform
    assert Path(entry.file) == (tmp_path / "orbits" / name).resolve()
    assert entry.granules == ["G1"]
    assert entry.validity[0].startswith(name[42:46] + "-" + name[46:48])
    source = next(shared_dir / "fixtures" / rel for rel in REAL_EOFS if rel.endswith(name))
    assert Path(entry.file).read_bytes() == source.read_bytes()  # verified against the ETag md5
    assert [e.status for e in file_gets(bucket)] == [200]


def test_outside_the_margin_falls_back_and_then_fails(bucket, session, tmp_path):
    # 30 s after the validity start: inside the file, but not with the 60 s margin
    with pytest.raises(OrbitError) as err:
        find_orbit(request("S1A", "2018-04-19T23:00:12"), **settings(bucket, tmp_path), session=session)
    message = str(err.value)
    assert "no orbit file covers S1A 2018-04-19T23:00:12..23:01:07 UTC (+-60 s)" in message
    assert (
        "no POEORB covers it; no RESORB covers it" in message and "orbits.margin_seconds" in message
    )
    entry = find_orbit(
        request("S1A", "2018-04-19T23:00:12"),
        **settings(bucket, tmp_path, margin_seconds=20),
        session=session,
    )
    assert entry.type == "POEORB"


@pytest.mark.parametrize(
    ("start", "name"),
    [
        ("2023-08-23T13:00:00", RES_EARLY),  # only the first covers
        ("2023-08-23T15:00:00", RES_LATE),  # both cover: the newest is chosen
        ("2023-08-23T16:30:00", RES_LATE),  # only the second covers
    ],
)
def test_resorb_fallback_picks_the_newest_covering_file(
    bucket, session, tmp_path, caplog, start, name
):
    with caplog.at_level(logging.WARNING, logger="dinsar"):
        entry = find_orbit(request("S1A", start), **settings(bucket, tmp_path), session=session)
    assert entry.type == "RESORB" and Path(entry.file).name == name
    assert "no precise orbit (POEORB) yet; falling back to a restituted one (RESORB)" in caplog.text
    assert [Path(e.path).name for e in file_gets(bucket)] == [
        name
    ]  # only the chosen one is fetched


def test_precise_only_makes_a_missing_poeorb_an_error(bucket, session, tmp_path):
    with pytest.raises(OrbitError) as err:
        find_orbit(
            request("S1A", "2023-08-23T15:00:00"),
            **settings(bucket, tmp_path, precise_only=True),
            session=session,
        )
    message = str(err.value)
    assert "no precise orbit (POEORB) covers S1A 2023-08-23T15:00:00" in message
    assert "orbits.precise_only is true" in message and "precise_only: false" in message
    assert file_gets(bucket) == []


def test_listing_starts_at_the_acquisition_and_pages(bucket, session, tmp_path):
    bucket.add_decoys(
        [
            f"S1A_OPER_AUX_POEORB_OPOD_2018{m:02d}01T000000_V2018{m:02d}01T000000_2018{m:02d}02T000000.EOF"
            for m in range(1, 13)
        ]
    )
    find_orbit(request("S1A", "2018-04-20T10:00:00"), **settings(bucket, tmp_path), session=session)
    listings = [e for e in bucket.requests() if "/AUX_" not in e.path]
    markers = [parse_qs(e.query_string)["marker"][0] for e in listings]
    assert markers[0] == "AUX_POEORB/S1A_OPER_AUX_POEORB_OPOD_20180419T100000"  # a day before
    assert len(listings) >= 4  # 2 keys per page
    assert all(
        parse_qs(e.query_string)["prefix"][0].startswith("AUX_POEORB/S1A_") for e in listings
    )


def test_a_second_run_uses_the_cache_without_any_request(bucket, session, tmp_path):
    req = request("S1B", "2018-05-02T14:19:13")
    first = find_orbit(req, **settings(bucket, tmp_path), session=session)
    bucket.server.clear_log()
    assert find_orbit(req, **settings(bucket, tmp_path), session=None) == first
    assert bucket.requests() == []


def test_a_truncated_cached_orbit_is_ignored_and_fetched_again(
    bucket, session, tmp_path, shared_dir, caplog
):
    cached = tmp_path / "orbits" / S1B_POE
    cached.parent.mkdir()
    cached.write_bytes((shared_dir / "fixtures" / "sentineleof" / S1B_POE).read_bytes()[:2_000_000])
    with caplog.at_level(logging.WARNING, logger="dinsar"):
        entry = find_orbit(
            request("S1B", "2018-05-02T14:19:13"), **settings(bucket, tmp_path), session=session)
    assert f"ignoring cached {S1B_POE}: {S1B_POE} is truncated" in caplog.text
    assert hashlib.md5(Path(entry.file).read_bytes()).hexdigest() == bucket.md5(S1B_POE)  # noqa: S324


def test_listing_503_is_retried(bucket, session, tmp_path):
    bucket.fail_next(503, times=2, listing=True)
    entry = find_orbit(request("S1B", "2018-05-02T14:19:13"), **settings(bucket, tmp_path), session=session)
    assert entry.type == "POEORB"
    assert [e.status for e in bucket.requests()][:3] == [503, 503, 200]


def test_content_not_matching_the_name_is_rejected_and_deleted(
    bucket, session, tmp_path, shared_dir
):
    # an object named as an S1A POEORB for 2018-05-02 whose content is the S1B file
    fake = "S1A_OPER_AUX_POEORB_OPOD_20210313T012515_V20180501T225942_20180503T005942.EOF"
    bucket.add(fake, shared_dir / "fixtures" / "sentineleof" / S1B_POE)
    with pytest.raises(
        OrbitError, match=f"orbit file {fake} does not cover .*it is for S1B, not S1A"
    ):
        find_orbit(request("S1A", "2018-05-02T14:19:13"), **settings(bucket, tmp_path), session=session)
    assert not (tmp_path / "orbits" / fake).exists()


def test_unreachable_bucket_says_it_needs_network(session, tmp_path):
    cfg = {"settings": Orbits(asf_url="https://127.0.0.1:9"), "cache_dir": tmp_path,
           "network": Network(retries=0)}  # fmt: skip
    with pytest.raises(
        OrbitError, match=r"could not be fetched from https://127.0.0.1:9: .*needs access to"
    ):
        find_orbit(request("S1A", "2018-04-20T14:00:00"), **cfg, session=session)


def test_cached_resorb_is_used_when_the_bucket_is_unreachable(session, tmp_path, shared_dir):
    shutil.copy(shared_dir / "fixtures" / "s1-reader" / RES_EARLY, tmp_path / RES_EARLY)
    cfg = {"settings": Orbits(asf_url="https://127.0.0.1:9"), "cache_dir": tmp_path,
           "network": Network(retries=0)}  # fmt: skip
    entry = find_orbit(request("S1A", "2023-08-23T13:00:00"), **cfg, session=session)
    assert entry.type == "RESORB" and Path(entry.file).name == RES_EARLY


def test_retimed_copies_cover_dates_the_fixtures_do_not(orbit_bucket, session, tmp_path):
    start = dt.datetime(2016, 9, 1, 14, 19, 13)
    name = orbit_bucket.add_retimed("S1A", start, start + dt.timedelta(seconds=30))
    entry = find_orbit(
        request("S1A", "2016-09-01T14:19:13", 30), **settings(orbit_bucket, tmp_path), session=session)
    assert Path(entry.file).name == name and entry.type == "POEORB"


def test_one_request_per_platform_of_a_date_and_the_manifest(tmp_path, shared_dir):
    from dinsar.inventory import group_acquisitions
    from fixture_scenes import scenes

    acqs = [a for a in group_acquisitions(scenes(shared_dir)) if a.date == "20161007"]
    (req,) = orbit_requests("20161007", acqs)
    assert req.platform == "S1A" and len(req.granules) == 2
    assert req.start == min(s.start_time for s in acqs[0].scenes)
    assert req.stop == max(s.stop_time for s in acqs[0].scenes)
    assert request_from_params(json.loads(json.dumps(request_to_params(req)))) == req
    path = tmp_path / "orbits" / "20161007.json"
    entry = {
        "platform": "S1A",
        "type": "POEORB",
        "file": "/x.EOF",
        "validity": ["a", "b"],
        "granules": list(req.granules),
    }
    OrbitManifest(date="20161007", orbits=[OrbitEntry(**entry)]).write(path)
    assert json.loads(path.read_text()) == {"date": "20161007", "orbits": [entry]}
    assert OrbitManifest.read(path).for_platform("S1A").file == "/x.EOF"
    path.write_text('{"date": "20161007"}')
    with pytest.raises(RecordError, match="not a valid orbit manifest .*orbits.*rerun the orbit"):
        OrbitManifest.read(path)


# --- AUX_CAL -----------------------------------------------------------------------------------


def test_only_ipf_002_36_needs_aux_cal():
    assert needs_aux_cal("002.36") and needs_aux_cal("2.36")
    assert not any(needs_aux_cal(v) for v in ("002.72", "003.20", None, "", "n/a"))


def test_aux_cal_is_fetched_once_and_unpacked_flat(https_server, session, tmp_path):
    url = serve_aux_cal(https_server)
    https_server.clear_log()
    directory = fetch_aux_cal(["S1A", "S1B", "S1A"], tmp_path / "aux_cal", session, url, FAST)
    folders = sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))
    assert folders == [
        "S1A_AUX_CAL_V20140915T100000_G20151125T103928.SAFE",
        "S1A_AUX_CAL_V20190228T092500_G20210104T141310.SAFE",
        "S1B_AUX_CAL_V20140915T100000_G20151125T103928.SAFE",
        "S1B_AUX_CAL_V20190228T092500_G20210104T141310.SAFE",
    ]
    assert (directory / folders[0] / "data" / "s1a-aux-cal.xml").is_file()
    assert len(https_server.requests("/aux-cal/")) == 2
    https_server.clear_log()
    assert fetch_aux_cal(["S1A"], tmp_path / "aux_cal", session, url, FAST) == directory
    assert https_server.requests("/aux-cal/") == []


def test_ipf_is_read_from_the_zip_manifest(tmp_path):
    from harness.safe_factory import write_safe_zip

    granule = "S1A_IW_SLC__1SDV_20150301T141913_20150301T141940_004860_006059_1A2B"
    path = write_safe_zip(
        tmp_path / f"{granule}.zip", granule, [-121.5, 54.0, -120.0, 55.0], ipf="002.36"
    )
    assert ipf_from_zip(path) == "002.36"
    with zipfile.ZipFile(path) as archive:
        assert any(n.endswith("manifest.safe") for n in archive.namelist())
    assert hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324 - a readable zip
