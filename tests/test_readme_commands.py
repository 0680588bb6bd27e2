"""Every command the README prints, run as printed where it can run offline.

The commands run in a folder laid out like a clone (symlinks to the repository's Snakefile,
rules, scripts, Makefile, .venv ...), so `make plan` and `.venv/bin/snakemake ...` are typed
exactly as the README shows them. Its `config/` holds the repository's config.yaml, and:

* `config/roi.yaml`: the README's example (the repository's roi.yaml) plus `inventory:` a saved
  search over that area (tests/readme_example.py), so planning it needs no network;
* `config/myarea.yaml`: the test area, with every service the local HTTPS emulation and the
  topsApp test double on PATH (harness.pipeline), so `stage` and `run` work offline.

A README command that cannot run here is listed in NOT_RUN with the reason; a command that is
in neither list fails the test, so a new README command gets a run or a reason.

The set-up stamps (.venv/.installed, .venv/.gdal) are `make test`'s business: make is told to
take them as they are (-o), so a target's own recipe is what runs.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import environment
from harness.pipeline import serve_window, user_setup
from readme_example import EXAMPLE, write_example_search
from workflow_runner import REPO, executed_rules, write_config

README = REPO / "README.md"
VENV = REPO / ".venv"
START, END = "2016-10-07", "2016-10-31"  # two dates, one pair: the cheapest whole run
LINKED = ("Snakefile", "rules", "scripts", "envs", "profiles", "report", "Makefile",
          "pyproject.toml", "README.md", ".venv", "tests", "benchmarks")  # fmt: skip
MAKE_STAMPS = ["-o", ".venv/.installed", "-o", ".venv/.gdal"]

# README command (as printed, without its comment) -> why it is not run by this test
NOT_RUN = {
    "make test": "the suite itself",
    "make test-fast": "the suite itself",
    "make test-real": "the suite itself (real topsApp, tests/REAL.md)",
    "unshare -n sh -c 'ip link set lo up; ip addr add 10.254.0.1/32 dev lo; make test'":
        "the suite itself, without a network",
    "http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy= "
    "REQUESTS_CA_BUNDLE=/nonexistent/ca.pem NETRC=/nonexistent/netrc make test":
        "the suite itself, with hostile variables (test_hermetic_environment.py)",
    "make clean-isce2": "it deletes the shared ISCE2 build other clones and CI use",
    "module load cmake gcc fftw gdal python": "HPC environment modules",
    "ISCE2_SKIP_PACKAGES=1 ISCE2_PYTHON=$(command -v python3) make isce2":
        "a build from HPC modules (the same script as make isce2)",
    "docker build -f envs/isce2/Dockerfile -t dinsar-isce2:2.6.5 .": "needs docker and network",
    "apptainer build isce2.sif docker-daemon://dinsar-isce2:2.6.5": "needs apptainer",
    ".venv/bin/snakemake --profile profiles/slurm --configfile config/myarea.yaml":
        "needs SLURM: tests/test_slurm.py runs it on a single-node cluster",
    ".venv/bin/dinsar login": "asks at a terminal: tests/test_dinsar_run.py runs it on a pty",
    ".venv/bin/dinsar search --config config/roi.yaml --save saved/roi.geojson":
        "searches ASF online: test_workflow_plan.py::"
        "test_dinsar_search_save_keeps_the_baselines_for_an_offline_plan runs it against the "
        "CMR emulation",
}  # fmt: skip


def readme_commands() -> list[str]:
    """The commands of the README's ```bash blocks, comments dropped, continuations joined."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        pending = ""
        for raw in block.splitlines():
            line = raw.split("  #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
            if not line.strip():
                continue
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            commands.append((pending + line.strip()).strip())
            pending = ""
    return commands


def clone_like(directory: Path, myarea: dict, saved_search: Path) -> Path:
    """A folder laid out like a clone, with the two configs the README's commands name."""
    directory.mkdir()
    for name in LINKED:
        (directory / name).symlink_to(REPO / name)
    config = directory / "config"
    config.mkdir()
    (config / "config.yaml").symlink_to(REPO / "config" / "config.yaml")
    (config / "roi.yaml").write_text(
        (REPO / "config" / "roi.yaml").read_text() + f"inventory: {saved_search}\n"
    )
    write_config(config, myarea, "myarea.yaml")
    return directory


def shell_words(command: str) -> list[str]:
    return shlex.split(command)


def run(command: str | list[str], cwd: Path, env: dict[str, str], timeout: float = 900):
    argv = shell_words(command) if isinstance(command, str) else command
    if argv[0] == "make":
        argv = ["make", *MAKE_STAMPS, *argv[1:]]
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)  # fmt: skip
    assert result.returncode == 0, f"{command}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert "Traceback" not in result.stdout + result.stderr, command
    return result


needs_venv = pytest.mark.skipif(
    not (VENV / "bin" / "snakemake").is_file(), reason="the README's commands use the .venv"
)

# what the workflow test below runs, in this order (README text -> how it is typed here)
WORKFLOW_COMMANDS = [
    ".venv/bin/snakemake plan --configfile config/roi.yaml",  # no --cores: the profile's
    "make plan",
    ".venv/bin/snakemake -n --configfile config/roi.yaml",
    "make stage CONFIG=config/myarea.yaml",
    ".venv/bin/snakemake stage --cores 4 --configfile config/myarea.yaml",
    "make run CONFIG=config/myarea.yaml CORES=2",
    ".venv/bin/snakemake --report report.html --configfile config/myarea.yaml",
    ".venv/bin/snakemake --unlock --configfile config/myarea.yaml",
    ".venv/bin/dinsar run --roi \"POLYGON ((129.2 42.2, 129.3 42.2, 129.3 42.3, 129.2 42.3, "
    "129.2 42.2))\" --start 2025-12-20 --end 2026-01-10 --inventory my_search.geojson "
    "--plan-only",
]
OTHER_COMMANDS = ["make lint", "make isce2", ".venv/bin/dinsar isce2"]


def as_printed(command: str) -> str:
    """The README form of a command typed here (the make targets' CONFIG/CORES are the
    README's own `make run CONFIG=config/myarea.yaml CORES=12` form)."""
    return re.sub(r" (CONFIG|CORES)=\S+", "", command)


def test_every_readme_command_is_run_or_has_a_reason() -> None:
    printed = readme_commands()
    assert printed, "no ```bash blocks found in README.md"
    covered = {as_printed(c) for c in WORKFLOW_COMMANDS + OTHER_COMMANDS} | set(NOT_RUN)
    missing = [c for c in printed if c not in covered]
    assert missing == [], f"README commands this test neither runs nor explains: {missing}"
    stale = [c for c in NOT_RUN if c not in printed]
    assert stale == [], f"NOT_RUN lists commands the README no longer prints: {stale}"


@needs_venv
def test_the_readme_workflow_commands_as_printed(
    tmp_path, cmr, earthdata, orbit_bucket, dem_tiles, https_server, ca_bundle, shared_dir
) -> None:
    services = serve_window(START, END, cmr=cmr, earthdata=earthdata, orbit_bucket=orbit_bucket,
                            dem_tiles=dem_tiles, https_server=https_server,
                            shared_dir=shared_dir)  # fmt: skip
    user = user_setup(tmp_path, START, END, services, cmr=cmr, earthdata=earthdata,
                      orbit_bucket=orbit_bucket, dem_tiles=dem_tiles, ca_bundle=ca_bundle)  # fmt: skip
    saved = write_example_search(shared_dir, tmp_path / "example_search.geojson")
    clone = clone_like(tmp_path / "clone", user.config, saved)
    (clone / "my_search.geojson").symlink_to(saved)
    env = user.env
    ws = user.workspace

    plan_dir = clone / "insar_workspace" / "plan"
    for command in WORKFLOW_COMMANDS[:2]:  # the README's example area, from a saved search
        planned = run(command, clone, env)
        assert "pairs: 1" in planned.stdout + planned.stderr, command
        assert (plan_dir / "pairs.csv").read_text().count("\n") == 2
        shutil.rmtree(plan_dir)  # so that the next command plans again
    dry = run(WORKFLOW_COMMANDS[2], clone, env)
    assert "isce_geocode" in dry.stdout + dry.stderr and "This was a dry-run" in dry.stdout + dry.stderr

    staged = run(WORKFLOW_COMMANDS[3], clone, env)  # make stage, against the emulations
    assert {"search", "preflight", "download_slc", "orbits", "dem"} <= set(executed_rules(staged))
    again = run(WORKFLOW_COMMANDS[4], clone, env)
    assert executed_rules(again) == [] and "Nothing to be done" in again.stdout + again.stderr

    ran = run(WORKFLOW_COMMANDS[5], clone, env)  # make run, with the topsApp test double
    assert {"isce_geocode", "export_pair", "processing_report"} <= set(executed_rules(ran))
    assert (ws / "products" / "20161007_20161031" / "los_displacement.tif").is_file()

    run(WORKFLOW_COMMANDS[6], clone, env)
    assert (clone / "report.html").stat().st_size > 10_000
    run(WORKFLOW_COMMANDS[7], clone, env)

    one_line = run(WORKFLOW_COMMANDS[8], clone, env)
    assert one_line.stdout.strip().splitlines()[-1].startswith("plan: insar_workspace/plan")
    record = yaml.safe_load((clone / "insar_workspace" / "dinsar_run.yaml").read_text())
    assert record["roi"] == EXAMPLE["roi"]


@needs_venv
def test_make_lint_and_dinsar_isce2(tmp_path) -> None:
    env = environment.clean()
    lint = run(["make", "lint"], REPO, env)
    assert "All checks passed" in lint.stdout + lint.stderr
    found = run([str(VENV / "bin" / "dinsar"), "isce2"], REPO, env)
    assert found.stdout.startswith(("topsApp: ", "no ISCE2"))


@needs_venv
def test_make_isce2_a_second_time_does_nothing() -> None:
    env = environment.clean()
    prefix = subprocess.run(["bash", "envs/isce2/build.sh", "--prefix"], cwd=REPO, env=env,
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    manifest = Path(prefix) / "install.json"
    if not manifest.is_file():
        pytest.skip(f"no ISCE2 build in {prefix} (`make isce2` builds it; this test never does)")
    before = {p: p.stat().st_mtime_ns for p in Path(prefix).rglob("*") if p.is_file()}
    result = run(["make", "isce2"], REPO, env, timeout=120)
    assert "already built" in result.stdout + result.stderr
    after = {p: p.stat().st_mtime_ns for p in Path(prefix).rglob("*") if p.is_file()}
    assert after == before  # not one file of the build touched
    assert os.listdir(prefix)


def test_the_license_file_is_there_and_the_readme_names_it() -> None:
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the whole licence, not a stub
    readme = README.read_text()
    assert "## License" in readme and "Apache License 2.0" in readme and "(LICENSE)" in readme


def test_the_default_profile_cores_do_not_cap_the_threads_of_cluster_jobs(
    tmp_path, shared_dir
) -> None:
    """profiles/default sets `cores: all` (so `snakemake plan --configfile F` runs), and
    Snakemake also loads it under --profile profiles/slurm: the ISCE groups must still get
    the SLURM profile's threads (isce_topo: 8), not this machine's core count."""
    from fixture_scenes import TEST_ROI, write_asf_export
    from workflow_runner import output_of, snakemake

    slurm = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    export = write_asf_export(shared_dir, tmp_path / "asf_export.geojson")
    config = {"workspace": str(tmp_path / "ws"), "roi": TEST_ROI, "inventory": str(export),
              "dates": {"start": "2016-10-07", "end": "2016-10-31"}}  # fmt: skip
    assert snakemake(tmp_path, config, "plan").returncode == 0  # no --cores: the profile's
    local = snakemake(tmp_path, config, "-n", "--cores", "1")
    cluster = snakemake(tmp_path, config, "-n", "--profile", str(REPO / "profiles" / "slurm"))
    threads = {}
    for name, result in (("local", local), ("cluster", cluster)):
        assert result.returncode == 0, output_of(result)[-3000:]
        block = output_of(result).split("rule isce_topo:", 1)[1].split("\n\n", 1)[0]
        found = re.search(r"threads: (\d+)", block)
        threads[name] = int(found.group(1)) if found else 1
    assert threads == {"local": 1, "cluster": slurm["set-threads"]["isce_topo"]}
