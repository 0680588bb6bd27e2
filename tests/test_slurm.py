"""profiles/slurm on a real SLURM: the workflow's jobs run through sbatch on a single-node
cluster started by the test (munge, MariaDB, slurmdbd, slurmctld, slurmd; tests/harness/
slurm_cluster.py), with the topsApp double standing in for ISCE2.

The profile is used as a user would: a copy with only the account and the partition filled
in. The workspace is staged first (what `snakemake stage` does on a login node), then:

* run A on SLURM; the unwrap job is killed with scancel while it runs (after step unwrap,
  before unwrap2stage), and again when Snakemake retries it; run A fails;
* run B, the same command, resumes: only unwrap and geocode run, nothing before them;
* sacct lists every job, COMPLETED (the killed ones CANCELLED), with the profile's account,
  partition, threads and the rules' memory and wall time; localrules never reach sacct;
* the products are byte-identical to a local `--cores 2` run of the same staged workspace.

The profile checks at the top need no cluster and run everywhere.
"""

from __future__ import annotations

import datetime as dt
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dinsar.config import validate_config
from dinsar.isce_run import GROUPS, memory_mb, runtime_min
from harness import REPO_ROOT
from harness import safe_factory as sf
from harness.slurm_cluster import SlurmCluster, unavailable_reason
from workflow_runner import SNAKEMAKE, executed_rules, output_of, snakemake, write_config

PROFILE = REPO_ROOT / "profiles" / "slurm" / "config.yaml"
DEFAULT_PROFILE = REPO_ROOT / "profiles" / "default" / "config.yaml"
DOUBLE = REPO_ROOT / "tests" / "topsapp_double" / "topsApp.py"
ISCE_RULES = tuple(group.rule for group in GROUPS)
LOCAL_RULES = ("search", "topsapp_xml", "isce_cleanup")
ROI = "POLYGON ((-121.2 54.5, -120.8 54.5, -120.8 54.8, -121.2 54.8, -121.2 54.5))"
STACK = "S1A_IW_SLC__1SSV_20160528T141908_20160528T141938_011460_011746_335C_stack.yml"
# one pair keeps the test short: every step is a SLURM job that starts Snakemake twice
DATES = ["20161007", "20161031"]
PAIRS = ["20161007_20161031"]
KILLED = PAIRS[0]  # its unwrap job is cancelled in run A
LOOKS = (19, 7)  # config/config.yaml defaults: range, azimuth
RUN_TIMEOUT_S = 420  # one Snakemake run; `timeout -k` ends it if the plugin ever hangs


# --- the profile itself ------------------------------------------------------------------------


def profile_lines() -> list[str]:
    return PROFILE.read_text().splitlines()


def test_every_profile_entry_has_a_comment() -> None:
    """Each setting carries a comment on its line or the line above (a nested rule name that
    only groups its commented settings needs none)."""
    lines = profile_lines()

    def indent(text: str) -> int:
        return len(text) - len(text.lstrip())

    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "#" in line:
            continue
        if i and lines[i - 1].strip().startswith("#"):
            continue
        following = next((x for x in lines[i + 1 :] if x.strip()), "")
        nested_parent = indent(line) > 0 and indent(following) > indent(line)
        assert nested_parent, f"profiles/slurm line {i + 1} has no comment: {line}"


def test_profile_uses_slurm_with_placeholders_for_account_and_partition(tmp_path: Path) -> None:
    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["executor"] == "slurm"
    for key in (
        "jobs",
        "default-resources",
        "set-threads",
        "retries",
        "latency-wait",
        "rerun-incomplete",
        "resources",
    ):
        assert key in profile, key
    assert "downloads=4" in profile["resources"]
    # the two values a user fills in are commented placeholders, nothing else needs editing
    text = PROFILE.read_text()
    assert re.search(r'^\s*# slurm_account: "<your account>"', text, re.M)
    assert re.search(r'^\s*# slurm_partition: "<your partition>"', text, re.M)
    assert "slurm_account" not in profile["default-resources"]
    # rule names that Snakemake would silently ignore if they were wrong
    # (the step-group rules are generated in a loop, so ask Snakemake for the rule names)
    listed = snakemake(tmp_path, REPO_ROOT / "config" / "roi.yaml", "--list-rules")
    assert listed.returncode == 0, output_of(listed)
    rules = set(listed.stdout.split())
    assert set(ISCE_RULES) <= rules
    assert set(ISCE_RULES) <= set(profile["set-threads"]) <= rules
    assert set(profile["set-resources"]) <= rules
    grouped = {entry.split("=")[0] for entry in profile["groups"]}
    assert grouped <= rules, grouped - rules
    assert {e.split("=")[0] for e in profile["group-components"]} == {
        e.split("=")[1] for e in profile["groups"]
    }


def test_shared_keys_agree_with_the_default_profile() -> None:
    """Snakemake loads profiles/default as the workflow profile after --profile, and it wins on
    keys both set: they must hold the same values, or the SLURM profile's would be ignored."""
    slurm = yaml.safe_load(PROFILE.read_text())
    default = yaml.safe_load(DEFAULT_PROFILE.read_text())
    for key in set(slurm) & set(default):
        assert slurm[key] == default[key], (
            f"{key}: profiles/slurm {slurm[key]!r} != profiles/default {default[key]!r}"
        )


def filled_profile(directory: Path, account: str, partition: str) -> Path:
    """A copy of profiles/slurm with the two placeholders filled in, as a user would do."""
    text = PROFILE.read_text()
    filled = text.replace('# slurm_account: "<your account>"', f'slurm_account: "{account}"')
    filled = filled.replace(
        '# slurm_partition: "<your partition>"', f'slurm_partition: "{partition}"'
    )
    changed = [a for a, b in zip(text.splitlines(), filled.splitlines(), strict=True) if a != b]
    assert len(changed) == 2, "the placeholders in profiles/slurm changed; update this test"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(filled)
    return directory


def test_snakemake_accepts_the_profile(tmp_path: Path, shared_dir: Path) -> None:
    """Every key is a valid Snakemake 9 / plugin option: a dry run with the filled-in copy."""
    from fixture_scenes import TEST_ROI, write_asf_export

    export = write_asf_export(shared_dir, tmp_path / "asf_export.geojson")
    config = {"workspace": str(tmp_path / "ws"), "roi": TEST_ROI, "inventory": str(export),
              "dates": {"start": "2016-09-01", "end": "2017-03-01"}}  # fmt: skip
    profile = filled_profile(tmp_path / "profile", "my_account", "my_partition")
    result = snakemake(tmp_path, config, "plan", "-n", "--profile", str(profile))
    text = output_of(result)
    assert result.returncode == 0, text
    assert "slurm_account=my_account" in text and "slurm_partition=my_partition" in text


# --- the workflow on a real cluster ------------------------------------------------------------


@pytest.fixture(scope="session")
def slurm_cluster(request: pytest.FixtureRequest) -> Iterator[SlurmCluster]:
    reason = unavailable_reason()
    if reason:
        # CI (.ci/run) installs the packages and sets this: there, a missing cluster is an error
        if os.environ.get("DINSAR_REQUIRE_SLURM") == "1":
            pytest.fail(f"DINSAR_REQUIRE_SLURM=1 but no SLURM test cluster: {reason}")
        pytest.skip(f"no SLURM test cluster: {reason}")
    cluster = SlurmCluster()

    def stop() -> None:
        cluster.stop()  # every daemon by its PID, also after a failed start or test
        assert not cluster.leftover_pids(), (
            f"SLURM daemons still running: {cluster.leftover_pids()}"
        )

    request.addfinalizer(stop)
    cluster.start()
    yield cluster


HOLDING_TOPSAPP = """#!{python}
# topsApp.py for the SLURM test: the double, but in the pair named by $DINSAR_TEST_HOLD_PAIR
# the unwrap group runs step unwrap, reports its SLURM job id and then waits to be killed
import os, subprocess, sys, time
from pathlib import Path
DOUBLE = {double!r}
args = sys.argv[1:]
hold = os.environ.get("DINSAR_TEST_HOLD_PAIR")
if hold and Path.cwd().name == hold and "--start=unwrap" in args:
    subprocess.run([sys.executable, DOUBLE, "topsApp.xml", "--dostep=unwrap"], check=True)
    marker = Path(os.environ["DINSAR_TEST_HOLD_DIR"]) / ("running." + os.environ.get("SLURM_JOB_ID", "local"))
    marker.write_text(str(os.getpid()))
    time.sleep(600)
os.execv(sys.executable, [sys.executable, DOUBLE, *args])
"""


def stage(workdir: Path, shared_dir: Path) -> dict:
    """Plan from the saved search, then the inputs the staging rules would have downloaded."""
    import asf_search
    from asf_search.search.search_generator import as_ASFProduct

    records = yaml.safe_load((shared_dir / "fixtures" / "asf_search" / STACK).read_text())
    session = asf_search.ASFSession()
    products = [as_ASFProduct({"umm": r["umm"], "meta": r["meta"]}, session) for r in records]
    inventory = workdir / "stack.geojson"
    inventory.write_text(json.dumps(asf_search.ASFSearchResults(products).geojson()))
    topsapp = workdir / "topsapp_holding.py"
    topsapp.write_text(HOLDING_TOPSAPP.format(python=sys.executable, double=str(DOUBLE)))
    topsapp.chmod(0o755)
    config = {
        # relative: the same config and Snakemake metadata serve the copies of this directory
        "workspace": "ws",
        "roi": ROI,
        "inventory": str(inventory),
        "dates": {"start": "2016-10-07", "end": "2016-10-31"},
        "isce": {
            "topsapp": [sys.executable, str(topsapp)],
            "range_looks": LOOKS[0],
            "azimuth_looks": LOOKS[1],
        },
        "keep": "all",
    }
    write_config(workdir, config)
    result = snakemake(workdir, workdir / "config.yaml", "--cores", "1", "ws/inventory/dates.csv")
    assert result.returncode == 0, output_of(result)
    ws = workdir / "ws"
    sf.stage_inputs(ws, ws / "cache" / "slc", ws / "inventory" / "scenes.geojson", DATES,
                    dem_bounds=[-121.6, 54.2, -120.4, 55.1], dem_posting=1 / 400)  # fmt: skip
    return config


def targets() -> list[str]:
    """Every pair's geocoded topsApp products (the `isce` target)."""
    return ["isce"]


def run_env(cluster: SlurmCluster, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in cluster.env.items() if not k.startswith("DINSAR_")}
    # the double's shebang and the workflow's scripts use this interpreter
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    env["ISCE_HOME"] = ""
    # topsApp here is a wrapper script elsewhere (HOLDING_TOPSAPP): the double's modules, which
    # its saved state refers to, are on the path as ISCE's are for a wrapper around ISCE
    env["PYTHONPATH"] = str(DOUBLE.parent)
    env.update(extra)
    return env


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    return [
        "timeout", "-k", "15", str(RUN_TIMEOUT_S),
        SNAKEMAKE, "-s", str(REPO_ROOT / "Snakefile"), "-d", str(workdir), *args,
        "--configfile", str(workdir / "config.yaml"),
    ]  # fmt: skip


def slurm_args(profile: Path) -> list[str]:
    # the profile as filled in by the user; only the first status query comes sooner than the
    # profile's 20 s, to keep the test short
    return ["--profile", str(profile), "--slurm-init-seconds-before-status-checks", "3", *targets()]


def cancel_held_jobs(
    proc: subprocess.Popen[bytes], cluster: SlurmCluster, hold_dir: Path
) -> list[str]:
    """While run A runs: scancel every job that reports it is holding in unwrap."""
    cancelled: list[str] = []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while proc.poll() is None and time.monotonic() < deadline:
        for marker in hold_dir.glob("running.*"):
            job_id = marker.name.split(".", 1)[1]
            if job_id not in cancelled:
                cluster.client("scancel", job_id)
                cancelled.append(job_id)
        time.sleep(0.5)
    return cancelled


def product_files(workdir: Path) -> list[str]:
    root = workdir / "ws"
    files = [p for pair in PAIRS for p in (root / "work" / pair / "merged").glob("*.geo*")]
    return sorted(str(p.relative_to(workdir)) for p in files)


@pytest.mark.slurm
def test_workflow_on_slurm_matches_local_and_resumes_after_scancel(
    tmp_path: Path, shared_dir: Path, slurm_cluster: SlurmCluster
) -> None:
    cluster = slurm_cluster
    started = time.monotonic()
    local, remote = tmp_path / "local", tmp_path / "slurm"
    local.mkdir()
    stage(local, shared_dir)
    shutil.copytree(local, remote, symlinks=True)
    profile = filled_profile(tmp_path / "profile", cluster.account, cluster.partition)

    # reference: the same staged workspace, run locally
    ref = subprocess.run(
        snakemake_cmd(local, "--cores", "2", *targets()),
        env=run_env(cluster), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ref.returncode == 0, output_of(ref)[-5000:]
    print(f"local run done at {time.monotonic() - started:.0f} s")

    # run A on SLURM: the held unwrap job of KILLED is cancelled (again when it is retried)
    hold_dir = tmp_path / "hold"
    hold_dir.mkdir()
    env_a = run_env(cluster, DINSAR_TEST_HOLD_PAIR=KILLED, DINSAR_TEST_HOLD_DIR=str(hold_dir))
    log_a = tmp_path / "run_a.log"  # a file, not a pipe: nobody reads while it runs
    with open(log_a, "w") as out, subprocess.Popen(
        snakemake_cmd(remote, *slurm_args(profile)), env=env_a, stdout=out, stderr=subprocess.STDOUT
    ) as proc:  # fmt: skip
        cancelled = cancel_held_jobs(proc, cluster, hold_dir)
        proc.wait(timeout=60)
    out_a = log_a.read_text()
    print(f"run A done at {time.monotonic() - started:.0f} s")
    assert proc.returncode not in (0, 124, 137), out_a[-5000:]  # failed, not hung
    assert cancelled, f"the unwrap job of {KILLED} never ran:\n{out_a[-5000:]}"
    assert "CANCELLED" in out_a
    work = remote / "ws" / "work"
    assert not (work / KILLED / "PICKLE" / "unwrap2stage").exists()
    untouched = {p: p.stat().st_mtime_ns for p in (work / KILLED / "PICKLE").glob("*")
                 if p.name in ("topo", "fineresamp", "filter")}  # fmt: skip
    assert len(untouched) == 3

    # run B: the same command resumes at the killed step
    run_b = subprocess.run(
        snakemake_cmd(remote, *slurm_args(profile)),
        env=run_env(cluster), capture_output=True, text=True, check=False,
    )  # fmt: skip
    (tmp_path / "run_b.log").write_text(output_of(run_b))
    print(f"run B done at {time.monotonic() - started:.0f} s")
    assert run_b.returncode == 0, output_of(run_b)[-5000:]
    ran_b = executed_rules(run_b)
    assert "isce_unwrap" in ran_b and "isce_geocode" in ran_b
    for rule in (
        "isce_preprocess",
        "isce_topo",
        "isce_coregistration",
        "isce_interferogram",
        "isce_filter",
    ):
        assert rule not in ran_b, f"{rule} ran again after the kill:\n{output_of(run_b)[-3000:]}"
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched

    # sacct: every job of both runs, as SLURM ran it
    cluster.wait_until_no_jobs(timeout=30)
    records = [r for r in cluster.sacct() if r["Comment"].startswith(("rule_", "group_"))]
    by_rule: dict[str, list[dict[str, str]]] = {}
    for record in records:
        rule = re.sub(r"_wildcards_.*$", "", record["Comment"]).removeprefix("rule_")
        by_rule.setdefault(rule, []).append(record)
    for rule in ISCE_RULES:
        assert rule in by_rule, f"{rule} did not run as a SLURM job: {sorted(by_rule)}"
    for rule in LOCAL_RULES:
        assert rule not in by_rule, f"localrule {rule} was submitted to SLURM"
    # sacct writes "CANCELLED by 0" for a scancel
    cancelled_ids = sorted(r["JobIDRaw"] for r in records if r["State"].startswith("CANCELLED"))
    assert cancelled_ids == sorted(cancelled)
    killed = [r for r in by_rule["isce_unwrap"] if KILLED in r["Comment"]]
    assert sorted(r["JobIDRaw"] for r in killed if r["State"] != "COMPLETED") == sorted(cancelled)
    completed = [r for r in records if r["JobIDRaw"] not in cancelled]
    assert all(r["State"] == "COMPLETED" and r["ExitCode"] == "0:0" for r in completed), completed
    assert {(r["Account"], r["Partition"]) for r in records} == {
        (cluster.account, cluster.partition)
    }
    # the profile's threads, the rules' memory and wall time reached sbatch
    threads = yaml.safe_load(PROFILE.read_text())["set-threads"]
    for rule in ISCE_RULES:
        assert {int(r["AllocCPUS"]) for r in by_rule[rule]} == {threads[rule]}, rule
    for record in by_rule["isce_topo"]:
        pair = record["Comment"].rsplit("_wildcards_", 1)[1]
        bursts = json.loads((work / pair / "dinsar_pair.json").read_text())["bursts"]
        assert record["ReqMem"] == f"{memory_mb('topo', bursts, *LOOKS)}M"
        minutes = runtime_min("topo", bursts, *LOOKS, threads["isce_topo"])
        assert record["Timelimit"] == f"{minutes // 60:02d}:{minutes % 60:02d}:00"

    # the products: byte for byte what the local run made
    files = product_files(local)
    assert files and files == product_files(remote)
    geocoded = len(validate_config(yaml.safe_load((local / "config.yaml").read_text())).isce.geocode_list)
    assert len([f for f in files if f.endswith(".geo")]) == geocoded * len(PAIRS)
    _, mismatch, errors = filecmp.cmpfiles(local, remote, files, shallow=False)
    assert not mismatch and not errors, (mismatch, errors)
    done = [r for r in completed if r["Start"] != "Unknown"]
    elapsed = sorted(int(r["ElapsedRaw"]) for r in done)
    waits = [
        (
            dt.datetime.fromisoformat(r["Start"]) - dt.datetime.fromisoformat(r["Submit"])
        ).total_seconds()
        for r in done
    ]
    print(
        f"SLURM test: {len(records)} jobs in {time.monotonic() - started:.0f} s; job elapsed "
        f"median {elapsed[len(elapsed) // 2]} s (min {elapsed[0]}, max {elapsed[-1]}), "
        f"submit to start mean {sum(waits) / len(waits):.1f} s"
    )
