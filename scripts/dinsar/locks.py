"""Recover from Snakemake's stale lock after a killed run (wall-time limit, SIGKILL, power loss).

Snakemake refuses to start while ``.snakemake/locks/`` holds a lock, even when the run that
took it is long dead, and asks for ``--unlock``. Every run of this workflow records itself as
a *claimant* before Snakemake takes its lock (:func:`claim_lock`, at parse time) and as the
*owner* once it holds it (:func:`record_lock_owner`, onstart). The next run removes the lock
only when every process that may hold it - the owner and every claimant - is provably gone on
this host. A live run, a run on another host (shared filesystem) or a lock of unknown origin
is left alone, so two runs on one workspace are still refused.

Runs are told apart by workspace: two configs with different workspaces may run from one
project folder (they share its ``.snakemake``), and a plan or dry run never waits for anyone
(:func:`runs_jobs`). Only a second run on the same workspace is refused.

The claims close a gap between Snakemake taking the lock and onstart: a run killed there is
known (its claim), and a run still there is not mistaken for the previous, finished run whose
owner record is still on disk (its claim keeps the lock alive). The same records let a new run
refuse to start while a live one holds the lock (:func:`running_run`), also when Snakemake's
own file-by-file lock would not see the two runs overlap.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .atomic import write_json

OWNER_FILE = "dinsar_lock_owner.json"
CLAIMS_FILE = "dinsar_lock_claims.json"
_GUARD = "dinsar_lock_claims.flock"  # serialises reading and rewriting the claims


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


def _me(workspace: str | Path | None = None) -> dict[str, Any]:
    pid = os.getpid()
    me: dict[str, Any] = {"host": socket.gethostname(), "pid": pid, "start_tick": _start_tick(pid)}
    if workspace is not None:
        me["workspace"] = str(Path(workspace).resolve())
    return me


# Snakemake options (argparse dests) under which it runs no job: a dry run, and the modes that
# only read, list, draw or report. Anything else may write the workspace.
NO_JOB_OPTIONS = (
    "dryrun", "lint", "report", "summary", "detailed_summary", "dag", "rulegraph", "filegraph",
    "d3dag", "list_rules", "list_target_rules", "list_changes", "list_input_changes",
    "list_params_changes", "list_code_changes", "list_untracked", "unlock", "print_compilation",
    "containerize", "export_cwl", "archive", "generate_unit_tests", "list_conda_envs",
)  # fmt: skip


def runs_jobs(options: dict[str, Any]) -> bool:
    """Whether a Snakemake invocation with these parsed options runs jobs (takes the lock).

    Snakemake 9 says ``dryrun`` is False while the Snakefile is read, so the options are read
    from its command line. ``plan`` and ``stage`` are targets: they run jobs.
    """
    return not any(options.get(name) for name in NO_JOB_OPTIONS)


def _gone(entry: dict[str, Any]) -> bool:
    """True only if ``entry`` is a process of this host that no longer runs."""
    try:
        host, pid, tick = entry["host"], int(entry["pid"]), entry.get("start_tick")
    except (KeyError, TypeError, ValueError):
        return False  # unreadable: cannot prove anything
    return host == socket.gethostname() and not _alive(pid, tick)


def _write_json(path: Path, data: Any) -> None:
    write_json(path, data, indent=None)


def _read_claims(dot: Path) -> list[dict[str, Any]]:
    try:
        claims = json.loads((dot / CLAIMS_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [c for c in claims if isinstance(c, dict)] if isinstance(claims, list) else []


@contextlib.contextmanager
def _guarded(dot: Path) -> Iterator[None]:
    dot.mkdir(parents=True, exist_ok=True)
    with open(dot / _GUARD, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _locks(dot: Path) -> list[Path]:
    return sorted((dot / "locks").glob("*.lock")) if (dot / "locks").is_dir() else []


def _live_here(entry: dict[str, Any]) -> bool:
    try:
        host, pid, tick = entry["host"], int(entry["pid"]), entry.get("start_tick")
    except (KeyError, TypeError, ValueError):
        return False
    return host == socket.gethostname() and _alive(pid, tick)


def claim_lock(workdir: str | Path, workspace: str | Path | None = None) -> None:
    """Called before Snakemake takes its lock (parse time of the main process): this run may
    hold it from then on. While nobody holds the lock, only the claims of live processes on
    this host are kept (one that starts at this very moment); the others are history."""
    dot = Path(workdir) / ".snakemake"
    with _guarded(dot):
        claims = _read_claims(dot)
        if not _locks(dot):
            claims = [c for c in claims if _live_here(c)]
        _write_json(dot / CLAIMS_FILE, [*claims, _me(workspace)])


def running_run(workdir: str | Path, workspace: str | Path | None = None) -> str | None:
    """If another run on this host holds (or is taking) the lock of ``workdir`` for the same
    workspace, say so.

    Snakemake refuses a second run only when its first DAG shares a file with the running
    one's first DAG; after a checkpoint the two can be disjoint (a run started before the
    search, one started after it) and both would write the same workspace. Any live holder
    on this workspace refuses the newcomer here, whatever the targets; a holder on another
    workspace does not (a holder that did not record its workspace does).
    """
    dot = Path(workdir) / ".snakemake"
    # not only while Snakemake's lock files are there: a run that ends removes the whole
    # locks folder (Snakemake 9), also the lock of a run on another workspace still working
    candidates = _read_claims(dot)
    try:
        candidates.append(json.loads((dot / OWNER_FILE).read_text()))
    except (OSError, ValueError):
        pass
    mine = str(Path(workspace).resolve()) if workspace is not None else None
    live = sorted(
        {
            int(c["pid"])
            for c in candidates
            if _live_here(c)
            and int(c["pid"]) != os.getpid()
            and (mine is None or c.get("workspace") in (None, mine))
        }
    )
    if not live:
        return None
    where = mine or str(Path(workdir).resolve())
    return (
        f"another run of this workflow (pid {', '.join(map(str, live))}) is working in "
        f"{where}; wait until it ends (two runs would write the same files). "
        "If it is gone, `snakemake --unlock` (with the same --directory and --configfile) "
        "removes its lock"
    )


def release_claim(workdir: str | Path) -> None:
    """Called when the run ends (onsuccess, onerror): a process that lives on after its run (a
    notebook calling Snakemake's API) must not keep holding the workspace."""
    dot = Path(workdir) / ".snakemake"
    if not dot.is_dir():
        return
    me = os.getpid()
    with _guarded(dot):
        claims = _read_claims(dot)
        kept = [c for c in claims if c.get("pid") != me or c.get("host") != socket.gethostname()]
        if kept != claims:
            _write_json(dot / CLAIMS_FILE, kept)
        try:
            owner = json.loads((dot / OWNER_FILE).read_text())
        except (OSError, ValueError):
            return
        if isinstance(owner, dict) and owner.get("pid") == me:
            (dot / OWNER_FILE).unlink(missing_ok=True)


def record_lock_owner(workdir: str | Path, workspace: str | Path | None = None) -> None:
    """Called once the run holds Snakemake's lock (onstart)."""
    path = Path(workdir) / ".snakemake" / OWNER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, _me(workspace))


def clear_stale_lock(workdir: str | Path) -> str | None:
    """Remove Snakemake's lock if every run that may hold it died on this host; say what was done."""
    dot = Path(workdir) / ".snakemake"
    if not _locks(dot):
        return None
    with _guarded(dot):
        locks = _locks(dot)
        candidates = _read_claims(dot)
        try:
            candidates.append(json.loads((dot / OWNER_FILE).read_text()))
        except (OSError, ValueError):
            pass
        if not locks or not candidates or not all(_gone(c) for c in candidates):
            return None  # a possible holder lives, or nothing is known: Snakemake explains --unlock
        for lock in locks:
            lock.unlink(missing_ok=True)
        (dot / OWNER_FILE).unlink(missing_ok=True)
        (dot / CLAIMS_FILE).unlink(missing_ok=True)
    pids = sorted({int(c["pid"]) for c in candidates})
    return (
        f"removed the lock left by a run that was killed (pid {', '.join(map(str, pids))} on "
        f"{socket.gethostname()}); its unfinished jobs are redone"
    )
