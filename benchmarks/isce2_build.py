"""How long `make isce2` takes: envs/isce2/build.sh into a fresh builds folder.

    .venv/bin/python benchmarks/isce2_build.py            # build, measure, remove the build
    .venv/bin/python benchmarks/isce2_build.py --keep     # and keep it (prints where)

The system packages must be installed already (the first `make isce2` installs them; that
apt step is the network part and is timed apart in benchmarks/README.md). Measured: wall time,
the CPU time of the build's processes (cmake, the compilers), and the size of the install.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def folder_bytes(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the build")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="isce2-bench-"))
    env = {**os.environ, "DINSAR_ISCE2_ROOT": str(root), "ISCE2_JOBS": str(os.cpu_count() or 2)}
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(["bash", str(REPO / "envs/isce2/build.sh")], env=env,
                            capture_output=True, text=True, check=False)  # fmt: skip
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        return result.returncode
    install = next(root.glob("*/install.json")).parent
    record = {
        "wall_s": round(wall, 1),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
        "cpus": os.cpu_count(),
        "install_mb": round(folder_bytes(install) / 1e6, 1),
        "load_1min_before": load,
        "install": str(install),
    }
    print(json.dumps(record, indent=1))
    if not args.keep:
        shutil.rmtree(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
