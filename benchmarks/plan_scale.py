"""Planning cost at scale: `snakemake -n` on a 300-date stack with `sequential: 3` (~900 pairs).

Compares wall time and peak memory with a trivial Snakefile that has the same number of jobs
per rule (same DAG size, no logic), measured in the same run. Usage:

    .venv/bin/python benchmarks/plan_scale.py [--dates 300] [--sequential 3] [--repeat 3]
    .venv/bin/python benchmarks/plan_scale.py --compare REV   # this tree against commit REV

With --compare, the workflow of commit REV (from `git archive`) plans the same stack in the same
run, alternating with this tree; the two plans are compared job by job.

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


def write_workflow_config(
    root: Path, n_dates: int, sequential: int, name: str = "config.json"
) -> Path:
    stack = synthetic_stack(n_dates)
    saved = root / "saved_search.geojson"
    write_inventory(stack, saved, {"source": "benchmark"})
    cfg = {
        "workspace": str(root / Path(name).stem / "ws"),
        "roi": TEST_ROI,
        "dates": {
            "start": stack[0].start_time.date().isoformat(),
            "end": stack[-1].start_time.date().isoformat(),
        },
        "inventory": str(saved),
        "pairs": {"sequential": sequential},
    }
    path = root / name
    path.write_text(json.dumps(cfg))
    return path


def planned_jobs(dry_run_output: str, workspace: Path) -> list[tuple[str, str]]:
    """(rule, sorted outputs) of every job `snakemake -n` plans, the workspace path taken out."""
    jobs = []
    for block in re.split(r"\n\[[^\]]*\]\n", dry_run_output):
        head = re.search(r"^\s*(?:local)?(?:rule|checkpoint) (\w+):", block, re.M)
        output = re.search(r"^\s+output: (.*)$", block, re.M)
        if head:
            files = sorted(output.group(1).split(", ")) if output else []
            jobs.append((head.group(1), ", ".join(files).replace(str(workspace), "<ws>")))
    return sorted(jobs)


def compare(root: Path, rev: str, args: argparse.Namespace, dry_run: list[str]) -> None:
    """This tree against commit ``rev``: median `snakemake -n` time and the planned jobs."""
    old_tree = root / "old"
    old_tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive, check=True)
    commands = {}
    for label, tree in (("this tree", REPO), (rev, old_tree)):
        name = "new.json" if tree == REPO else "old.json"
        cfg = write_workflow_config(root, args.dates, args.sequential, name)
        workdir = root / Path(name).stem
        workdir.mkdir(exist_ok=True)
        base = [SNAKEMAKE, "-s", str(tree / "Snakefile"), "-d", str(workdir), "--configfile",
                str(cfg)]  # fmt: skip
        subprocess.run(base + ["--cores", "1", "search"], check=True, capture_output=True)
        commands[label] = (base + dry_run, workdir)
    times: dict[str, list[float]] = {label: [] for label in commands}
    plans = {}
    for _ in range(args.repeat):
        for label, (cmd, workdir) in commands.items():
            wall, output = measure(cmd, workdir)
            times[label].append(wall)
            plans[label] = planned_jobs(output, workdir / "ws")
    median = {label: statistics.median(v) for label, v in times.items()}
    new, old = commands
    print(f"dates: {args.dates}, sequential: {args.sequential}, jobs: {len(plans[new])}")
    for label in commands:
        runs = ", ".join(f"{t:.1f}" for t in times[label])
        print(f"{label:12s} snakemake -n: median {median[label]:6.2f} s  (runs: {runs})")
    print(f"ratio this tree / {old}: {median[new] / median[old]:.3f}")
    same = plans[new] == plans[old]
    print(f"same jobs planned: {'yes' if same else 'NO'}")
    if not same:
        for job in sorted(set(plans[new]) ^ set(plans[old]))[:20]:
            print(f"  only in {'this tree' if job in plans[new] else old}: {job}")


def job_shapes(dry_run_output: str) -> dict[str, tuple[int, int, int]]:
    """Per rule: (jobs, input files per job, output files per job), from `snakemake -n`."""
    shapes: dict[str, list[int]] = {}
    for block in re.split(r"\n\[[^\]]*\]\n", dry_run_output):
        head = re.search(r"^\s*(?:local)?(?:rule|checkpoint) (\w+):", block, re.M)
        if not head:
            continue
        counts = []
        for field in ("input", "output"):
            line = re.search(rf"^\s+{field}: (.*)$", block, re.M)
            counts.append(len(line.group(1).split(", ")) if line else 0)
        shape = shapes.setdefault(head.group(1), [0, 0, 0])
        shape[0] += 1
        shape[1] = max(shape[1], counts[0])
        shape[2] = max(shape[2], counts[1])
    return {rule: (n, i, o) for rule, (n, i, o) in shapes.items()}


def trivial_snakefile(
    shapes: dict[str, tuple[int, int, int]], path: Path, structural: bool
) -> None:
    """A Snakefile with the same rules and job counts, chained like a per-pair pipeline.

    minimal: one input and one output per job, `touch` (no logic at all).
    structural: also the same number of input and output files per job, a log, a benchmark, a
    conda env, a params function and a script, like our rules - but no workflow logic (no
    search, no stack, no input functions over the inventory).
    """
    rules = sorted((r for r in shapes if r != "all"), key=lambda r: (-shapes[r][0], r))
    lines = []
    previous: tuple[str, int, int] | None = None
    for index, rule in enumerate(rules):
        count, n_in, n_out = shapes[rule]
        name = f"r{index}"
        n_out = max(1, n_out) if structural else 1
        outputs = ", ".join(f'"out/{name}/{{i}}/{k}"' for k in range(n_out))
        body = [f"rule {name}:"]
        if previous:
            prev_name, prev_count, prev_out = previous
            k_in = max(1, min(n_in, prev_out)) if structural else 1
            files = ", ".join(
                f"'out/{prev_name}/{{int(w.i) % {prev_count}}}/{k}'" for k in range(k_in)
            )
            body.append(f"    input: lambda w: [{files}]")
        body.append(f"    output: {outputs}")
        if structural:
            body += [
                f'    log: "logs/{name}/{{i}}.log"',
                f'    benchmark: "bench/{name}/{{i}}.tsv"',
                "    threads: 1",
                "    resources: mem_mb=1000, runtime=10",
                f'    conda: "{REPO / "envs" / "workflow.yaml"}"',
                "    params: i=lambda w: w.i",
                f'    script: "{REPO / "scripts" / "plan.py"}"',
            ]
        else:
            body.append('    shell: "touch {output}"')
        lines.append("\n".join(body) + "\n")
        previous = (name, count, n_out)
    # `all` asks for every job of every rule, so each rule has exactly its job count
    wanted = " + ".join(
        f'expand("out/r{index}/{{i}}/0", i=range({shapes[rule][0]}))'
        for index, rule in enumerate(rules)
    )
    path.write_text(f"rule all:\n    input: {wanted}\n\n" + "\n".join(lines))


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
    parser.add_argument("--compare", metavar="REV", help="time and compare with commit REV")
    args = parser.parse_args()
    dry_run = ["-n", "--cores", "2"]
    with tempfile.TemporaryDirectory(prefix="plan_scale_") as tmp:
        root = Path(tmp)
        if args.compare:
            compare(root, args.compare, args, dry_run)
            return
        cfg = write_workflow_config(root, args.dates, args.sequential)
        base = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(root), "--configfile", str(cfg)]
        # Run the search checkpoint once (reads the saved search); afterwards -n shows every job.
        subprocess.run(base + ["--cores", "1", "search"], check=True, capture_output=True)
        times: dict[str, list[float]] = {"ours": [], "minimal": [], "structural": []}
        output = ""
        for _ in range(args.repeat):
            wall, output = measure(base + dry_run, root)
            times["ours"].append(wall)
        shapes = job_shapes(output)
        rss = {"ours": peak_rss(base + dry_run, root)}
        for kind in ("minimal", "structural"):
            folder = root / kind
            folder.mkdir()
            trivial_snakefile(shapes, folder / "Snakefile", structural=kind == "structural")
            for _ in range(args.repeat):
                times[kind].append(measure([SNAKEMAKE, *dry_run], folder)[0])
            rss[kind] = peak_rss([SNAKEMAKE, *dry_run], folder)
    jobs = sum(n for n, _, _ in shapes.values())
    pairs = shapes.get("topsapp_xml", (0, 0, 0))[0]
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"dates: {args.dates}, sequential: {args.sequential}, pairs: {pairs}, jobs: {jobs}")
    print("jobs per rule: " + ", ".join(f"{k}={v[0]}" for k, v in sorted(shapes.items())))
    for kind, label in (("ours", "dInSAR-Toolkit"), ("minimal", "trivial, minimal"),
                        ("structural", "trivial, same rule shapes")):  # fmt: skip
        print(
            f"{label:27s} snakemake -n: median {median[kind]:6.2f} s  peak RSS {rss[kind]:5.0f} MB"
        )
    for kind in ("minimal", "structural"):
        print(
            f"ratio vs {kind}: time {median['ours'] / median[kind]:.2f}x, "
            f"memory {rss['ours'] / rss[kind]:.2f}x"
        )
    print(f"per pair: {median['ours'] / max(1, pairs) * 1000:.1f} ms")


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
