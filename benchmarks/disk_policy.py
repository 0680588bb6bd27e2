"""Peak workspace size of N pairs run with 2 concurrent topsApp jobs: keep: products vs all.

Runs the real workflow (Snakemake, the ISCE rules) on staged inputs with the topsApp test double
(tests/topsapp_double), whose burst-level intermediates are DINSAR_DOUBLE_BURST_BYTES each, and
samples the size of work/ (the topsApp trees) and of the whole workspace every 50 ms.

    .venv/bin/python benchmarks/disk_policy.py --pairs 4 --burst-mb 2

Prints a Markdown table for benchmarks/README.md and writes benchmarks/out/disk_policy.json.
Offline: the inputs are built from the shared fixtures (DINSAR_SHARED, default ../shared).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))

from dinsar.config import validate_config  # noqa: E402
from dinsar.isce_run import GROUPS, directory_bytes, pair_targets  # noqa: E402
from dinsar.search import run_search  # noqa: E402
from dinsar.stack import Stack  # noqa: E402
from harness import safe_factory as sf  # noqa: E402

ROI = "POLYGON ((-121.2 54.5, -120.8 54.5, -120.8 54.8, -121.2 54.8, -121.2 54.5))"
STACK = "S1A_IW_SLC__1SSV_20160528T141908_20160528T141938_011460_011746_335C_stack.yml"
GEOCODE = ["merged/filt_topophase.unw", "merged/filt_topophase.flat", "merged/topophase.cor",
           "merged/phsig.cor", "merged/los.rdr", "merged/filt_topophase.unw.conncomp"]  # fmt: skip
RULES = ["search", "topsapp_xml", *[f"isce_{g.name}" for g in GROUPS], "isce_cleanup"]


def saved_search(folder: Path) -> Path:
    """The path-13 stack as an asf_search GeoJSON export (the `inventory:` input)."""
    import asf_search
    import yaml
    from asf_search.search.search_generator import as_ASFProduct

    records = yaml.safe_load((sf.SHARED / "fixtures" / "asf_search" / STACK).read_text())
    session = asf_search.ASFSession()
    products = [as_ASFProduct({"umm": r["umm"], "meta": r["meta"]}, session) for r in records]
    path = folder / "stack.geojson"
    path.write_text(json.dumps(asf_search.ASFSearchResults(products).geojson()))
    return path


class Sampler(threading.Thread):
    """Largest size seen of each folder while the run lasts."""

    def __init__(self, folders: dict[str, Path], period: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.folders = folders
        self.period = period
        self.peak = dict.fromkeys(folders, 0)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for name, folder in self.folders.items():
                if folder.exists():
                    self.peak[name] = max(self.peak[name], directory_bytes(folder))
            time.sleep(self.period)


def run_case(root: Path, inventory: Path, keep: str, pairs: int, burst_bytes: int,
             cores: int) -> dict:  # fmt: skip
    workspace = root / keep / "ws"
    config = {
        "workspace": str(workspace), "roi": ROI, "inventory": str(inventory),
        "dates": {"start": "2016-09-01", "end": "2017-03-01"},
        "isce": {"threads": 1}, "keep": keep,
    }  # fmt: skip
    cfg = validate_config(config)
    run_search(cfg, workspace / "inventory" / "scenes.geojson", workspace / "inventory" / "dates.csv")
    stack = Stack.load(workspace / "inventory" / "scenes.geojson", workspace / "inventory" / "dates.csv", cfg)
    chosen = stack.pairs[:pairs]
    dates = sorted({d for p in chosen for d in (p.reference, p.secondary)})
    sf.stage_inputs(workspace, workspace / "cache" / "slc", workspace / "inventory" / "scenes.geojson",
                    dates, dem_bounds=[-121.6, 54.2, -120.4, 55.1], dem_posting=1 / 400)  # fmt: skip
    config_file = root / keep / "config.json"
    config_file.write_text(json.dumps(config))
    targets = pair_targets([p.id for p in chosen], lambda *parts: str(workspace.joinpath(*parts)),
                           geocode=GEOCODE, unwrap=True, unwrapper="snaphu_mcf", keep=keep)  # fmt: skip
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(REPO / "tests" / "topsapp_double"), str(Path(sys.executable).parent),
                                 os.environ.get("PATH", "")]),  # fmt: skip
        "DINSAR_DOUBLE_BURST_BYTES": str(burst_bytes),
    }
    before = directory_bytes(workspace)
    sampler = Sampler({"work": workspace / "work", "workspace": workspace})
    sampler.start()
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603 - fixed argument list
        [str(Path(sys.executable).with_name("snakemake")), "-s", str(REPO / "Snakefile"),
         "-d", str(root / keep), "--cores", str(cores), *targets, "--allowed-rules", *RULES,
         "--configfile", str(config_file)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    sampler.done.set()
    sampler.join()
    if result.returncode != 0:
        sys.exit(f"snakemake failed ({keep}):\n{result.stderr[-3000:]}")
    return {
        "keep": keep,
        "pairs": len(chosen),
        "staged_bytes": before,
        "peak_work_bytes": sampler.peak["work"],
        "final_work_bytes": directory_bytes(workspace / "work"),
        "peak_workspace_bytes": sampler.peak["workspace"],
        "final_workspace_bytes": directory_bytes(workspace),
        "seconds": round(elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--burst-mb", type=float, default=2.0,
                        help="size of each burst-level intermediate raster written by the double")  # fmt: skip
    parser.add_argument("--cores", type=int, default=2, help="2 = two topsApp jobs at a time")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "disk_policy.json")
    args = parser.parse_args()
    burst_bytes = int(args.burst_mb * 1e6)
    with tempfile.TemporaryDirectory(prefix="disk_policy_") as folder:
        root = Path(folder)
        inventory = saved_search(root)
        rows = [run_case(root, inventory, keep, args.pairs, burst_bytes, args.cores)
                for keep in ("products", "all")]  # fmt: skip
    per_pair = rows[1]["final_work_bytes"] / max(1, rows[1]["pairs"])
    record = {"date": dt.date.today().isoformat(), "burst_bytes": burst_bytes, "cores": args.cores,
              "intermediate_bytes_per_pair": per_pair, "cases": rows}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    mb = 1e6
    print("| keep | pairs | peak work/ (MB) | peak / pair trees | final work/ (MB) | time (s) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['keep']} | {row['pairs']} | {row['peak_work_bytes'] / mb:.1f} | "
              f"{row['peak_work_bytes'] / per_pair:.2f} | {row['final_work_bytes'] / mb:.1f} | "
              f"{row['seconds']} |")  # fmt: skip
    print(f"\none pair's topsApp tree: {per_pair / mb:.1f} MB "
          f"(burst intermediates of {args.burst_mb} MB); {record['date']}; "
          f"command: .venv/bin/python benchmarks/disk_policy.py --pairs {args.pairs} "
          f"--burst-mb {args.burst_mb} --cores {args.cores}")


if __name__ == "__main__":
    main()
