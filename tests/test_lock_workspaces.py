"""The lock guard works per workspace: while a real run works on workspace A (from the project
folder), a plan or a dry run on workspace B runs, a dry run on A runs, and a second real run
on A (`plan` is a real target, not a dry run) is refused.

The run on A is a process that recorded itself the way a real run does (its claim, with its
workspace, and Snakemake's lock files in the project folder's .snakemake), so the test does not
depend on how long a real run takes to reach a given point.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dinsar.locks import CLAIMS_FILE, claim_lock, release_claim, running_run, runs_jobs
from fixture_scenes import TEST_ROI, write_asf_export
from workflow_runner import REPO, executed_rules, output_of, snakemake, write_config


@pytest.fixture
def run_on_a(tmp_path):
    """A live process that holds the project folder's lock for workspace A."""
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[3]); from dinsar.locks import claim_lock, "
        "record_lock_owner; claim_lock(sys.argv[1], sys.argv[2]); "
        "record_lock_owner(sys.argv[1], sys.argv[2]); print('holding', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path), str(tmp_path / "ws_a"), str(REPO / "scripts")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        locks = tmp_path / ".snakemake" / "locks"  # what Snakemake wrote for that run
        locks.mkdir(parents=True)
        (locks / "0.output.lock").write_text(f"{tmp_path / 'ws_a' / 'orbits' / '20161007.json'}\n")
        (locks / "0.input.lock").write_text("")
        yield holder
    finally:
        holder.kill()
        holder.wait()


def config(tmp_path: Path, shared_dir: Path, name: str) -> Path:
    export = tmp_path / "asf_export.geojson"
    if not export.exists():
        write_asf_export(shared_dir, export)
    cfg = {"workspace": str(tmp_path / f"ws_{name}"), "roi": TEST_ROI, "inventory": str(export),
           "dates": {"start": "2016-09-01", "end": "2016-10-31"}}  # fmt: skip
    return write_config(tmp_path, cfg, f"{name}.yaml")


def test_plan_and_dry_run_on_another_workspace_run_while_a_run_works(tmp_path, shared_dir, run_on_a):
    config_a, config_b = (config(tmp_path, shared_dir, n) for n in ("a", "b"))
    refusal = "another run of this workflow"

    # a plan on workspace B, from the same project folder: a real run, of another workspace
    plan_b = snakemake(tmp_path, config_b, "plan", "-c1")
    assert plan_b.returncode == 0, output_of(plan_b)[-3000:]
    assert refusal not in output_of(plan_b) and "plan" in executed_rules(plan_b)
    assert (tmp_path / "ws_b" / "plan" / "pairs.csv").is_file()

    # dry runs, on B and on A itself: they run nothing, so they wait for nobody
    for cfg in (config_b, config_a):
        dry = snakemake(tmp_path, cfg, "-n", "-c1")
        assert dry.returncode == 0 and refusal not in output_of(dry), output_of(dry)[-3000:]
    assert not (tmp_path / "ws_a" / "plan").exists()

    # a real run on A, be it only `plan`, is refused with one line naming A's workspace
    plan_a = snakemake(tmp_path, config_a, "plan", "-c1")
    text = output_of(plan_a)
    assert plan_a.returncode != 0 and executed_rules(plan_a) == [], text[-3000:]
    assert f"{refusal} (pid {run_on_a.pid}) is working in {tmp_path / 'ws_a'}" in text, text[-3000:]
    assert "Traceback" not in text and not (tmp_path / "ws_a" / "plan").exists()
    # the runs on B and the refused one left A's claim alone (Snakemake itself removed the
    # whole locks folder when the plan on B ended: the guard must not depend on it)
    claims = json.loads((tmp_path / ".snakemake" / CLAIMS_FILE).read_text())
    assert [c["pid"] for c in claims] == [run_on_a.pid]


def test_the_guard_compares_workspaces(tmp_path, run_on_a):
    assert running_run(tmp_path, tmp_path / "ws_b") is None
    assert f"pid {run_on_a.pid}" in (running_run(tmp_path, tmp_path / "ws_a") or "")
    # the holder's claim holds A also once Snakemake's lock files are gone
    for lock in (tmp_path / ".snakemake" / "locks").glob("*.lock"):
        lock.unlink()
    assert f"pid {run_on_a.pid}" in (running_run(tmp_path, tmp_path / "ws_a") or "")
    # a run that ended releases its claim, also when its process lives on (API, notebook)
    claim_lock(tmp_path, tmp_path / "ws_a")
    release_claim(tmp_path)
    claims = json.loads((tmp_path / ".snakemake" / CLAIMS_FILE).read_text())
    assert [c["pid"] for c in claims] == [run_on_a.pid]


@pytest.mark.parametrize(
    ("options", "real"),
    [({"dryrun": True}, False), ({"lint": "text"}, False), ({"report": "r.html"}, False),
     ({"unlock": True}, False), ({"dryrun": False, "targets": ["plan"]}, True), ({}, True)],
)  # fmt: skip
def test_which_invocations_run_jobs(options, real):
    assert runs_jobs(options) is real
