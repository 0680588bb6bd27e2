"""The summary at the end of a failed run: each failed job, its one-line cause and what to do.

Rule scripts write a user error as one ``ERROR dinsar...`` line into the job's log
(``_helpers.run``); the message names the cause and the fix. The summary repeats that line
for every failed job, so the causes are on the last screen however long the run was.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAX_JOBS = 10  # lines of jobs in the summary; the rest are counted
_OUR_ERROR = re.compile(r"^\S+ \S+ ERROR dinsar[\w.]*: (?P<message>.+)$")


@dataclass(frozen=True)
class FailedJob:
    """What the summary needs of a failed Snakemake job."""

    rule: str
    wildcards: tuple[tuple[str, str], ...] = ()  # (name, value) pairs
    logs: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        labels = " ".join(f"{k}={v}" for k, v in self.wildcards)
        return f"{self.rule} ({labels})" if labels else self.rule


def job_cause(logs: Iterable[str | Path]) -> str | None:
    """Our last error line in the job's logs; else None."""
    cause = None
    for path in logs:
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            match = _OUR_ERROR.match(line)
            if match:
                cause = match["message"].strip()
    return cause


def failure_summary(failed: Iterable[FailedJob]) -> str:
    """Lines for stderr: one per failed job (its cause, or where to look), then what to do."""
    jobs = sorted(set(failed), key=lambda j: (j.rule, j.name))
    if not jobs:
        return ""
    lines = [f"dInSAR-Toolkit: {len(jobs)} job(s) failed; the jobs that need them did not run:"]
    unexpected = False
    for job in jobs[:MAX_JOBS]:
        cause = job_cause(job.logs)
        if cause is None:
            unexpected = True
            where = f"see {job.logs[0]}" if job.logs else "see the messages above"
            cause = f"failed without a message of ours ({where})"
        lines.append(f"  {job.name}: {cause}")
    if len(jobs) > MAX_JOBS:
        lines.append(f"  ... and {len(jobs) - MAX_JOBS} more (their logs are under <workspace>/logs)")
    lines.append(
        "dInSAR-Toolkit: fix what each line says; the same command then resumes where this run "
        "stopped (finished jobs are kept)"
        + ("; a failure without a message of ours is a bug: please report it with its log"
           if unexpected else "")  # fmt: skip
    )
    return "\n".join(lines)
