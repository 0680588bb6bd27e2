"""Topo once per reference date (isce.reuse_geometry): ISCE compute of a stack both ways.

    .venv/bin/python benchmarks/geometry_reuse.py                       # run the shared real stack twice
    .venv/bin/python benchmarks/geometry_reuse.py --dates 4 --sequential 3
    .venv/bin/python benchmarks/geometry_reuse.py --workspaces SHARED OWN   # report two finished runs

Runs the shared real stack of the tests (tests/harness/real_stack.py, the real topsApp.py,
emulated services on 127.0.0.1) through the workflow twice in one invocation, with
``isce.reuse_geometry: true`` and ``false``, and sums the exact resource usage of every ISCE
process: each ISCE job writes ``logs/<rule>/<job>.usage.json`` from wait4 on its child (topsApp,
or the state writer of a reusing pair), so this is the children's own CPU time, not
Snakemake's sampled benchmark files. Wall time: the ISCE jobs' own wall time summed (the work a
single stream of jobs would take) and the whole Snakemake run's.

The model's expectation beside it (dinsar.geometry.expected_cpu_ratio: about
``1 - s (1 - references / pairs)``, s the topo share of a pair's ISCE CPU, plus a second
preprocess per reference date), with the groups' CPU as measured in the run without reuse and
with the rules' calibration (dinsar.isce_run.cpu_seconds).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))

from dinsar.geometry import expected_cpu_ratio  # noqa: E402
from dinsar.isce_run import GROUPS, cpu_seconds  # noqa: E402

RULES = [g.rule for g in GROUPS] + ["isce_geometry"]


def run_both(root: Path, dates: int, sequential: int, threads: int) -> dict[str, Path | float]:
    """The stack with reuse on, then off (same services, same caches for the inputs)."""
    from harness.real_services import RealServices
    from harness.real_stack import build
    from harness.server import LocalHTTPSServer
    from harness.tls import make_tls
    from workflow_runner import output_of, snakemake, write_config

    stack = build()
    tls = make_tls(root / "tls")
    chosen = [s.date for s in stack.scenes][:dates]
    iso = [f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in chosen]
    out: dict[str, Path | float] = {}
    with LocalHTTPSServer(tls.server_context) as server:
        services = RealServices.start(stack, server, str(tls.ca_pem))
        for label, reuse in (("shared", True), ("own", False)):
            folder = root / label
            folder.mkdir()
            config = services.config(folder / "ws", root / "cache", pairs={"sequential": sequential},
                                     dates={"start": iso[0], "end": iso[-1]},
                                     isce={"reuse_geometry": reuse, "threads": threads})  # fmt: skip
            started = time.monotonic()
            # --cores = threads: one topsApp process at a time, so the wall times add up
            result = snakemake(folder, write_config(folder, config), "--cores", str(threads),
                               env=services.user_env(folder / "home"), timeout=6 * 3600)  # fmt: skip
            if result.returncode != 0:
                sys.exit(output_of(result)[-4000:])
            out[label] = folder / "ws"
            out[f"{label}_run_s"] = time.monotonic() - started
    return out


def usage(workspace: Path) -> dict[str, list[dict]]:
    return {rule: [json.loads(p.read_text()) for p in sorted((workspace / "logs" / rule).glob("*.usage.json"))]
            for rule in RULES}  # fmt: skip


def totals(records: dict[str, list[dict]]) -> dict[str, float]:
    every = [r for rows in records.values() for r in rows]
    topo = [*records["isce_topo"], *records["isce_geometry"]]
    return {
        "cpu_s": sum(r["cpu_s"] for r in every),
        "wall_s": sum(r["wall_s"] for r in every),
        "topo_cpu_s": sum(r["cpu_s"] for r in topo),
        "topo_runs": sum(1 for r in topo if not r.get("reused")),
        "pairs": len(records["isce_preprocess"]),
        "references": len(records["isce_geometry"]),
    }


def model_ratio(pairs: int, references: int, bursts: int, looks: tuple[int, int]) -> tuple[float, float]:
    """(topo share s of a pair's ISCE CPU, expected CPU ratio) from the rules' calibration."""
    per_group = {g.name: cpu_seconds(g.name, bursts, *looks) for g in GROUPS}
    return per_group["topo"] / sum(per_group.values()), expected_cpu_ratio(pairs, references, per_group)


def report(shared: Path, own: Path, run_s: dict[str, float] | None = None) -> dict:
    a, b = totals(usage(shared)), totals(usage(own))
    info = json.loads(next((shared / "work").glob("*_*/dinsar_pair.json")).read_text())
    share, expected = model_ratio(a["pairs"], a["references"], info["bursts"],
                                  (info["range_looks"], info["azimuth_looks"]))  # fmt: skip
    measured_share = b["topo_cpu_s"] / b["cpu_s"]
    # the model with the measured groups of the run without reuse (per pair, mean)
    own = usage(own)
    measured = {g.name: sum(r["cpu_s"] for r in own[g.rule]) / b["pairs"] for g in GROUPS}
    expected_measured = expected_cpu_ratio(a["pairs"], a["references"], measured)
    rows = [("ISCE CPU s (children, wait4)", a["cpu_s"], b["cpu_s"]),
            ("ISCE jobs' wall s, summed", a["wall_s"], b["wall_s"]),
            ("topo CPU s (geometry jobs + pairs' topo)", a["topo_cpu_s"], b["topo_cpu_s"]),
            ("topsApp topo runs", a["topo_runs"], b["topo_runs"])]  # fmt: skip
    if run_s:
        rows.append(("Snakemake run wall s", run_s["shared"], run_s["own"]))
    print(f"{a['pairs']} pairs, {a['references']} reference dates, {info['bursts']} bursts per pair")
    print(f"{'':44} {'reuse':>10} {'per pair':>10} {'ratio':>7}")
    for name, x, y in rows:
        print(f"{name:44} {x:>10.1f} {y:>10.1f} {x / y:>7.3f}")
    print(f"topo share of ISCE CPU, one topo per pair: measured {measured_share:.3f}, "
          f"calibration (CPU_S_PER_BURST) {share:.3f}")  # fmt: skip
    print(f"expected CPU ratio (dinsar.geometry.expected_cpu_ratio): {expected_measured:.3f} with "
          f"the groups measured without reuse; {expected:.3f} with the rules' calibration")  # fmt: skip
    return {"date": dt.date.today().isoformat(), "shared": a, "own": b, "run_s": run_s,
            "cpu_ratio": a["cpu_s"] / b["cpu_s"], "wall_ratio": a["wall_s"] / b["wall_s"],
            "topo_share_measured": measured_share, "expected_ratio_measured_s": expected_measured,
            "topo_share_model": share, "expected_ratio_model": expected}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspaces", nargs=2, type=Path, metavar=("SHARED", "OWN"),
                        help="report two finished workspaces (reuse on, reuse off)")  # fmt: skip
    parser.add_argument("--dates", type=int, default=4)
    parser.add_argument("--sequential", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", type=Path, help="run in this new folder and keep it")
    args = parser.parse_args()
    if args.workspaces:
        result = report(*args.workspaces)
    else:
        with tempfile.TemporaryDirectory(prefix="geometry_reuse_") as tmp:
            root = args.keep or Path(tmp)
            root.mkdir(parents=True, exist_ok=True)
            runs = run_both(root, args.dates, args.sequential, args.threads)
            result = report(runs["shared"], runs["own"],  # type: ignore[arg-type]
                            {"shared": runs["shared_run_s"], "own": runs["own_run_s"]})  # type: ignore[dict-item]
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
