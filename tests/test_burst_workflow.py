"""`snakemake stage` in burst mode, end to end against the local services, and the reliability
guarantees of the SLC route kept in burst mode.

The bursts come from the burst-extractor emulation (harness.burst_extractor) over the shared
real stack's zips, behind the emulated Earthdata login; the saved search holds their records
(made from the annotation, as the real SLC-BURST records are); orbits come from the emulated
bucket; the DEM is the stack's file. No topsApp runs here (`stage` ends before it).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from harness import environment
from harness.joblog import ctrl_c_when, parse
from harness.kill_loop import kill_and_rerun
from workflow_runner import REPO, SNAKEMAKE, executed_rules, output_of, snakemake, write_config


@pytest.fixture
def services(real_services):
    real_services.earthdata.reset()
    real_services.server.clear_log()
    yield real_services
    real_services.earthdata.reset()


def burst_config(services, root: Path, **extra) -> Path:
    extra["download"] = {"mode": "burst", **extra.get("download", {})}
    config = services.config(root / "ws", root / "cache", **extra)
    config["inventory"] = str(services.burst_inventory(root / "bursts.geojson"))
    return write_config(root, config)


def stage(services, root: Path, config: Path, env: dict | None = None):
    env = env or services.user_env(root / "home")
    return snakemake(root, config, "stage", "-c2", env=env, timeout=900)


def burst_files(root: Path) -> list[str]:
    folder = root / "cache" / "bursts"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_stage_downloads_each_burst_once_and_a_second_run_nothing(services, tmp_path) -> None:
    config = burst_config(services, tmp_path)
    result = stage(services, tmp_path, config)
    assert result.returncode == 0, output_of(result)[-6000:]
    ran = executed_rules(result)
    dates = len(services.stack.scenes)
    assert ran.count("download_burst") == 2 * dates  # two bursts a date
    assert ran.count("burst_metadata") == dates and ran.count("burst_safe") == dates
    assert "download_slc" not in ran
    files = burst_files(tmp_path)
    assert len([f for f in files if f.endswith(".tiff")]) == 2 * dates
    assert len([f for f in files if f.endswith(".xml")]) == dates
    assert not list((tmp_path / "cache").rglob("*.part"))  # nothing half-done left
    safes = sorted(p.name for p in (tmp_path / "ws" / "safe").iterdir())
    assert len(safes) == dates and all(s.endswith("_168_IW1_359502-359503_VV.zip") for s in safes)
    sent = services.extractor.bytes_sent()
    kept = sum((tmp_path / "cache" / "bursts" / f).stat().st_size for f in files)
    # every byte sent was kept, none sent twice; and one byte for the login check (preflight)
    assert sent == kept + 1
    # target: within 5 % of the bursts' own bytes (the records' sizes). Measured 3.35 %: TIFF
    # headers and one metadata XML per slice, the real annotation of a whole swath, which
    # weighs 5.6x less beside a real 147 MB burst than beside the stack's 26 MB ones
    from dinsar.inventory import load_saved_search

    own = sum(b.bytes for b in load_saved_search(tmp_path / "bursts.geojson"))
    assert own < sent <= 1.05 * own, (sent, own)
    print(f"burst mode downloaded {sent} bytes for {own} bytes of bursts: "
          f"{100 * (sent - own) / own:.2f} % more")
    again = stage(services, tmp_path, config)
    assert again.returncode == 0, output_of(again)[-4000:]
    assert services.extractor.bytes_sent() == sent  # nothing downloaded again
    assert not {"download_burst", "burst_metadata", "burst_safe"} & set(executed_rules(again))


def test_a_burst_deleted_from_the_cache_is_fetched_again_alone(services, tmp_path) -> None:
    config = burst_config(services, tmp_path)
    assert stage(services, tmp_path, config).returncode == 0
    victim = next((tmp_path / "cache" / "bursts").glob("*.tiff"))
    victim.unlink()
    services.server.clear_log()
    result = stage(services, tmp_path, config)
    assert result.returncode == 0, output_of(result)[-4000:]
    ran = executed_rules(result)
    assert ran.count("download_burst") == 1 and victim.is_file()
    served = {e.path for e in services.extractor.requests() if e.status in (200, 206)}
    assert len(served) == 1 and served.pop().endswith(".tiff")
    # its bytes, and the one byte of the login check (preflight)
    assert services.extractor.bytes_sent() == victim.stat().st_size + 1
    # the date's SAFE is made again from it; the other dates' are kept
    assert ran.count("burst_safe") == 1


def test_transient_fault_is_retried_persistent_fault_is_one_line(services, tmp_path) -> None:
    config = burst_config(services, tmp_path)
    services.earthdata.fail_next(503, times=1)
    ok = stage(services, tmp_path / "a", burst_config(services, tmp_path / "a"))
    assert ok.returncode == 0, output_of(ok)[-4000:]
    services.earthdata.fail_next(503, times=10_000)
    failed = stage(services, tmp_path, config)
    text = output_of(failed)
    assert failed.returncode != 0
    assert "HTTP 503" in text or "503" in text
    assert "Traceback" not in text.split("dInSAR-Toolkit:")[-1]
    # no file under its final name, no SAFE
    assert not [f for f in burst_files(tmp_path) if f.endswith(".tiff")]
    assert not (tmp_path / "ws" / "safe").exists() or not list((tmp_path / "ws" / "safe").iterdir())


def test_not_enough_disk_stops_before_the_first_byte(services, tmp_path) -> None:
    config = burst_config(services, tmp_path, download={"disk_margin_gb": 10**9})
    result = stage(services, tmp_path, config)
    assert result.returncode != 0
    text = output_of(result)
    assert "12 of 12 burst file(s)" in text and "point cache.bursts at a larger disk" in text
    assert services.extractor.requests() == []
    assert "download_burst" not in executed_rules(result)


def test_no_credentials_stop_every_download_once(services, tmp_path) -> None:
    config = burst_config(services, tmp_path)
    home = tmp_path / "empty_home"
    home.mkdir()
    env = environment.clean()
    env["HOME"] = str(home)
    env.setdefault("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    result = stage(services, tmp_path, config, env)
    assert result.returncode != 0
    ran = executed_rules(result)
    assert ran.count("preflight") == 1
    assert not {"download_burst", "burst_metadata", "burst_safe"} & set(ran)
    assert services.extractor.requests() == []
    assert "Earthdata" in output_of(result)


def test_two_workspaces_share_the_burst_cache(services, tmp_path) -> None:
    """Areas and runs sharing bursts share the downloads: the second workspace fetches none."""
    shared = tmp_path / "shared_cache"
    first = burst_config(services, tmp_path / "one")
    second = burst_config(services, tmp_path / "two")
    for path in (first, second):
        text = path.read_text().replace(str(path.parent / "cache"), str(shared))
        path.write_text(text)
    assert stage(services, tmp_path / "one", first).returncode == 0
    sent = services.extractor.bytes_sent()
    result = stage(services, tmp_path / "two", second)
    assert result.returncode == 0, output_of(result)[-4000:]
    assert services.extractor.bytes_sent() == sent
    assert executed_rules(result).count("burst_safe") == len(services.stack.scenes)


def test_sigkill_during_burst_staging_then_the_same_command(services, tmp_path) -> None:
    """SIGKILL of the whole process tree while burst downloads hang, then the same command (no
    --unlock, no cleanup): the run completes, every burst whole, nothing half-done left."""
    import signal
    import subprocess
    import time

    from dinsar.burst_staging import metadata_problem, tiff_problem
    from dinsar.inventory import load_saved_search
    from dinsar.safe import read_safe
    from harness.server import Fault

    config = burst_config(services, tmp_path)
    env = services.user_env(tmp_path / "home")
    for _ in range(4):  # the first downloads hang (a slow server) until the kill
        services.earthdata.faults.push(Fault(delay=60))
    proc = subprocess.Popen(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "stage", "-c2",
         "--configfile", str(config)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    logs = tmp_path / "ws" / "logs"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not any(
        (logs / rule).is_dir() and any((logs / rule).iterdir())
        for rule in ("download_burst", "burst_metadata")
    ):
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    services.earthdata.faults.clear()
    result = stage(services, tmp_path, config, env)
    assert result.returncode == 0, output_of(result)[-4000:]
    cache = tmp_path / "cache" / "bursts"
    assert not list(cache.glob("*.part")) and not list((tmp_path / "ws" / "safe").glob(".*"))
    for burst in load_saved_search(tmp_path / "bursts.geojson"):
        assert tiff_problem(cache / burst.filename, burst.bytes) is None
        assert metadata_problem(cache / burst.xml_filename) is None
    for safe in (tmp_path / "ws" / "safe").glob("*.zip"):
        (swath,) = read_safe(safe, "vv").swaths.values()
        assert len(swath.bursts) == 2


@pytest.mark.slow
def test_twenty_kills_during_burst_staging_then_identical_files(services, tmp_path) -> None:
    """The reliability loop of the SLC route (test_reliability_kill.py, harness.kill_loop) over
    burst mode's own jobs: SIGKILL of the whole tree at 20 seeded moments of `stage` (burst
    downloads, metadata, SAFE assembly, orbits, DEM), the same command each time; then every
    burst byte-identical to an uninterrupted run's, every SAFE with the same members, nothing
    half-written left, and no completed job started again."""
    seed = int(os.environ.get("DINSAR_KILL_SEED", "20240607"))

    def run_dir(name: str) -> tuple[Path, Path, dict]:
        root = tmp_path / name
        return root, burst_config(services, root), services.user_env(root / "home")

    def contents(root: Path) -> dict[str, str]:
        """The bursts' bytes, and per SAFE its members' CRCs (the zip's own dates are the run's)."""
        out = {f"bursts/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted((root / "cache" / "bursts").iterdir())}  # fmt: skip
        for safe in sorted((root / "ws" / "safe").iterdir()):
            with zipfile.ZipFile(safe) as archive:
                assert archive.testzip() is None, safe
                out[f"safe/{safe.name}"] = hashlib.sha256(repr(sorted(
                    (i.filename, i.CRC, i.file_size) for i in archive.infolist())).encode()).hexdigest()  # fmt: skip
        return out

    plain_root, plain_config, plain_env = run_dir("run_plain")
    plain = stage(services, plain_root, plain_config, plain_env)
    assert plain.returncode == 0, output_of(plain)[-5000:]
    total = len([j for j in parse(output_of(plain)).started if j.rule != "all"])

    root, config, env = run_dir("run_kills")
    command = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(root), "stage", "-c2",
               "--configfile", str(config)]  # fmt: skip
    loop = kill_and_rerun(command, env, root, total_jobs=total, kills=20, seed=seed)
    print(f"\n{len(loop.outputs)} runs (seed {seed}), {loop.stale_locks_removed} stale locks "
          f"removed, {loop.rechecks} preflight rechecks\n{loop.summary()}")  # fmt: skip
    assert loop.final_code == 0, loop.final_text[-6000:]
    assert len(loop.kills) == 20
    assert loop.reruns_of_complete == [], "\n".join(loop.reruns_of_complete) + "\n" + loop.summary()
    # the kills hit burst mode's own jobs, not only the ones both routes share
    assert {"download_burst", "burst_safe"} & set(loop.hit), loop.summary()
    assert loop.stale_locks_removed >= loop.kills_after_a_job_started
    expected, got = contents(plain_root), contents(root)
    assert sorted(got) == sorted(expected), "a different set of bursts or SAFEs"
    assert [k for k in expected if expected[k] != got[k]] == []
    # nothing half-written: no .part, no temporary of an atomic write, no assembly work folder
    leftovers = [p for p in (root / "cache").rglob("*") if p.name.endswith(".part")]
    leftovers += [p for p in (root / "ws" / "safe").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert "Nothing to be done" in output_of(
        snakemake(root, config, "stage", "-n", env=env, timeout=300)
    )


def test_ctrl_c_during_burst_downloads_is_one_line_per_job_then_the_same_command(
    services, tmp_path
) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while burst downloads
    hang: each interrupted job says so in one line, no traceback, no burst under its final name
    half-written; the same command then completes."""
    import time

    from dinsar.burst_staging import tiff_problem
    from dinsar.errors import INTERRUPTED
    from dinsar.inventory import load_saved_search
    from harness.server import Fault

    config = burst_config(services, tmp_path)
    env = services.user_env(tmp_path / "home")
    for _ in range(4):  # the first downloads hang (a slow server) until the Ctrl-C
        services.earthdata.faults.push(Fault(delay=60))
    logs = tmp_path / "ws" / "logs" / "download_burst"
    code, stdout, stderr = ctrl_c_when(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "stage", "-c2",
         "--configfile", str(config)],
        env, tmp_path, lambda: logs.is_dir() and any(logs.iterdir()), "a burst download started",
        before=lambda: time.sleep(1.0),  # into the hanging transfer
    )  # fmt: skip
    services.earthdata.faults.clear()
    text = stdout + stderr
    assert code != 0
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-5000:]
    ours = [line for line in stderr.splitlines() if line.startswith("dInSAR-Toolkit:")]
    interrupted = [line for line in ours if line.endswith(INTERRUPTED)]
    assert interrupted and any("rule download_burst" in line for line in interrupted), stderr[-3000:]
    # nothing else of ours but the line naming the topsApp found (printed at every start)
    assert [line for line in ours if line not in interrupted and " topsApp: " not in line] == []
    cache = tmp_path / "cache" / "bursts"
    for burst in load_saved_search(tmp_path / "bursts.geojson"):  # whole, or not under its name
        path = cache / burst.filename
        assert not path.exists() or tiff_problem(path, burst.bytes) is None
    result = stage(services, tmp_path, config, env)
    assert result.returncode == 0, output_of(result)[-4000:]
    for burst in load_saved_search(tmp_path / "bursts.geojson"):
        assert tiff_problem(cache / burst.filename, burst.bytes) is None
    assert not list(cache.glob("*.part")) and not list((tmp_path / "ws" / "safe").glob(".*"))
