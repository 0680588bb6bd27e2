"""Kill and resume: SIGKILL the whole Snakemake tree at 20 seeded random moments, rerun each time
with the same command (no --unlock, no cleanup), and end with products byte-identical to an
uninterrupted run, no job that had completed started again, and no partial file left behind.

One workspace is killed 20 times in a row (each rerun is killed again) and then finished; a
second workspace runs the same config once, uninterrupted, as the reference. The workload is
the smallest full run: search -> plan -> preflight -> downloads (one date's scene is an IPF
002.36 product, so AUX_CAL is fetched too) -> orbits -> DEM -> topsApp.xml -> the seven topsApp
step groups (test double) -> cleanup -> export -> quicklooks -> stack summary -> report table.

Kill moments (seed ``DINSAR_KILL_SEED``, default below): harness.kill_loop. Burst mode's loop,
over its staging: test_burst_workflow.py.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from harness.joblog import parse
from harness.kill_loop import kill_and_rerun
from harness.pipeline import serve_window, user_setup
from workflow_runner import REPO, SNAKEMAKE, output_of, snakemake, write_config

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("DINSAR_KILL_SEED", "20240607"))
KILLS = 20
START, END = "2016-10-07", "2016-10-31"  # 2 dates (one slice each), 1 pair
AUX_DATE = "20161007"  # its scene becomes an IPF 002.36 product: the AUX_CAL job runs too
# Files whose content depends on the run's history or clock, not on its inputs: logs,
# Snakemake's benchmarks, the plan summary's "still to download" (the cache when the plan job
# ran: before or after the downloads, also without kills), the preflight's free-space figure
# and missing-file list, the cleanup
# record (when it ran, what it freed), ISCE's own isce.log (timestamped lines, appended), its
# PICKLE state (it holds the step's start time; the PICKLE/*.xml renderings are compared) and
# the verified-download records (they hold the file's mtime).
HISTORY = ("ws/logs/", "ws/benchmarks/", "ws/plan/summary.txt", "ws/staging/preflight.json")
HISTORY_NAMES = ("cleanup.json", "isce.log")
HISTORY_SUFFIXES = (".verified",)


def command(base: Path, config: Path) -> list[str]:
    return [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(base), "--cores", "2",
            "--configfile", str(config)]  # fmt: skip


def fingerprint(base: Path) -> dict[str, str]:
    """sha256 of every file of the workspace and caches, with the base path normalised."""
    out = {}
    for label, root in (("ws", base / "ws"), ("cache", base / "shared_cache")):
        for path in sorted(root.rglob("*")):
            rel = f"{label}/{path.relative_to(root).as_posix()}"
            if (
                not path.is_file()
                or rel.startswith(HISTORY)
                or path.name in HISTORY_NAMES
                or path.name.endswith(HISTORY_SUFFIXES)
                or (path.parent.name == "PICKLE" and not path.suffix)
            ):
                continue
            data = path.read_bytes().replace(str(base).encode(), b"<BASE>")
            out[rel] = hashlib.sha256(data).hexdigest()
    return out


@pytest.fixture
def services(cmr, earthdata, orbit_bucket, dem_tiles, https_server, shared_dir):
    return serve_window(START, END, cmr=cmr, earthdata=earthdata, orbit_bucket=orbit_bucket,
                        dem_tiles=dem_tiles, https_server=https_server, shared_dir=shared_dir,
                        aux_date=AUX_DATE)  # fmt: skip


def test_twenty_kills_then_identical_products(
    tmp_path, services, cmr, earthdata, orbit_bucket, dem_tiles, ca_bundle
) -> None:
    def setup(name: str):
        base = tmp_path / name
        base.mkdir()
        user = user_setup(base, START, END, services, cmr=cmr, earthdata=earthdata,
                          orbit_bucket=orbit_bucket, dem_tiles=dem_tiles, ca_bundle=ca_bundle)  # fmt: skip
        return base, user, write_config(base, user.config)

    # the reference: one uninterrupted run
    # equal-length folder names: paths inside binary files (ISCE's pickles) compare equal after
    # the base path is normalised
    ref_base, ref_user, ref_config = setup("run_plain")
    started = time.monotonic()
    reference = snakemake(ref_base, ref_config, "--cores", "2", env=ref_user.env, timeout=900)
    assert reference.returncode == 0, output_of(reference)[-5000:]
    reference_s = time.monotonic() - started
    total = len([j for j in parse(output_of(reference)).started if j.rule != "all"])

    base, user, config = setup("run_kills")
    started = time.monotonic()
    loop = kill_and_rerun(command(base, config), user.env, base, total_jobs=total, kills=KILLS,
                          seed=SEED)  # fmt: skip
    assert loop.final_code == 0, loop.final_text[-6000:]
    loop_s = time.monotonic() - started
    print(
        f"\nreference run {reference_s:.0f} s, kill loop {loop_s:.0f} s (seed {SEED}), "
        f"{len(loop.outputs)} runs, {loop.stale_locks_removed} stale locks removed, "
        f"{loop.rechecks} preflight rechecks\n{loop.summary()}"
    )

    assert len(loop.kills) == KILLS
    assert loop.reruns_of_complete == [], "\n".join(loop.reruns_of_complete) + "\n" + loop.summary()
    # every completed job of the reference run is complete here too; nothing left to do
    assert "Nothing to be done" in output_of(
        snakemake(base, config, "-n", env=user.env, timeout=300)
    )
    # byte-identical products and intermediates, the same set of files: no .part/.tmp left over
    expected, got = fingerprint(ref_base), fingerprint(base)
    print(f"compared {len(expected)} files with the uninterrupted run")
    assert sorted(set(got) - set(expected)) == [], "left over after the kills"
    assert sorted(set(expected) - set(got)) == [], "missing after the kills"
    differ = sorted(k for k in expected if expected[k] != got[k])
    assert differ == [], f"differ from the uninterrupted run: {differ}"
    assert any(k.startswith("ws/products/") and k.endswith(".tif") for k in expected)
    for name, product in earthdata.products.items():  # the zips are the served bytes
        zip_path = base / "shared_cache" / "slc" / f"{name}.zip"
        assert not zip_path.exists() or zip_path.read_bytes() == product.data
    # a kill leaves Snakemake's lock behind: every rerun after one removed it (no --unlock)
    assert loop.stale_locks_removed >= loop.kills_after_a_job_started
