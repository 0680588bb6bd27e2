"""Scale model: a Sentinel-1 stack on a SLURM cluster with profiles/slurm, against topsApp by hand.

    .venv/bin/python benchmarks/cluster_model.py                  # 60 dates, sequential 3, 4 x 32 cores
    .venv/bin/python benchmarks/cluster_model.py --dates 120 --nodes 8 --bursts 18
    .venv/bin/python benchmarks/cluster_model.py measure          # per-job overheads on a local SLURM

``project`` (the default) simulates the ISCE step-group jobs of every pair on K nodes (cores
and memory per node; first fit, as SLURM's backfill does on an idle cluster), with:

* the rule resources: threads from profiles/slurm (``set-threads``), memory from the rules'
  own estimate (``dinsar.isce_run.memory_mb``, fitted to HyP3's bursts x looks table), the
  ``jobs`` cap of the profile;
* compute time per group from the rules' own calibration, ``dinsar.isce_run.CPU_S_PER_BURST``
  (CPU-seconds per full-width burst measured with the real topsApp 2.6.5 on the shared real
  stack, benchmarks/isce_groups.py), scaled linearly by bursts and by threads with Amdahl's
  law (parallel fractions below, an assumption); the groups are dinsar.isce_run.GROUPS;
* per-job overheads measured on the single-node SLURM of tests/harness (``measure``): sbatch
  to start, the Snakemake start-up inside the job, and the wait until Snakemake's next status
  query notices the end (half the profile's query interval on a busy run);
* submission order: later step groups first (the ISCE rules' ``priority``), so started pairs
  finish before new ones start; the peak number of pairs in flight gives the ISCE scratch.

With ``isce.reuse_geometry`` (the default; ``--no-reuse-geometry`` for one topo per pair) the
topo compute runs once per reference date, in its first pair's chain (the isce_geometry job);
the other pairs' topo jobs only link files.

The baseline runs the same pairs one after another by hand, ``topsApp.py topsApp.xml`` with
OMP_NUM_THREADS = all cores of one node, each step as fast as the measured run scaled the same
way, with no overhead at all. Downloads, DEM and products are left out of both sides.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))

from dinsar.isce_run import (  # noqa: E402
    CPU_S_PER_BURST,
    GROUPS,
    cpu_seconds,
    memory_mb,
    runtime_min,
)

PROFILE = REPO / "profiles" / "slurm" / "config.yaml"

# Share of each group's time that OpenMP spreads over threads (assumption, from ISCE2's code:
# topo and resampling loop over lines in parallel; filter and SNAPHU are serial).
PARALLEL_FRACTION = {
    "preprocess": 0.0, "topo": 0.95, "coregistration": 0.9, "interferogram": 0.5,
    "filter": 0.0, "unwrap": 0.0, "geocode": 0.8,
}  # fmt: skip

# Measured on the single-node SLURM of tests/harness (SLURM 22.05, plugin 2.8.0, a 2-CPU VM),
# 2026-11-24: `cluster_model.py measure` gives sbatch -> running 2.9 s for an empty job; the
# ISCE jobs of tests/test_slurm.py (real workflow, topsApp double) took 9-11 s median in sacct
# (two runs), of which the rule itself ~1.3 s (its benchmark file): the rest is Snakemake
# starting twice (the job, then the srun step inside it) and building the job's DAG.
MEASURED_SUBMIT_TO_START_S = 3.0
MEASURED_JOB_STARTUP_S = 10.0


def amdahl(parallel: float, threads: int) -> float:
    return (1 - parallel) + parallel / max(1, threads)


def group_seconds(group: str, bursts: int, threads: int, looks: tuple[int, int]) -> float:
    """Compute time of a group for `bursts` bursts on `threads` threads: its calibrated CPU
    time (dinsar.isce_run.cpu_seconds, the plan's too) spread over the threads as far as
    Amdahl's law allows."""
    return cpu_seconds(group, bursts, *looks) * amdahl(PARALLEL_FRACTION[group], threads)


def sequential_pairs(n_dates: int, sequential: int) -> int:
    """Pairs of a sequential network: each date with its next `sequential` dates."""
    return sum(min(sequential, n_dates - 1 - i) for i in range(n_dates))


def first_pairs_of_references(n_dates: int, sequential: int) -> list[bool]:
    """For each pair of a sequential network, in order: is it its reference date's first?"""
    return [k == 0 for i in range(n_dates) for k in range(min(sequential, n_dates - 1 - i))]


def profile_settings(path: Path = PROFILE) -> tuple[dict[str, int], int, int]:
    """set-threads of the ISCE rules, the jobs cap and the status-query interval."""
    prof = yaml.safe_load(path.read_text())
    threads = {
        r.removeprefix("isce_"): int(t)
        for r, t in prof["set-threads"].items()
        if r.startswith("isce_")
    }
    interval = int(prof.get("slurm-init-seconds-before-status-checks", 40))
    return threads, int(prof["jobs"]), interval


@dataclass
class Job:
    pair: int
    group_index: int
    threads: int
    mem_mb: int
    seconds: float


@dataclass
class Result:
    wall_s: float
    core_hours: float
    busy_core_hours: float
    jobs: int
    peak_pairs_in_flight: int  # started (preprocess) but not yet geocoded: intermediates on disk


def simulate(
    n_pairs: int,
    groups: list[tuple[str, int, int, float]],
    nodes: int,
    cores: int,
    node_mem_mb: int,
    jobs_cap: int,
    submit_s: float,
    startup_s: float,
    notice_s: float,
    depth_first: bool = False,
    chains: list[list[tuple[str, int, int, float]]] | None = None,
) -> Result:
    """Event simulation of the pair chains on the nodes (first fit over the queue = backfill).

    groups: (name, threads, mem_mb, compute seconds) in chain order. A job holds its cores for
    startup_s + compute; its successor is queued notice_s + submit_s after it ends. Ready jobs
    are submitted oldest first, or with depth_first later step groups first (rule priorities).
    chains: each pair's own groups (the geometry reuse shape), else ``groups`` for every pair.
    """
    chain = chains or [groups] * n_pairs
    free_cores = [cores] * nodes
    free_mem = [node_mem_mb] * nodes
    for name, threads, mem, _ in (g for c in chain for g in c):
        if threads > cores or mem > node_mem_mb:
            raise SystemExit(f"{name}: {threads} threads / {mem} MB do not fit a node")
    queue: deque[Job] = deque()
    waiting: deque[Job] = deque()  # ready, but over the profile's jobs cap
    running: list[tuple[float, int, int, Job]] = []  # (end, seq, node, job)
    arrivals: list[tuple[float, int, Job]] = []
    seq = 0
    for pair in range(n_pairs):
        name, threads, mem, secs = chain[pair][0]
        heapq.heappush(arrivals, (submit_s, seq, Job(pair, 0, threads, mem, secs)))
        seq += 1
    now = 0.0
    core_s = busy_s = 0.0
    n_jobs = in_flight = peak = 0

    def order(jobs: deque[Job]) -> deque[Job]:
        return deque(sorted(jobs, key=lambda j: -j.group_index)) if depth_first else jobs

    while arrivals or queue or waiting or running:
        # next event: a job ends or a job reaches the queue
        t_end = running[0][0] if running else math.inf
        t_arr = arrivals[0][0] if arrivals else math.inf
        now = min(t_end, t_arr)
        while running and running[0][0] <= now:
            _, _, node, job = heapq.heappop(running)
            free_cores[node] += job.threads
            free_mem[node] += job.mem_mb
            if job.group_index + 1 == len(chain[job.pair]):
                in_flight -= 1
            else:
                name, threads, mem, secs = chain[job.pair][job.group_index + 1]
                nxt = Job(job.pair, job.group_index + 1, threads, mem, secs)
                heapq.heappush(arrivals, (now + notice_s + submit_s, seq, nxt))
                seq += 1
        while arrivals and arrivals[0][0] <= now:
            waiting.append(heapq.heappop(arrivals)[2])
        waiting = order(waiting)  # stable: oldest first within a group
        while waiting and len(queue) + len(running) < jobs_cap:
            queue.append(waiting.popleft())
        # start whatever fits, in submission order
        for job in list(order(queue)):
            for node in range(nodes):
                if free_cores[node] >= job.threads and free_mem[node] >= job.mem_mb:
                    free_cores[node] -= job.threads
                    free_mem[node] -= job.mem_mb
                    duration = startup_s + job.seconds
                    heapq.heappush(running, (now + duration, seq, node, job))
                    seq += 1
                    queue.remove(job)
                    core_s += job.threads * duration
                    busy_s += job.threads * job.seconds
                    n_jobs += 1
                    if job.group_index == 0:
                        in_flight += 1
                        peak = max(peak, in_flight)
                    break
        while waiting and len(queue) + len(running) < jobs_cap:
            queue.append(waiting.popleft())
    return Result(now, core_s / 3600, busy_s / 3600, n_jobs, peak)


def project(args: argparse.Namespace) -> None:
    set_threads, jobs_cap, interval = profile_settings(args.profile)
    n_pairs = sequential_pairs(args.dates, args.sequential)
    notice_s = args.query_interval if args.query_interval is not None else interval / 2
    groups = []
    print("Rule resources and modelled compute per job")
    print(
        f"  {'group':<15}{'threads':>8}{'mem_mb':>8}{'runtime limit':>15}{'compute s':>11}{'by hand s':>11}"
    )
    hand_pair_s = 0.0
    for group in (g.name for g in GROUPS):
        threads = set_threads.get(group, 1)
        mem = memory_mb(group, args.bursts, args.range_looks, args.azimuth_looks)
        limit = runtime_min(group, args.bursts, args.range_looks, args.azimuth_looks, threads)
        looks = (args.range_looks, args.azimuth_looks)
        secs = group_seconds(group, args.bursts, threads, looks)
        hand = group_seconds(group, args.bursts, args.cores, looks)
        if group == "unwrap" and args.unwrap_minutes is not None:
            secs = hand = args.unwrap_minutes * 60  # SNAPHU is serial: the same on both sides
        hand_pair_s += hand
        groups.append((group, threads, mem, secs))
        print(f"  {group:<15}{threads:>8}{mem:>8}{limit:>12} min{secs:>11.0f}{hand:>11.0f}")
    jobs_cap = args.jobs or jobs_cap
    # isce.reuse_geometry: one isce_geometry job (preprocess + topo) per reference date and a
    # topo job that only links files. Modelled as each date's first pair's topo job doing the
    # geometry; the other pairs of the date do not wait for it here (they do in the DAG).
    chains = None
    firsts = first_pairs_of_references(args.dates, args.sequential)
    if not args.no_reuse_geometry:
        topo = next(i for i, g in enumerate(groups) if g[0] == "topo")
        looks = (args.range_looks, args.azimuth_looks)
        geometry = (group_seconds("topo", args.bursts, groups[topo][1], looks)
                    + group_seconds("preprocess", args.bursts, 1, looks))  # fmt: skip
        taking = 1.0  # hard links and the state writer: ~1 s (logs/isce_topo/*.usage.json)
        chains = [[g if i != topo else (g[0], g[1], g[2], geometry if first else taking)
                   for i, g in enumerate(groups)] for first in firsts]  # fmt: skip

    def run(cap: int, depth_first: bool) -> Result:
        return simulate(
            n_pairs, groups, args.nodes, args.cores, args.node_mem_gb * 1000, cap,
            args.submit_s, args.startup_s, notice_s, depth_first, chains,
        )  # fmt: skip

    result = run(jobs_cap, not args.oldest_first)
    hand_wall = n_pairs * hand_pair_s
    hand_core_h = hand_wall * args.cores / 3600
    chain_s = sum(g[3] for g in groups) + len(groups) * (args.submit_s + args.startup_s + notice_s)
    print()
    print("Assumptions")
    print(f"  topo: {'once per reference date (' + str(sum(firsts)) + ' isce_geometry jobs)' if chains else 'once per pair'}")
    print(f"  stack: {args.dates} dates, sequential: {args.sequential} -> {n_pairs} pairs; "
          f"{args.bursts} bursts per pair, {args.range_looks}x{args.azimuth_looks} looks")  # fmt: skip
    print(f"  cluster: {args.nodes} nodes x {args.cores} cores, {args.node_mem_gb} GB each, "
          f"idle (no queue wait), profile jobs cap {jobs_cap}")  # fmt: skip
    print("  compute: CPU-s per full-width burst of the real ISCE2 2.6.5 (dinsar.isce_run."
          "CPU_S_PER_BURST: " + ", ".join(f"{g} {c:g}" for g, c in CPU_S_PER_BURST.items())
          + ") x bursts, Amdahl over threads with "
          + ", ".join(f"{g} {p:.2f}" for g, p in PARALLEL_FRACTION.items()))  # fmt: skip
    print(f"  per job: {args.submit_s:.0f} s sbatch->start + {args.startup_s:.0f} s Snakemake in "
          f"the job (holds the cores) + {notice_s:.0f} s until the status query sees the end")  # fmt: skip
    print(f"  submission: {'oldest first' if args.oldest_first else 'later step groups first (rule priorities)'}, "
          f"first fit on the nodes; scratch {args.scratch_gb_per_burst:g} GB per burst per pair in flight")  # fmt: skip
    print(
        f"  by hand: one pair after another on one node, OMP_NUM_THREADS={args.cores}, no overhead"
    )
    if args.unwrap_minutes is not None:
        print(
            f"  unwrap: {args.unwrap_minutes:g} min per pair (--unwrap-minutes), not the fixture's"
        )
    print()
    print("Projection")
    print(f"  one pair, Snakemake on SLURM (critical path):  {chain_s / 60:8.1f} min")
    print(f"  one pair, topsApp by hand on one node:          {hand_pair_s / 60:8.1f} min")
    print(f"  stack on SLURM ({result.jobs} jobs):  wall {result.wall_s / 3600:8.2f} h,  "
          f"{result.core_hours:8.1f} core-h allocated ({result.busy_core_hours:.1f} computing)")  # fmt: skip
    scratch_tb = args.bursts * args.scratch_gb_per_burst / 1000
    print(f"  peak pairs in flight: {result.peak_pairs_in_flight} "
          f"(~{result.peak_pairs_in_flight * scratch_tb:.1f} TB of intermediates at "
          f"{args.scratch_gb_per_burst:g} GB per burst, until each pair's cleanup)")  # fmt: skip
    print(f"  stack by hand, one node:       wall {hand_wall / 3600:8.2f} h,  "
          f"{hand_core_h:8.1f} core-h allocated (node held)")  # fmt: skip
    print(
        f"  stack by hand, {args.nodes} nodes in parallel: wall {hand_wall / args.nodes / 3600:8.2f} h"
    )
    print(f"  speed-up in wall time: {hand_wall / result.wall_s:.1f}x against one node, "
          f"{hand_wall / args.nodes / result.wall_s:.1f}x against {args.nodes} hand streams; "
          f"core-hours {result.core_hours / hand_core_h:.2f}x")  # fmt: skip
    print()
    print("Scratch against wall time (jobs cap x submission order)")
    for cap in sorted({jobs_cap, 100, 64, 32, 16}, reverse=True):
        for depth_first in (False, True):
            r = run(cap, depth_first)
            print(f"  jobs {cap:>3}, {'later steps first' if depth_first else 'oldest first    '}: "
                  f"wall {r.wall_s / 3600:6.2f} h, peak {r.peak_pairs_in_flight:>3} pairs in flight "
                  f"(~{r.peak_pairs_in_flight * scratch_tb:.1f} TB)")  # fmt: skip


# --- measurement on the single-node SLURM -------------------------------------------------


def _chain_snakefile(path: Path, steps: int) -> None:
    rules = [f'rule all:\n    input: "s{steps - 1}.txt"\n    localrule: True\n']
    for i in range(steps):
        dep = f'    input: "s{i - 1}.txt"\n' if i else ""
        rules.append(
            f'rule s{i}:\n{dep}    output: "s{i}.txt"\n    threads: 1\n'
            f'    resources: mem_mb=100, runtime=5\n    shell: "date +%s.%N > {{output}}"\n'
        )
    path.write_text("\n".join(rules))


def measure(args: argparse.Namespace) -> None:
    from harness.slurm_cluster import SlurmCluster, unavailable_reason

    reason = unavailable_reason()
    if reason:
        raise SystemExit(f"cannot start the test SLURM: {reason}")
    t0 = time.monotonic()
    with SlurmCluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic() - t0
        work = Path(tmp)
        # 1. sbatch -> running -> gone for an empty job, polling squeue every 0.05 s
        to_start, to_end = [], []
        for _ in range(args.samples):
            t = time.monotonic()
            job = cluster.client(
                "sbatch", "--parsable", "-A", cluster.account, "-p", cluster.partition,
                "-o", "/dev/null", "--wrap", "true",
            ).stdout.strip()  # fmt: skip
            started_at = None
            while True:
                state = cluster.client(
                    "squeue", "-h", "-j", job, "-o", "%T", check=False
                ).stdout.strip()
                now = time.monotonic()
                if started_at is None and state not in ("PENDING", "CONFIGURING"):
                    started_at = now
                if state in ("", "COMPLETED", "COMPLETING") and started_at is not None:
                    if state != "COMPLETING":
                        break
                time.sleep(0.05)
            to_start.append(started_at - t)
            to_end.append(now - t)
        # 2. a chain of no-op rules through the profile, with its own status-query interval
        _chain_snakefile(work / "Snakefile", args.chain)
        profile = work / "profile"
        profile.mkdir()
        text = PROFILE.read_text()
        text = text.replace(
            '# slurm_account: "<your account>"', f'slurm_account: "{cluster.account}"'
        )
        text = text.replace(
            '# slurm_partition: "<your partition>"', f'slurm_partition: "{cluster.partition}"'
        )
        (profile / "config.yaml").write_text(text)
        snakemake = str(Path(sys.executable).with_name("snakemake"))
        t = time.monotonic()
        run = subprocess.run(
            ["timeout", "-k", "10", "900", snakemake, "--profile", str(profile), "-d", str(work)],
            cwd=work, env=cluster.env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        chain_wall = time.monotonic() - t
        if run.returncode != 0:
            raise SystemExit(f"snakemake failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
        jobs = [r for r in cluster.sacct() if r["Comment"].startswith("rule_s")]
        elapsed = [int(r["ElapsedRaw"]) for r in jobs]
    print(
        f"single-node SLURM started in {started:.1f} s (munge, MariaDB, slurmdbd, slurmctld, slurmd)"
    )
    print(f"empty job (squeue every 0.05 s): sbatch->running mean {_mean(to_start):.2f} s "
          f"(max {max(to_start):.2f}), sbatch->completed mean {_mean(to_end):.2f} s "
          f"(max {max(to_end):.2f}), n={len(to_end)}")  # fmt: skip
    print(f"no-op rule as a SLURM job: sacct elapsed mean {_mean(elapsed):.1f} s "
          f"(Snakemake + srun start-up inside the job), n={len(elapsed)}")  # fmt: skip
    print(f"chain of {args.chain} no-op rules with profiles/slurm: {chain_wall:.0f} s, "
          f"{chain_wall / args.chain:.1f} s per step (submission, start-up, status-query wait)")  # fmt: skip
    print(f"measured {dt.date.today()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")


def _mean(values: list[float] | list[int]) -> float:
    return sum(values) / len(values) if values else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--dates", type=int, default=60, help="acquisition dates (60)")
    add("--sequential", type=int, default=3, help="pairs per date (3)")
    add("--nodes", type=int, default=4, help="compute nodes (4)")
    add("--cores", type=int, default=32, help="cores per node (32)")
    add("--node-mem-gb", type=int, default=128, help="memory per node, GB (128)")
    add("--bursts", type=int, default=27, help="bursts per pair (27 = 3 swaths x 9)")
    add("--range-looks", type=int, default=19)
    add("--azimuth-looks", type=int, default=7)
    add("--submit-s", type=float, default=MEASURED_SUBMIT_TO_START_S,
        help=f"sbatch to job start, s ({MEASURED_SUBMIT_TO_START_S}); add a queue wait here")  # fmt: skip
    add("--startup-s", type=float, default=MEASURED_JOB_STARTUP_S,
        help=f"Snakemake start-up inside a job, s ({MEASURED_JOB_STARTUP_S})")  # fmt: skip
    add("--query-interval", type=float, default=None,
        help="delay until Snakemake notices a finished job, s (half the profile's interval)")  # fmt: skip
    add("--unwrap-minutes", type=float, default=None,
        help="SNAPHU minutes per pair instead of the calibration's allowance (60 CPU-s per "
        "burst)")  # fmt: skip
    add("--jobs", type=int, default=None, help="jobs cap (default: the profile's)")
    add(
        "--oldest-first",
        action="store_true",
        help="ignore the rules' priorities (later groups first)",
    )
    add("--scratch-gb-per-burst", type=float, default=2.0,
        help="ISCE intermediates per burst, GB (2, README: Storage)")  # fmt: skip
    add("--profile", type=Path, default=PROFILE, help="SLURM profile (profiles/slurm)")
    add("--no-reuse-geometry", action="store_true",
        help="one topo per pair (isce.reuse_geometry: false)")  # fmt: skip
    sub = parser.add_subparsers(dest="command")
    p_measure = sub.add_parser("measure", help="per-job overheads on a local SLURM (root, Debian)")
    p_measure.add_argument("--samples", type=int, default=5, help="empty sbatch jobs (5)")
    p_measure.add_argument("--chain", type=int, default=4, help="no-op rules in the chain (4)")
    args = parser.parse_args()
    if args.command == "measure":
        measure(args)
        return
    project(args)


if __name__ == "__main__":
    main()
