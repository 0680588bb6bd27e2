"""SIGKILL a Snakemake run at seeded random moments, rerun the same command each time, and keep
account of what every rerun started: the loop of the reliability tests (SLC and burst mode).

Kill moments: a share of the kills land at a random time after the start (parsing, DAG, lock,
first jobs); the others wait until a random number of the workflow's jobs are complete (spread
over the whole run) and then a random 0-0.8 s more, so kills hit every stage. Snakemake and
everything it started are in one new session: os.killpg.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.joblog import JobLog, LiveRun, incomplete_marked, parse

STARTUP_KILL_SHARE = 0.25
# by design: the credential and disk check (no data) repeats in every run that still has
# files to download
RECHECKED_RULES = ("preflight",)
STALE_LOCK_LINE = "removed the lock left by a run that was killed"


@dataclass
class KillLoop:
    """What the kills hit and what the reruns did."""

    kills: list[str] = field(default_factory=list)
    hit: dict[str, int] = field(default_factory=dict)
    reruns_of_complete: list[str] = field(default_factory=list)
    rechecks: int = 0
    outputs: list[str] = field(default_factory=list)
    final_code: int | None = None
    final_text: str = ""

    @property
    def stale_locks_removed(self) -> int:
        return sum(text.count(STALE_LOCK_LINE) for text in self.outputs)

    @property
    def kills_after_a_job_started(self) -> int:
        return sum("(no job started yet)" not in k for k in self.kills)

    def summary(self) -> str:
        return "\n".join(self.kills) + f"\nstages hit: {dict(sorted(self.hit.items()))}"


def running_rules(log: JobLog) -> list[str]:
    return sorted(j.rule for j in log.unfinished_jobs() if j.rule != "all")


def kill_and_rerun(command: Sequence[str], env: Mapping[str, str], workdir: Path, *,
                   total_jobs: int, kills: int, seed: int) -> KillLoop:  # fmt: skip
    """Kill ``command`` ``kills`` times (each rerun is killed again), then let it finish.

    ``total_jobs``: the job count of an uninterrupted run (the kill targets lie below it);
    ``workdir``: Snakemake's working directory (its incomplete-job markers are read there).
    A job counts as complete once a run printed it finished, or once its outputs all existed
    and were not marked incomplete when its run was killed; a later start of it is a rerun of
    a complete job (``reruns_of_complete``), except for the rules that recheck by design.
    """
    rng = random.Random(seed)
    # a target leaves at least one job to run: the last ones take a few seconds each, longer
    # than the random delay after the target is reached
    targets = sorted(rng.randrange(1, total_jobs - 1) for _ in range(kills))
    done: dict[tuple, str] = {}  # job key -> how we know it completed
    loop = KillLoop()

    def check_and_record(index: int, log: JobLog, killed: bool) -> None:
        for job in log.started:
            if job.rule == "all" or job.key not in done:
                continue
            if job.rule in RECHECKED_RULES:
                loop.rechecks += 1
                continue
            loop.reruns_of_complete.append(f"run {index}: {job.rule} {job.outputs} ({done[job.key]})")
        for job in log.finished_jobs():
            done[job.key] = f"finished in run {index}"
        if killed:
            marked = incomplete_marked(workdir)
            for job in log.unfinished_jobs():
                if job.outputs and all(Path(p).exists() and p not in marked for p in job.outputs):
                    done[job.key] = f"outputs complete before the kill in run {index}"

    for index, target in enumerate(targets):
        run = LiveRun(command, env)
        if rng.random() < STARTUP_KILL_SHARE:
            mode = "at a random time"
            at = rng.uniform(0.2, 6.0)
            run.wait_for(lambda r, at=at: time.monotonic() - r.started_at >= at, timeout=60)
        else:
            mode = f"after {target} of {total_jobs} jobs"

            def progressed(r: LiveRun, target: int = target) -> bool:
                log = r.log()
                complete = {j.key for j in log.finished_jobs()} | set(done)
                return len(complete) >= target and bool(running_rules(log))

            if not run.wait_for(progressed, timeout=300) and run.running():
                raise AssertionError(f"run {index}: no progress in 300 s\n{run.text[-3000:]}")
            time.sleep(rng.uniform(0.0, 0.8))
        if not run.running():
            code = run.finish()
            raise AssertionError(f"run {index} ended by itself (exit {code}) before kill "
                                 f"{index + 1}:\n{loop.summary()}\n{run.text[-5000:]}")  # fmt: skip
        at = time.monotonic() - run.started_at
        log_before = run.log()
        survivors = run.kill_tree()
        if survivors:
            raise AssertionError(f"processes survived the kill: {survivors}")
        log = parse(run.text)
        rules = running_rules(log) or ["(no job started yet)"]
        for rule in set(rules):
            loop.hit[rule] = loop.hit.get(rule, 0) + 1
        loop.kills.append(f"kill {index + 1}: {mode}, {at:.1f} s in, running {', '.join(rules)}")
        assert len(log.started) >= len(log_before.started)
        check_and_record(index, log, killed=True)
        loop.outputs.append(run.text)

    final = LiveRun(command, env)
    loop.final_code = final.finish()
    loop.final_text = final.text
    check_and_record(kills, final.log(), killed=False)
    loop.outputs.append(final.text)
    return loop
