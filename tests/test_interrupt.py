"""Ctrl-C stops a run with one line, not a Python traceback, also during a topsApp step: the
step runner stops topsApp and the rule glue says "interrupted" once. Ctrl-C is SIGINT to the
whole foreground process group (Snakemake, the job scripts, topsApp), as a terminal sends it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from test_isce_rules import ALLOWED, env_for, inventory, searched, staged, targets_of  # noqa: F401

from dinsar.errors import INTERRUPTED
from harness import environment
from harness.joblog import ctrl_c_when
from workflow_runner import REPO, SNAKEMAKE, write_config

PAIR = "20161007_20161031"


def wait_for(check, what: str, limit: float = 600.0) -> None:
    """Poll until ``check()``; the limit only keeps a broken run from hanging the suite."""
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.2)


def test_ctrl_c_during_a_topsapp_step_is_one_line(tmp_path: Path, searched: Path, inventory: Path) -> None:  # noqa: F811
    # the pair's own topo (the geometry job runs topsApp the same way: isce_step's runner)
    workspace, config = staged(tmp_path, searched, inventory, ["20161007", "20161031"],
                               reuse_geometry=False)  # fmt: skip
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "2",
           *targets_of(workspace, [PAIR]), *ALLOWED, "--configfile", str(write_config(tmp_path, config))]  # fmt: skip
    env = {**environment.clean(), **env_for(DINSAR_DOUBLE_HOLD_AT="topo")}
    topo_log = workspace / "logs" / "isce_topo" / f"{PAIR}.log"
    double = []

    def holding() -> None:  # the double (topsApp's stand-in) is running topo
        double.append(int(topo_log.read_text().split("holding in step topo (pid ")[1].split(")")[0]))
        assert psutil.pid_exists(double[0])

    code, stdout, stderr = ctrl_c_when(
        cmd, env, tmp_path,
        lambda: topo_log.is_file() and "holding in step topo" in topo_log.read_text(),
        "topo started", before=holding,
    )  # fmt: skip
    text = stdout + stderr
    assert code != 0
    # one line of ours, no traceback (the log Snakemake shows of the failed job included)
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-5000:]
    assert stderr.count(f"dInSAR-Toolkit: rule isce_topo {INTERRUPTED}") == 1, stderr[-3000:]
    # topsApp was stopped, not left running in the pair's directory, and topo is not done
    wait_for(lambda: not psutil.pid_exists(double[0]) or psutil.Process(double[0]).status() == psutil.STATUS_ZOMBIE,
             "the double stopped", 60)  # fmt: skip
    assert not (workspace / "work" / PAIR / "PICKLE" / "topo").exists()
    assert f"ERROR dinsar: {INTERRUPTED}" in topo_log.read_text()


def test_ctrl_c_in_the_glue_is_one_line(tmp_path: Path) -> None:
    """A rule script interrupted anywhere (here: in its main) says it once, exit status 130."""
    script = tmp_path / "job.py"
    script.write_text(
        "import os, signal, sys\n"
        f"sys.path.insert(0, {str(REPO / 'scripts')!r})\n"
        "from types import SimpleNamespace\n"
        "from _helpers import run\n"
        "def main(snakemake):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    signal.pause()\n"
        f"run(main, SimpleNamespace(rule='orbits', log=[{str(tmp_path / 'job.log')!r}]))\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130
    assert done.stderr.strip().splitlines() == [f"dInSAR-Toolkit: rule orbits {INTERRUPTED}"]
    assert (tmp_path / "job.log").read_text().strip().endswith(f"ERROR dinsar: {INTERRUPTED}")


def test_ctrl_c_while_the_snakefile_is_read_is_one_line(tmp_path: Path, searched: Path, inventory: Path) -> None:  # noqa: F811
    """Before any job: the topsApp version probe (run while the Snakefile is read) is held."""
    workspace, config = staged(tmp_path, searched, inventory, ["20161007", "20161031"])
    note = tmp_path / "probe.txt"
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "1", "plan",
           "--configfile", str(write_config(tmp_path, config))]  # fmt: skip
    env = {**environment.clean(), **env_for(DINSAR_DOUBLE_HOLD_AT="help", DINSAR_DOUBLE_HOLD_NOTE=str(note))}
    run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                           start_new_session=True)  # fmt: skip
    try:
        wait_for(lambda: run.poll() is not None or note.is_file(), "the probe started")
        assert run.poll() is None, run.communicate()[1][-3000:]
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C
        stdout, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode != 0 and "Traceback" not in stdout + stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == f"dInSAR-Toolkit: {INTERRUPTED}", stderr[-3000:]
    assert not (workspace / "plan").exists()


def test_sigterm_during_a_topsapp_step_stops_topsapp(tmp_path: Path) -> None:
    """scancel or a wall-time limit (SIGTERM to the step runner alone): topsApp, which ignores
    SIGINT, is stopped too, and the line says SIGTERM, not Ctrl-C."""
    work = tmp_path / "work"
    work.mkdir()
    note = tmp_path / "topsapp.log"
    script = tmp_path / "job.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(REPO / 'scripts')!r})\n"
        "from types import SimpleNamespace\n"
        "from _helpers import run\n"
        "from dinsar.isce_run import run_topsapp\n"
        "from dinsar.topsapp import TopsApp\n"
        "def main(snakemake):\n"
        f"    command = ({sys.executable!r}, '-c', 'import time; print(\"started\", flush=True); time.sleep(600)')\n"
        "    run_topsapp(TopsApp(command, '2.6.5', 'test'), 'topo', sys.argv[1], {}, sys.argv[2], 1)\n"
        "run(main, SimpleNamespace(rule='isce_topo', log=[]))\n"
    )
    job = subprocess.Popen([sys.executable, str(script), str(work), str(note)],
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        # the child's own line: the runner's header line, written before the child starts,
        # holds the command and so the word too
        wait_for(lambda: job.poll() is not None
                 or "started" in (note.read_text().splitlines() if note.is_file() else []),
                 "the stand-in topsApp started", 60)  # fmt: skip
        children = psutil.Process(job.pid).children()
        assert len(children) == 1
        job.send_signal(signal.SIGTERM)
        _, stderr = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 130
    assert stderr.strip().splitlines()[-1] == "dInSAR-Toolkit: rule isce_topo interrupted (SIGTERM)"
    assert "Traceback" not in stderr
    assert not children[0].is_running() or children[0].status() == psutil.STATUS_ZOMBIE
    assert "interrupted" in note.read_text()


def test_sigterm_while_topsapp_starts_still_stops_it(tmp_path: Path) -> None:
    """A SIGTERM that arrives while topsApp is being started (here: sent by the job to itself
    the moment the process exists, before the step runner's next line) is held back and then
    handled: topsApp is stopped, not left running without its job, and the line says SIGTERM."""
    work = tmp_path / "work"
    work.mkdir()
    note = tmp_path / "topsapp.log"
    pid_file = tmp_path / "child.pid"
    script = tmp_path / "job.py"
    script.write_text(
        "import os, signal, subprocess, sys\n"
        f"sys.path.insert(0, {str(REPO / 'scripts')!r})\n"
        "from types import SimpleNamespace\n"
        "from _helpers import run\n"
        "from dinsar.isce_run import run_topsapp\n"
        "from dinsar.topsapp import TopsApp\n"
        "real_popen = subprocess.Popen\n"
        "def popen_then_sigterm(*args, **kwargs):\n"
        "    process = real_popen(*args, **kwargs)\n"
        f"    open({str(pid_file)!r}, 'w').write(str(process.pid))\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return process\n"
        "subprocess.Popen = popen_then_sigterm\n"
        "def main(snakemake):\n"
        f"    command = ({sys.executable!r}, '-c', 'import time; time.sleep(600)')\n"
        "    run_topsapp(TopsApp(command, '2.6.5', 'test'), 'topo', sys.argv[1], {}, sys.argv[2], 1)\n"
        "run(main, SimpleNamespace(rule='isce_topo', log=[]))\n"
    )
    done = subprocess.run([sys.executable, str(script), str(work), str(note)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 130, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == "dInSAR-Toolkit: rule isce_topo interrupted (SIGTERM)"
    child = int(pid_file.read_text())
    wait_for(lambda: not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE,
             "the stand-in topsApp stopped", 60)  # fmt: skip
    assert "interrupted" in note.read_text()


def test_children_take_ctrl_c_even_when_the_suite_was_started_with_it_ignored() -> None:
    """A shell's background job starts with SIGINT ignored, and exec keeps it ignored: then the
    Ctrl-C tests above would pass a signal to nothing. conftest undoes that for the children."""
    probe = (
        "import signal, subprocess, sys\n"
        "from conftest import interruptible_children\n"
        "assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN\n"
        "interruptible_children()\n"
        "child = 'import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)'\n"
        "print(subprocess.run([sys.executable, '-c', child], capture_output=True, text=True).stdout.strip())\n"
    )
    started_ignoring = subprocess.run(
        [sys.executable, "-c", probe], cwd=Path(__file__).parent, capture_output=True, text=True,
        env=environment.clean(), preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        timeout=120, check=False,
    )  # fmt: skip
    assert started_ignoring.returncode == 0, started_ignoring.stderr
    assert started_ignoring.stdout.strip() == "True"
