"""Snakemake's job list, read from what a run prints, and runs that can be killed mid-way.

Snakemake prints one block per job it starts::

    [Tue Nov 24 03:13:02 2026]
    localrule orbits:
        output: /ws/orbits/20161031.json
        jobid: 30
        reason: Missing output files: ...
        wildcards: date=20161031

and ``Finished jobid: 30 (Rule: orbits)`` when it is done. Jobids are per run; a job is the
same job in another run when its rule and outputs are the same (:attr:`Job.key`).

:class:`LiveRun` starts Snakemake in a new session (so ``os.killpg`` reaches every process it
started) and parses its output while it runs, so a test can kill it at a chosen moment.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

_HEADER = re.compile(r"^(?:local)?(?:rule|checkpoint) (?P<rule>\w+):$")
_FIELD = re.compile(r"^\s{4}(?P<key>\w+): (?P<value>.*)$")
_FINISHED = re.compile(r"^Finished jobid: (?P<jobid>\d+) \(Rule: (?P<rule>\w+)\)")


@dataclass
class Job:
    """One job start as printed by Snakemake."""

    rule: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def jobid(self) -> int:
        return int(self.fields.get("jobid", "-1"))

    @property
    def outputs(self) -> tuple[str, ...]:
        text = self.fields.get("output", "")
        return tuple(sorted(p.strip() for p in text.split(", ") if p.strip()))

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        """What makes two starts the same job: the rule and its output files."""
        return self.rule, self.outputs

    @property
    def reason(self) -> str:
        return self.fields.get("reason", "")


@dataclass
class JobLog:
    started: list[Job]
    finished: set[int]  # jobids

    def finished_jobs(self) -> list[Job]:
        return [j for j in self.started if j.jobid in self.finished]

    def unfinished_jobs(self) -> list[Job]:
        return [j for j in self.started if j.jobid not in self.finished]


def parse(text: str) -> JobLog:
    """The jobs a Snakemake run started and the jobids it reported finished."""
    started: list[Job] = []
    finished: set[int] = set()
    current: Job | None = None
    for line in text.splitlines():
        if current is not None:
            found = _FIELD.match(line)
            if found:
                current.fields[found["key"]] = found["value"]
                continue
            current = None
        header = _HEADER.match(line.strip()) if not line.startswith(" ") else None
        if header:
            current = Job(header["rule"])
            started.append(current)
            continue
        done = _FINISHED.match(line.strip())
        if done:
            finished.add(int(done["jobid"]))
    return JobLog(started, finished)


def incomplete_marked(workdir: Path) -> set[str]:
    """Output files Snakemake has marked incomplete (a job that writes them started, not done).

    Snakemake keeps one file per output under ``.snakemake/incomplete/``, named by the
    urlsafe base64 of the path (split into '@'-prefixed folders when too long).
    """
    root = workdir / ".snakemake" / "incomplete"
    marked: set[str] = set()
    if not root.is_dir():
        return marked
    for path in root.rglob("*"):
        if path.is_file() and path.name != "migration_underway":
            encoded = "".join(p.lstrip("@") for p in path.relative_to(root).parts)
            try:
                marked.add(base64.urlsafe_b64decode(encoded).decode())
            except (ValueError, UnicodeDecodeError):
                continue
    return marked


class LiveRun:
    """A Snakemake process whose output is collected (and parsed on demand) while it runs."""

    def __init__(self, cmd: Sequence[str], env: Mapping[str, str], cwd: Path | None = None):
        self.cmd = list(cmd)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd,
            env=dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: killpg reaches the whole tree
        )
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.killed = False

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self._lines.append(line)

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def log(self) -> JobLog:
        return parse(self.text)

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for(self, condition: Callable[[LiveRun], bool], timeout: float) -> bool:
        """Poll ``condition`` until it holds (True), the process ends or time runs out (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition(self):
                return True
            if not self.running():
                return condition(self)
            time.sleep(0.02)
        return False

    def kill_tree(self) -> list[int]:
        """SIGKILL the process group and anything it started; return pids still alive (none)."""
        try:
            tree = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(True)]
        except psutil.NoSuchProcess:
            tree = []
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.killed = True
        except ProcessLookupError:
            pass
        for process in tree:  # anything that left the group (none expected) dies too
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        self.finish()
        _gone, alive = psutil.wait_procs(tree, timeout=10)
        return [p.pid for p in alive]

    def finish(self, timeout: float = 900) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code


def keys(jobs: Iterable[Job]) -> set[tuple[str, tuple[str, ...]]]:
    return {j.key for j in jobs}


def ctrl_c_when(cmd: Sequence[str], env: Mapping[str, str], folder: Path,
                ready: Callable[[], bool], what: str,
                before: Callable[[], None] | None = None) -> tuple[int, str, str]:  # fmt: skip
    """Start ``cmd`` in a new session, and once ``ready()`` holds, press Ctrl-C: SIGINT to its
    whole process group, as a terminal sends it. ``before`` runs just before (checks of the
    running state). Returns the exit status, stdout and stderr (kept in ``folder``).

    The 600 s limit only keeps a broken run from hanging the suite; a run that ends by itself
    before ``ready()`` fails with its stderr.
    """
    out_path, err_path = folder / "out.txt", folder / "err.txt"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        run = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=dict(env), start_new_session=True)  # noqa: S603 - argument list
        try:
            deadline = time.monotonic() + 600
            while run.poll() is None and not ready():
                assert time.monotonic() < deadline, f"never happened: {what}"
                time.sleep(0.2)
            assert run.poll() is None, f"ended before {what}: {err_path.read_text()[-3000:]}"
            if before is not None:
                before()
            os.killpg(run.pid, signal.SIGINT)  # Ctrl-C
            run.wait(timeout=300)
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
    return run.returncode, out_path.read_text(), err_path.read_text()
