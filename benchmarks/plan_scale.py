"""Planning cost at scale: `snakemake -n` on a 300-date stack with `sequential: 3` (~900 pairs).

Compares wall time and peak memory with a trivial Snakefile that has the same number of jobs
per rule (same DAG size, no logic), measured in the same run. Usage:

    .venv/bin/python benchmarks/plan_scale.py [--dates 300] [--sequential 3] [--repeat 3]

The stack is built from the real recorded CMR records (path 13), repeated every 12 days with
times, orbits and state-vector epochs shifted together, so baselines stay computable.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))

from dinsar.inventory import Scene, write_inventory  # noqa: E402
from fixture_scenes import TEST_ROI, scenes  # noqa: E402

SHARED = Path(os.environ.get("DINSAR_SHARED", REPO.parent / "shared"))
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _shift_times(value: object, delta: dt.timedelta) -> object:
    if isinstance(value, dict):
        return {k: _shift_times(v, delta) for k, v in value.items()}
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z?", value):
        moved = dt.datetime.fromisoformat(value.replace("Z", "+00:00")) + delta
        return moved.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def synthetic_stack(n_dates: int) -> list[Scene]:
    """n_dates single-slice acquisitions of track 13_DESC, 12 days apart, covering TEST_ROI."""
    templates = [s for s in scenes(SHARED) if s.frame == 411 and s.baseline]
    origin = templates[0].start_time
    out = []
    for i in range(n_dates):
        template = templates[i % len(templates)]
        start = origin + dt.timedelta(days=12 * i)
        delta = start - template.start_time
        stop = template.stop_time + delta
        orbit = 6210 + 175 * i
        name = (
            f"S1A_IW_SLC__1SDV_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_"
            f"{orbit:06d}_{(0x81A6 + i) & 0xFFFFFF:06X}_{i & 0xFFFF:04X}"
        )
        out.append(
            dataclasses.replace(
                template,
                granule=name,
                url=f"https://example.invalid/{name}.zip",
                platform="S1A",
                start_time=start,
                stop_time=stop,
                orbit=orbit,
                baseline=_shift_times(template.baseline, delta),
            )
        )
    return out


def write_workflow_config(root: Path, n_dates: int, sequential: int) -> Path:
    stack = synthetic_stack(n_dates)
    saved = root / "saved_search.geojson"
    write_inventory(stack, saved, {"source": "benchmark"})
    cfg = {
        "workspace": str(root / "ws"),
        "roi": TEST_ROI,
        "dates": {
            "start": stack[0].start_time.date().isoformat(),
            "end": stack[-1].start_time.date().isoformat(),
        },
        "inventory": str(saved),
        "pairs": {"sequential": sequential},
    }
    path = root / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def job_counts(dry_run_output: str) -> Counter:
    """Per-rule job counts from the 'Job stats' table of `snakemake -n`."""
    counts: Counter = Counter()
    table = dry_run_output.split("Job stats:", 1)[1]
    for line in table.splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            if parts and parts[0] == "total":
                break
            continue
        counts[parts[0]] = int(parts[1])
    return counts


def trivial_snakefile(counts: Counter, path: Path) -> None:
    """Same rules and job counts, chained like a per-pair pipeline, with no logic at all."""
    lines = [f'rule all:\n    input: expand("out/last/{{i}}", i=range({max(counts.values())}))\n']
    previous = None
    for index, (rule, count) in enumerate(sorted(counts.items(), key=lambda kv: -kv[1])):
        if rule == "all":
            continue
        name = f"r{index}"
        src = f'"out/{previous[0]}/{{i}}"' if previous else None
        inp = (
            f"    input: lambda w: f'out/{previous[0]}/{{int(w.i) % {previous[1]}}}'\n"
            if src
            else ""
        )
        lines.append(
            f'rule {name}:\n{inp}    output: "out/{name}/{{i}}"\n    shell: "touch {{output}}"\n'
        )
        previous = (name, count)
    lines.append(
        f'rule last:\n    input: lambda w: f"out/{previous[0]}/{{int(w.i) % {previous[1]}}}"\n'
        '    output: "out/last/{i}"\n    shell: "touch {output}"\n'
    )
    path.write_text("\n".join(lines))


def measure(cmd: list[str], cwd: Path) -> tuple[float, str]:
    """Wall seconds and output of one command."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return wall, proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dates", type=int, default=300)
    parser.add_argument("--sequential", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plan_scale_") as tmp:
        root = Path(tmp)
        cfg = write_workflow_config(root, args.dates, args.sequential)
        base = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(root), "--configfile", str(cfg)]
        # Run the search checkpoint once (reads the saved search); afterwards -n shows every job.
        subprocess.run(base + ["--cores", "1", "search"], check=True, capture_output=True)
        ours, output = [], ""
        for _ in range(args.repeat):
            wall, output = measure(base + ["-n", "--cores", "2"], root)
            ours.append(wall)
        counts = job_counts(output)
        trivial_dir = root / "trivial"
        trivial_dir.mkdir()
        trivial_snakefile(counts, trivial_dir / "Snakefile")
        trivial = []
        for _ in range(args.repeat):
            wall, _ = measure([SNAKEMAKE, "-n", "--cores", "2"], trivial_dir)
            trivial.append(wall)
        # Peak memory: one fresh measurement each, in separate processes, via /proc polling.
        ours_rss = peak_rss(base + ["-n", "--cores", "2"], root)
        trivial_rss = peak_rss([SNAKEMAKE, "-n", "--cores", "2"], trivial_dir)
    total_jobs = sum(counts.values())
    ours_med, trivial_med = statistics.median(ours), statistics.median(trivial)
    print(f"dates: {args.dates}, sequential: {args.sequential}, jobs: {total_jobs}")
    print("jobs per rule: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    print(f"dInSAR-Toolkit  snakemake -n: median {ours_med:.2f} s  peak RSS {ours_rss:.0f} MB")
    print(
        f"trivial Snakefile snakemake -n: median {trivial_med:.2f} s  peak RSS {trivial_rss:.0f} MB"
    )
    print(
        f"ratio (time): {ours_med / trivial_med:.2f}x   ratio (memory): {ours_rss / trivial_rss:.2f}x"
    )


def peak_rss(cmd: list[str], cwd: Path) -> float:
    """Peak resident memory (MB) of a command, sampled from /proc every 20 ms."""
    import psutil

    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    handle = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            rss = handle.memory_info().rss + sum(
                c.memory_info().rss for c in handle.children(recursive=True)
            )
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    return peak / 1e6


if __name__ == "__main__":
    main()
