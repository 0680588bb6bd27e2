"""Run a command and watch every process it starts: what `ps` would show of each (its argument
list), sampled until the command ends. For checking that secrets never reach a command line."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import psutil


@dataclass
class Watched:
    result: subprocess.CompletedProcess[str]
    cmdlines: set[str] = field(default_factory=set)  # argument lists as `ps` shows them
    pids: set[int] = field(default_factory=set)

    def leaks(self, secrets: Iterable[str]) -> list[str]:
        return [line for line in self.cmdlines for s in secrets if s and s in line]


def run_watched(
    cmd: Sequence[str], env: Mapping[str, str], interval: float = 0.02, timeout: float = 900
) -> Watched:
    """Run ``cmd`` (output captured, stderr into stdout) and sample its process tree."""
    proc = subprocess.Popen(
        list(cmd), env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen: set[str] = set()
    pids: set[int] = set()
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.extend(proc.stdout or []), daemon=True)
    reader.start()
    root = psutil.Process(proc.pid)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for process in tree:
            try:
                # every sample: a process may exec another program under the same pid
                seen.add(" ".join(process.cmdline()))
                pids.add(process.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        time.sleep(interval)
    code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    reader.join(timeout=10)
    return Watched(subprocess.CompletedProcess(list(cmd), code, "".join(chunks), ""), seen, pids)
