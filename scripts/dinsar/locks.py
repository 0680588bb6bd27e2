"""Recover from Snakemake's stale lock after a killed run (wall-time limit, SIGKILL, power loss).

Snakemake refuses to start while ``.snakemake/locks/`` holds a lock, even when the run that
took it is long dead, and asks for ``--unlock``. A run of this workflow records its process
(host, pid, start tick) once it holds the lock; the next run removes the lock only when that
process is provably gone on this host. A live run, a run on another host (shared filesystem)
or a lock of unknown origin is left alone, so two runs on one workspace are still refused.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

OWNER_FILE = "dinsar_lock_owner.json"


def _start_tick(pid: int) -> int | None:
    """Process start time in clock ticks since boot (Linux); distinguishes a reused pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int, tick: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    current = _start_tick(pid)
    return tick is None or current is None or current == tick


def record_lock_owner(workdir: str | Path) -> None:
    """Called once the run holds Snakemake's lock (onstart)."""
    pid = os.getpid()
    owner = {"host": socket.gethostname(), "pid": pid, "start_tick": _start_tick(pid)}
    path = Path(workdir) / ".snakemake" / OWNER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(owner))
    tmp.replace(path)


def clear_stale_lock(workdir: str | Path) -> str | None:
    """Remove Snakemake's lock if the run that holds it died on this host; say what was done."""
    dot = Path(workdir) / ".snakemake"
    locks = sorted((dot / "locks").glob("*.lock")) if (dot / "locks").is_dir() else []
    if not locks:
        return None
    try:
        owner = json.loads((dot / OWNER_FILE).read_text())
        host, pid, tick = owner["host"], int(owner["pid"]), owner.get("start_tick")
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not ours to judge: Snakemake explains --unlock
    if host != socket.gethostname() or _alive(pid, tick):
        return None
    for lock in locks:
        lock.unlink(missing_ok=True)
    (dot / OWNER_FILE).unlink(missing_ok=True)
    return (
        f"removed the lock left by a run that was killed (pid {pid} on {host}); "
        "its unfinished jobs are redone"
    )
