"""Failures stop early, once, with the cause last: staging jobs are not retried by Snakemake, a
missing or rejected Earthdata login stops every download before one starts, and a failed run
ends with a summary of each failed job, its cause and what to do."""

from __future__ import annotations

import datetime as dt

import pytest

from fixture_scenes import TEST_ROI
from harness.earthdata import netrc_text
from harness.pipeline import serve_window, user_setup
from workflow_runner import executed_rules, snakemake, write_config

START, END = "2016-09-01", "2016-10-31"  # 3 dates, 2 pairs
AUX_DATE = "20160901"  # an IPF 002.36 date: AUX_CAL is a download of `stage` too
LAST_SCREEN = 24  # lines


@pytest.fixture
def services(cmr, earthdata, orbit_bucket, dem_tiles, https_server, shared_dir):
    return serve_window(START, END, cmr=cmr, earthdata=earthdata, orbit_bucket=orbit_bucket,
                        dem_tiles=dem_tiles, https_server=https_server, shared_dir=shared_dir,
                        aux_date=AUX_DATE)  # fmt: skip


def last_screen(text: str) -> str:
    return "\n".join(text.rstrip().splitlines()[-LAST_SCREEN:])


@pytest.mark.parametrize("login", ["missing", "rejected"])
def test_stage_without_a_valid_login_stops_before_any_download(
    login, tmp_path, services, cmr, earthdata, orbit_bucket, dem_tiles, https_server, ca_bundle
):
    user = user_setup(tmp_path, START, END, services, cmr=cmr, earthdata=earthdata,
                      orbit_bucket=orbit_bucket, dem_tiles=dem_tiles, ca_bundle=ca_bundle)  # fmt: skip
    netrc = user.home / ".netrc"
    if login == "missing":
        netrc.unlink()
        cause = "no Earthdata credentials found"
    else:
        netrc.write_text(netrc_text("localhost", earthdata.user[0], "not-the-password"))
        cause = "Earthdata Login rejected the credentials"
    https_server.clear_log()
    # the default profile applies (keep-going, retries: 1), as for a user
    result = snakemake(tmp_path, write_config(tmp_path, user.config), "stage", "-c2", env=user.env)
    assert result.returncode != 0, result.stderr[-3000:]
    ran = executed_rules(result)
    # the login check ran once (no retry) and nothing that downloads started after it
    assert ran == ["search", "preflight"], ran
    assert not (user.workspace / "orbits").exists() and not (user.workspace / "aux_cal").exists()
    assert not [e for e in https_server.requests() if e.path.startswith(("/s1-orbits/", "/aux-cal/", "/dem/"))]
    assert not list((tmp_path / "shared_cache" / "slc").glob("*.zip"))
    # the cause is on the last screen, with what to do, and no hint to run `stage` from `stage`
    end = last_screen(result.stderr)
    assert cause in end and "preflight" in end, end
    assert "snakemake stage" not in end and "Traceback" not in result.stderr
    # the summary of the failed jobs comes after everything Snakemake printed about them
    summary = end[end.index("1 job(s) failed") :]
    (line,) = [x for x in summary.splitlines() if x.startswith("  preflight: ")]
    assert cause in line and "Error in rule" not in summary, end


def test_summary_names_each_failed_job_with_its_cause(tmp_path):
    from dinsar.failures import MAX_JOBS, FailedJob, failure_summary

    ours = tmp_path / "orbits.log"
    ours.write_text(
        "2026-01-01 10:00:00,000 INFO dinsar.orbits: listing\n"
        "2026-01-01 10:00:01,000 ERROR dinsar: orbit for S1A ...: host x does not resolve; "
        "check orbits.asf_url\n"
    )
    crash = tmp_path / "plan.log"
    crash.write_text("Traceback (most recent call last):\nValueError: boom\n")
    text = failure_summary([
        FailedJob("orbits", (("date", "20160901"),), (str(ours),)),
        FailedJob("plan", (), (str(crash),)),
    ])  # fmt: skip
    lines = text.splitlines()
    assert lines[0] == "dInSAR-Toolkit: 2 job(s) failed; the jobs that need them did not run:"
    assert lines[1] == "  orbits (date=20160901): orbit for S1A ...: host x does not resolve; check orbits.asf_url"
    assert lines[2] == f"  plan: failed without a message of ours (see {crash})"
    assert "report it" in lines[3] and "snakemake" not in text
    many = [FailedJob("download_slc", (("granule", f"G{i:02d}"),)) for i in range(MAX_JOBS + 3)]
    assert "... and 3 more" in failure_summary(many)
    assert failure_summary([]) == ""


# --- a host name that does not resolve is not retried -----------------------------------------

NOWHERE = "no-such-host.invalid"


@pytest.fixture
def dns_lookups(monkeypatch):
    """Lookups of NOWHERE fail as a resolver says "Name or service not known" (no query leaves
    this process); returns the list of those lookups."""
    import socket

    seen: list[str] = []
    original = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == NOWHERE:
            seen.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return original(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen


def test_a_name_that_does_not_resolve_is_not_retried(dns_lookups, tmp_path, ca_bundle):
    import requests
    from shapely import wkt

    from dinsar.config import Network, Orbits, validate_config
    from dinsar.download import DownloadError, Target, download
    from dinsar.orbits import OrbitError, OrbitRequest, find_orbit
    from dinsar.retry import is_transient_network_error, unresolved_host
    from dinsar.search import SearchError, search_asf

    network = Network(retries=3, backoff=0.01, timeout=5)
    with pytest.raises(requests.ConnectionError) as caught:
        requests.get(f"https://{NOWHERE}/x", timeout=5)
    assert unresolved_host(caught.value) == NOWHERE and not is_transient_network_error(caught.value)
    assert is_transient_network_error(requests.ConnectionError("Connection reset by peer"))

    dns_lookups.clear()
    target = Target(f"https://{NOWHERE}/S1A.zip", tmp_path / "S1A.zip", label="S1A.zip")
    with pytest.raises(DownloadError, match=f"S1A.zip: the host name {NOWHERE} does not resolve"):
        download(target, requests.Session(), network)
    assert dns_lookups == [NOWHERE]  # one try, no retry

    dns_lookups.clear()
    request = OrbitRequest("20160901", "S1A", *(dt.datetime(2016, 9, 1, 14, 19, s, tzinfo=dt.UTC) for s in (13, 43)), ())
    with pytest.raises(OrbitError, match=f"the host name {NOWHERE} does not resolve.*orbits.asf_url") as caught:
        find_orbit(request, Orbits(asf_url=f"https://{NOWHERE}"), tmp_path, network, requests.Session())
    assert "snakemake stage" not in str(caught.value)
    assert dns_lookups == [NOWHERE]

    dns_lookups.clear()
    cfg = validate_config({"workspace": str(tmp_path / "ws"), "roi": TEST_ROI,
                           "dates": {"start": "2016-09-01", "end": "2016-10-31"},
                           "search": {"host": NOWHERE},
                           "network": {"ca_bundle": ca_bundle, "retries": 3, "backoff": 0.01}})  # fmt: skip
    with pytest.raises(SearchError, match=f"the host name {NOWHERE} does not resolve.*search.host"):
        search_asf(cfg, wkt.loads(TEST_ROI))
    assert dns_lookups == [NOWHERE]


def test_no_scenes_is_said_once_and_last(tmp_path, services, cmr, earthdata, orbit_bucket, dem_tiles, ca_bundle):
    """A search that finds nothing fails the same way every time: one search job, its cause in
    the summary (the profile's retries: 1 is not for the staging rules)."""
    user = user_setup(tmp_path, "2030-01-01", "2030-02-01", services, cmr=cmr, earthdata=earthdata,
                      orbit_bucket=orbit_bucket, dem_tiles=dem_tiles, ca_bundle=ca_bundle)  # fmt: skip
    result = snakemake(tmp_path, write_config(tmp_path, user.config), "stage", "-c2", env=user.env)
    assert result.returncode != 0
    assert executed_rules(result) == ["search"], result.stderr[-3000:]
    end = last_screen(result.stderr)
    (line,) = [x for x in end.splitlines() if x.startswith("  search: ")]
    assert "1 job(s) failed" in end and "Traceback" not in result.stderr, end
    assert "no Sentinel-1 IW SLC scenes found" in line and "widen the dates" in line
