"""Concurrent runs: two workspaces sharing the SLC, orbit and DEM-tile caches stage at the same
time and every file is fetched once and arrives intact; a second Snakemake on a workspace that
is running is refused by Snakemake's lock, which the stale-lock recovery leaves alone."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from dinsar.locks import CLAIMS_FILE, OWNER_FILE, claim_lock, clear_stale_lock, running_run
from harness.joblog import LiveRun, parse
from harness.pipeline import serve_window, user_setup
from harness.server import Fault
from workflow_runner import REPO, SNAKEMAKE, executed_rules, output_of, snakemake, write_config

START, END = "2016-09-01", "2016-10-31"  # 3 dates (two with two slices), 2 pairs
AUX_DATE = "20160901"


def command(base: Path, config: Path, *args: str) -> list[str]:
    return [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(base), *args,
            "--configfile", str(config)]  # fmt: skip


def locks(base: Path) -> list[Path]:
    return sorted((base / ".snakemake" / "locks").glob("*.lock"))


@pytest.fixture
def services(cmr, earthdata, orbit_bucket, dem_tiles, https_server, shared_dir):
    return serve_window(START, END, cmr=cmr, earthdata=earthdata, orbit_bucket=orbit_bucket,
                        dem_tiles=dem_tiles, https_server=https_server, shared_dir=shared_dir,
                        aux_date=AUX_DATE)  # fmt: skip


def test_two_workspaces_share_the_caches_and_a_second_run_is_locked_out(
    tmp_path, services, cmr, earthdata, orbit_bucket, dem_tiles, https_server, ca_bundle
):
    caches = tmp_path / "shared_cache"
    runs = []
    for name in ("one", "two"):
        base = tmp_path / name
        base.mkdir()
        user = user_setup(base, START, END, services, cmr=cmr, earthdata=earthdata,
                          orbit_bucket=orbit_bucket, dem_tiles=dem_tiles, ca_bundle=ca_bundle,
                          caches=caches)  # fmt: skip
        runs.append((base, user, write_config(base, user.config)))
    https_server.clear_log()
    # the first SLC responses are slow (not failed), so the first run is certainly still
    # working when the second command arrives on its workspace
    earthdata.faults.push(Fault(delay=12.0), times=2)
    live = [LiveRun(command(b, c, "stage", "--cores", "2"), u.env) for b, u, c in runs]

    # while the first run works (it holds the lock and has started jobs), the same command on
    # its workspace is refused, and the running one's lock survives the attempt. (Snakemake's
    # own lock would let it through here: it compares the files of the two runs' first DAGs,
    # and the first one's ended at the search checkpoint.)
    first_base, first_user, first_config = runs[0]
    assert live[0].wait_for(lambda r: bool(locks(first_base)) and bool(r.log().started), 120)
    second = subprocess.run(command(first_base, first_config, "stage", "--cores", "2"),
                            env=first_user.env, capture_output=True, text=True, timeout=300)  # fmt: skip
    refused = second.stdout + second.stderr
    assert live[0].running(), "the first run ended before the second command: not a race"
    assert second.returncode != 0, refused[-3000:]
    assert (
        f"dInSAR-Toolkit: another run of this workflow (pid {live[0].proc.pid}) is working "
        f"in {first_base / 'ws'}; wait until it ends" in refused
    ), refused[-3000:]
    assert "--unlock" in refused and "Traceback" not in refused
    assert executed_rules(second) == []
    assert locks(first_base), "the refused run removed the running one's lock"

    for run in live:
        assert run.finish() == 0, run.text[-5000:]

    # each file was fetched once, complete, although both runs wanted it at the same time
    entries = https_server.requests()
    full_gets = Counter(e.path for e in entries if e.status == 200)
    products = {e.path.rsplit("/", 1)[1][:-4] for e in entries if e.path.startswith("/SLC/")}
    assert len(products) == 3
    for name in products:
        product = earthdata.products[name]
        assert full_gets[f"/SLC/S{name[2]}/{name}.zip"] == 1, name
        zip_path = caches / "slc" / f"{name}.zip"
        assert hashlib.md5(zip_path.read_bytes()).hexdigest() == product.md5  # noqa: S324
    for kind, prefix in (("orbit", "/s1-orbits/AUX_"), ("tile", "/dem/Copernicus"),
                         ("aux_cal", "/aux-cal/")):  # fmt: skip
        fetched = Counter(e.path for e in entries if e.path.startswith(prefix) and e.status == 200)
        assert fetched and set(fetched.values()) == {1}, (kind, fetched)
    for eof in (caches / "orbits").glob("*.EOF"):
        assert hashlib.md5(eof.read_bytes()).hexdigest() == orbit_bucket.md5(eof.name)  # noqa: S324
    assert not [p for p in caches.rglob("*") if p.name.endswith((".part", ".tmp"))]
    # both workspaces use the very same cached files
    manifests = [
        json.loads((base / "ws" / "orbits" / "20161007.json").read_text()) for base, _, _ in runs
    ]
    assert manifests[0]["orbits"] == manifests[1]["orbits"]
    for run in live:
        assert not locks(runs[live.index(run)][0])  # both ended cleanly, locks released

    # The same race, made certain: a third workspace plans its downloads while the zips are
    # not there, and they appear (another workspace finished them) once its first download job
    # has started. Snakemake deletes a job's existing outputs before running it, unless they
    # are update() outputs: the later jobs (one at a time: --cores 1) must keep their zips.
    base = tmp_path / "three"
    base.mkdir()
    user = user_setup(base, START, END, services, cmr=cmr, earthdata=earthdata,
                      orbit_bucket=orbit_bucket, dem_tiles=dem_tiles, ca_bundle=ca_bundle,
                      caches=caches)  # fmt: skip
    zips = sorted((caches / "slc").glob("*.zip"))
    digests = {z.name: z.read_bytes() for z in zips}
    for z in zips:
        z.rename(z.with_name(z.name + ".aside"))
    https_server.clear_log()
    third = LiveRun(command(base, write_config(base, user.config), "stage", "--cores", "1"),
                    user.env)  # fmt: skip
    assert third.wait_for(lambda r: "download_slc" in [j.rule for j in r.log().started], 120)
    for z in zips:
        z.with_name(z.name + ".aside").rename(z)
    assert third.finish() == 0, third.text[-5000:]
    started = [j for j in parse(third.text).started if j.rule == "download_slc"]
    assert len(started) == 3 and "were not present when the DAG was created" in third.text
    fetched = [e.path for e in https_server.requests("/SLC/") if e.status == 200]
    assert len(fetched) <= 1  # only the job already running when the zips came back
    assert {z.name: z.read_bytes() for z in zips} == digests


def test_a_lock_from_another_machine_is_refused_by_snakemake_until_unlock(
    tmp_path, services, cmr, earthdata, orbit_bucket, dem_tiles, ca_bundle
):
    """A run on another node of a shared file system holds the workspace: nothing on this host
    can prove it gone, so Snakemake's own lock refuses, and `--unlock` (the README's advice
    once that run is known to be over) lets the same command through."""
    user = user_setup(tmp_path, START, END, services, cmr=cmr, earthdata=earthdata,
                      orbit_bucket=orbit_bucket, dem_tiles=dem_tiles, ca_bundle=ca_bundle)  # fmt: skip
    config = write_config(tmp_path, user.config)
    target = user.workspace / "inventory" / "scenes.geojson"
    folder = tmp_path / ".snakemake" / "locks"
    folder.mkdir(parents=True)
    (folder / "0.output.lock").write_text(f"{target}\n")
    owner = {"host": "other-node", "pid": os.getpid(), "start_tick": 1}
    (tmp_path / ".snakemake" / OWNER_FILE).write_text(json.dumps(owner))

    refused = snakemake(tmp_path, config, str(target), "--cores", "1", env=user.env)
    text = output_of(refused)
    assert refused.returncode != 0 and "Directory cannot be locked" in text, text[-3000:]
    assert "--unlock" in text and not target.exists() and executed_rules(refused) == []
    assert (folder / "0.output.lock").exists()

    unlocked = snakemake(tmp_path, config, "--unlock", env=user.env)
    assert unlocked.returncode == 0, output_of(unlocked)[-3000:]
    assert not list(folder.glob("*.lock"))
    again = snakemake(tmp_path, config, str(target), "--cores", "1", env=user.env)
    assert again.returncode == 0, output_of(again)[-3000:]
    assert executed_rules(again) == ["search"] and target.exists()


# --- the stale-lock recovery never takes a live run's lock -----------------------------------


def fake_snakemake_lock(workdir: Path) -> list[Path]:
    folder = workdir / ".snakemake" / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / "0.input.lock", folder / "0.output.lock"]
    for f in files:
        f.write_text("ws/inventory/scenes.geojson\n")
    return files


def dead_owner(workdir: Path) -> None:
    """The owner record a finished (or killed) earlier run leaves behind."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    owner = {"host": socket.gethostname(), "pid": int(done.stdout), "start_tick": 1}
    (workdir / ".snakemake" / OWNER_FILE).write_text(json.dumps(owner))


def test_a_run_between_taking_the_lock_and_onstart_keeps_its_lock(tmp_path):
    """A run parses the Snakefile (claim), Snakemake locks, builds the DAG (conda envs can take
    minutes), then onstart records the owner. In between, the owner record on disk is the last
    run's: without the claim, a second run would take this live run's lock for a dead one."""
    dot = tmp_path / ".snakemake"
    dot.mkdir()
    dead_owner(tmp_path)
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[2]); from dinsar.locks import claim_lock;"
        "claim_lock(sys.argv[1]); print('claimed', flush=True); time.sleep(60)"
    )
    running = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(REPO / "scripts")],
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert running.stdout is not None and running.stdout.readline().strip() == "claimed"
        files = fake_snakemake_lock(tmp_path)  # Snakemake took the lock for that run
        assert clear_stale_lock(tmp_path) is None
        assert all(f.exists() for f in files)
        message = running_run(tmp_path)  # and a newcomer is told to wait
        assert message and f"pid {running.pid}" in message and "--unlock" in message
        claim_lock(tmp_path)  # the refused second run also claims, then exits: still no removal
        assert clear_stale_lock(tmp_path) is None and all(f.exists() for f in files)
    finally:
        running.kill()
        running.wait()
    # killed before onstart: once every claimant is gone (this test process claimed above and
    # is alive, so its claim is dropped here), the lock is stale and the next run removes it
    claims = json.loads((dot / CLAIMS_FILE).read_text())
    (dot / CLAIMS_FILE).write_text(json.dumps([c for c in claims if c["pid"] != os.getpid()]))
    assert running_run(tmp_path) is None
    message = clear_stale_lock(tmp_path)
    assert message and str(running.pid) in message and "killed" in message
    assert not any(f.exists() for f in files)
    assert not (dot / CLAIMS_FILE).exists() and not (dot / OWNER_FILE).exists()


def test_claims_of_finished_runs_are_dropped_while_nobody_holds_the_lock(tmp_path):
    dot = tmp_path / ".snakemake"
    dot.mkdir()
    stale = [{"host": socket.gethostname(), "pid": 999_999_999, "start_tick": 1},
             {"host": "other-node", "pid": 12, "start_tick": 3}]  # fmt: skip
    (dot / CLAIMS_FILE).write_text(json.dumps(stale))
    claim_lock(tmp_path)
    assert [c["pid"] for c in json.loads((dot / CLAIMS_FILE).read_text())] == [os.getpid()]
    # while a lock is held, nothing is dropped: any claimant may be its holder
    fake_snakemake_lock(tmp_path)
    (dot / CLAIMS_FILE).write_text(json.dumps(stale))
    claim_lock(tmp_path)
    assert [c["pid"] for c in json.loads((dot / CLAIMS_FILE).read_text())] == [
        999_999_999, 12, os.getpid()
    ]  # fmt: skip
    assert clear_stale_lock(tmp_path) is None  # a claimant on another host: not ours to judge
    assert running_run(tmp_path) is None  # nor a reason to refuse: only live local holders are
