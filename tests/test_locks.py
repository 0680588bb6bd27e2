"""Stale-lock recovery: only a lock whose owner is provably dead on this host is removed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from dinsar.locks import OWNER_FILE, _start_tick, clear_stale_lock, record_lock_owner


def locked(workdir: Path, owner: dict | None) -> list[Path]:
    locks = workdir / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    files = [locks / "0.input.lock", locks / "0.output.lock"]
    for f in files:
        f.write_text("some/file\n")
    if owner is not None:
        (workdir / ".snakemake" / OWNER_FILE).write_text(json.dumps(owner))
    return files


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


def test_lock_of_a_dead_run_is_removed(tmp_path: Path) -> None:
    files = locked(tmp_path, {"host": socket.gethostname(), "pid": dead_pid(), "start_tick": 1})
    message = clear_stale_lock(tmp_path)
    assert message and "killed" in message
    assert not any(f.exists() for f in files)


def test_lock_of_a_live_run_is_kept(tmp_path: Path) -> None:
    me = os.getpid()
    files = locked(
        tmp_path, {"host": socket.gethostname(), "pid": me, "start_tick": _start_tick(me)}
    )
    assert clear_stale_lock(tmp_path) is None
    assert all(f.exists() for f in files)


def test_reused_pid_is_recognised_as_another_process(tmp_path: Path) -> None:
    me = os.getpid()
    files = locked(tmp_path, {"host": socket.gethostname(), "pid": me, "start_tick": -5})
    assert clear_stale_lock(tmp_path) is not None
    assert not any(f.exists() for f in files)


def test_other_host_or_unknown_owner_is_left_to_snakemake(tmp_path: Path) -> None:
    files = locked(tmp_path / "a", {"host": "login2.cluster", "pid": dead_pid(), "start_tick": 1})
    assert clear_stale_lock(tmp_path / "a") is None and all(f.exists() for f in files)
    files = locked(tmp_path / "b", None)
    assert clear_stale_lock(tmp_path / "b") is None and all(f.exists() for f in files)


def test_owner_record_describes_this_process(tmp_path: Path) -> None:
    record_lock_owner(tmp_path)
    owner = json.loads((tmp_path / ".snakemake" / OWNER_FILE).read_text())
    assert owner == {"host": socket.gethostname(), "pid": os.getpid(),
                     "start_tick": _start_tick(os.getpid())}  # fmt: skip
    assert clear_stale_lock(tmp_path) is None  # no lock files: nothing to do
