"""Real per-group wall time, CPU time and peak memory of topsApp, from the workflow's own records.

    .venv/bin/python benchmarks/isce_groups.py                 # run the shared real stack, report
    .venv/bin/python benchmarks/isce_groups.py --pairs 1       # fewer pairs (sequential 1)
    .venv/bin/python benchmarks/isce_groups.py --workspace WS  # report an existing workspace

Each ISCE step group writes ``logs/isce_<group>/<pair>.usage.json``: the topsApp process's
wall time, user + system CPU and peak resident memory, measured exactly with wait4 (Snakemake's
benchmark files sample only every 30 s after a job's first 15 s). A run goes through the real
workflow with the real topsApp.py, on the shared real stack of the tests (tests/harness:
Earthdata, orbit and product emulations on 127.0.0.1), so it needs no network.

Besides the raw figures, each group's CPU time is given per *full-width burst*: the stack's
bursts are cut to ``samples`` of the swath's 21632 range samples, and topo, coregistration and
the interferogram scale with the pixels. That is what the rules' runtime model
(dinsar.isce_run.CPU_S_PER_BURST) is calibrated with.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))

from dinsar.isce_run import GROUPS  # noqa: E402

FULL_SWATH_SAMPLES = 21632  # IW1 of the source product


def run_stack(root: Path, pairs: int) -> Path:
    from harness.real_services import RealServices
    from harness.real_stack import build
    from harness.server import LocalHTTPSServer
    from harness.tls import make_tls
    from workflow_runner import output_of, snakemake, write_config

    stack = build()
    tls = make_tls(root / "tls")
    dates = [s.date for s in stack.scenes][: pairs + 1]
    iso = [f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in dates]
    with LocalHTTPSServer(tls.server_context) as server:
        services = RealServices.start(stack, server, str(tls.ca_pem))
        config = services.config(root / "ws", root / "cache", pairs={"sequential": 1},
                                 dates={"start": iso[0], "end": iso[-1]})  # fmt: skip
        result = snakemake(root, write_config(root, config), "--cores", "2",
                           env=services.user_env(root / "home"), timeout=6 * 3600)  # fmt: skip
    if result.returncode != 0:
        sys.exit(output_of(result)[-4000:])
    return root / "ws"


def report(workspace: Path, samples: int) -> dict:
    rows: dict[str, list[dict]] = defaultdict(list)
    for group in GROUPS:
        for path in sorted((workspace / "logs" / f"isce_{group.name}").glob("*.usage.json")):
            rows[group.name].append(json.loads(path.read_text()))
    scale = FULL_SWATH_SAMPLES / samples
    out = {}
    print(f"{'group':15} {'pairs':>5} {'wall s':>8} {'CPU s':>8} {'peak MB':>8} {'bursts':>6} "
          f"{'CPU s per full burst':>21}")  # fmt: skip
    for group in GROUPS:
        records = rows.get(group.name, [])
        if not records:
            continue
        wall = statistics.median(r["wall_s"] for r in records)
        cpu = statistics.median(r["cpu_s"] for r in records)
        rss = max(r["max_rss_mb"] for r in records)
        bursts = statistics.median(r["bursts"] for r in records)
        per_burst = cpu / bursts * scale
        out[group.name] = {"pairs": len(records), "wall_s": wall, "cpu_s": cpu, "max_rss_mb": rss,
                           "bursts": bursts, "cpu_s_per_full_burst": round(per_burst, 1)}  # fmt: skip
        print(f"{group.name:15} {len(records):>5} {wall:>8.1f} {cpu:>8.1f} {rss:>8.0f} "
              f"{bursts:>6.0f} {per_burst:>21.1f}")  # fmt: skip
    total_wall = sum(v["wall_s"] for v in out.values())
    total_cpu = sum(v["cpu_s"] for v in out.values())
    print(f"{'total':15} {'':>5} {total_wall:>8.1f} {total_cpu:>8.1f}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="pairs to run (sequential 1)")
    parser.add_argument("--workspace", type=Path, help="report this workspace, run nothing")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    from harness.real_stack import StackSpec

    samples = StackSpec().samples[1] - StackSpec().samples[0]
    workspace = args.workspace or run_stack(Path(tempfile.mkdtemp(prefix="isce-groups-")), args.pairs)
    figures = report(workspace, samples)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
