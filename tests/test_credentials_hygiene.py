"""The Earthdata password and token never show: not in logs, topsApp.xml, the report, Snakemake's
benchmark files or any other file a run writes, nor on a command line while it runs (`ps`).

* A full run, search to products, then ``snakemake --report``, logs in from ``~/.netrc`` while
  EARTHDATA_USERNAME/PASSWORD and EARTHDATA_TOKEN are set too: every process of the run (the
  topsApp steps, the exports, the report) carries all three secrets in its environment, and
  none may write one anywhere. The .netrc is readable by others: the run warns.
* The environment password and the token are each used for real (no .netrc) to log in and
  download the SLCs: the jobs that use credentials, watched the same way.
* No benchmark script reads credentials at all.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from harness.pipeline import serve_window, user_setup
from harness.watch import run_watched
from workflow_runner import REPO, SNAKEMAKE, executed_rules, write_config

START, END = "2016-10-07", "2016-10-31"  # 2 dates, 1 pair
PAIR = "20161007_20161031"
GRANULES = (
    "S1A_IW_SLC__1SDV_20161007T141928_20161007T141956_013385_0155BE_46C1",
    "S1A_IW_SLC__1SDV_20161031T141928_20161031T141956_013735_0160AF_EEEE",
)


def command(base: Path, config: Path, *args: str) -> list[str]:
    return [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(base), *args,
            "--configfile", str(config)]  # fmt: skip


def files_with(root: Path, secrets: list[str], skip: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and path != skip:
            data = path.read_bytes()
            found += [f"{path}: {s[:4]}..." for s in secrets if s.encode() in data]
    return found


@pytest.fixture
def user(tmp_path, cmr, earthdata, orbit_bucket, dem_tiles, https_server, ca_bundle, shared_dir):
    services = serve_window(START, END, cmr=cmr, earthdata=earthdata, orbit_bucket=orbit_bucket,
                            dem_tiles=dem_tiles, https_server=https_server, shared_dir=shared_dir)  # fmt: skip
    setup = user_setup(tmp_path, START, END, services, cmr=cmr, earthdata=earthdata,
                       orbit_bucket=orbit_bucket, dem_tiles=dem_tiles, ca_bundle=ca_bundle)  # fmt: skip
    token = earthdata.token
    setup.secrets += [token, base64.b64encode(token.encode()).decode()]
    return setup


def test_a_full_run_and_its_report_show_no_secret(tmp_path, user, earthdata) -> None:
    name, password = earthdata.user
    netrc = user.home / ".netrc"
    netrc.chmod(0o644)  # readable by everyone: a warning, not a failure
    env = {**user.env, "EARTHDATA_USERNAME": name, "EARTHDATA_PASSWORD": password,
           "EARTHDATA_TOKEN": earthdata.token}  # fmt: skip
    config = write_config(tmp_path, user.config)

    run = run_watched(command(tmp_path, config, "--cores", "2"), env)
    assert run.result.returncode == 0, run.result.stdout[-5000:]
    assert {"download_slc", "isce_unwrap", "export_pair", "processing_report"} <= set(
        executed_rules(run.result)
    )
    report = tmp_path / "report.html"
    built = run_watched(command(tmp_path, config, "--report", str(report)), env)
    assert built.result.returncode == 0, built.result.stdout[-3000:]

    ws = user.workspace
    xml = (ws / "work" / PAIR / "topsApp.xml").read_text()
    assert GRANULES[0] in xml and report.stat().st_size > 10_000  # both exist and are scanned
    assert len(run.pids) > 20  # every job and topsApp step was a process we looked at
    assert run.leaks(user.secrets) == [] and built.leaks(user.secrets) == []
    for output in (run.result.stdout, built.result.stdout):
        assert not any(s in output for s in user.secrets)
    # every file under the run's folder: workspace, caches, logs, benchmarks, .snakemake,
    # the report; only the .netrc itself holds the password
    assert files_with(tmp_path, user.secrets, skip=netrc) == []
    warning = f"{netrc} is readable or writable by other users (mode 0o644): run 'chmod 600"
    assert warning in (ws / "logs" / "preflight" / "preflight.log").read_text()
    assert warning in run.result.stdout
    log = (ws / "logs" / "download_slc" / f"{GRANULES[0]}.log").read_text()
    assert f"Earthdata user '{name}' from ~/.netrc (machine localhost)" in log


@pytest.mark.parametrize("source", ["password", "token"])
def test_each_credential_source_stays_secret_while_downloading(
    tmp_path, user, earthdata, https_server, source
) -> None:
    name, password = earthdata.user
    netrc = user.home / ".netrc"
    netrc.unlink()
    env = dict(user.env)
    if source == "password":
        env |= {"EARTHDATA_USERNAME": name, "EARTHDATA_PASSWORD": password}
        used = (
            f"Earthdata user '{name}' from the environment (EARTHDATA_USERNAME/EARTHDATA_PASSWORD)"
        )
    else:
        env |= {"EARTHDATA_TOKEN": earthdata.token}
        used = "an Earthdata token from the environment (EARTHDATA_TOKEN)"
    config = write_config(tmp_path, user.config)
    zips = [str(Path(user.config["cache"]["slc"]) / f"{g}.zip") for g in GRANULES]

    run = run_watched(command(tmp_path, config, *zips, "--cores", "2"), env)
    assert run.result.returncode == 0, run.result.stdout[-5000:]
    assert executed_rules(run.result).count("download_slc") == 2
    # the source really was used: a Basic login to Earthdata, or the token as a bearer
    if source == "password":
        assert (name, True) in earthdata.logins
    else:
        assert earthdata.logins == []
        bearer = [e for e in earthdata.product_requests() if e.header("Authorization")]
        assert bearer and all(
            e.header("Authorization") == f"Bearer {earthdata.token}" for e in bearer
        )
    assert run.leaks(user.secrets) == [] and len(run.pids) > 3
    assert not any(s in run.result.stdout for s in user.secrets)
    assert files_with(tmp_path, user.secrets, skip=netrc) == []
    for granule in GRANULES:
        log = (user.workspace / "logs" / "download_slc" / f"{granule}.log").read_text()
        assert used in log and "md5 verified" in log


# Benchmarks that run the whole workflow through the harness's Earthdata emulation, with its
# throw-away test account in a private HOME (tests/harness/real_services.py: the same route as
# the real-topsApp tests); no other benchmark may touch credentials.
WORKFLOW_BENCHMARKS = {"isce_groups.py"}


def test_no_benchmark_script_reads_credentials() -> None:
    """The benchmarks download from their own local server without any login; if one ever
    needs credentials, it must be added to the checks above."""
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        text = script.read_text().lower()
        if script.name in WORKFLOW_BENCHMARKS:
            assert "real_services" in text and ".netrc" not in text, script.name
            continue
        for word in ("credentials", "netrc", "earthdata", "password", "token"):
            assert word not in text, f"{script.name} mentions {word!r}"
