"""Benchmark: the time-series step for N pairs: our MintPy hand-off against MintPy's own work.

    .venv/bin/python benchmarks/timeseries_step.py --pairs 10 50 --scratch /tmp/ts-bench
    .venv/bin/python benchmarks/timeseries_step.py --pairs 200 --scratch /tmp/ts-bench --width 240 --length 160

Builds, once per N into ``<scratch>/n<N>/`` (not measured; reused by a later run with the same
N and grid), a synthetic track: N pairs over about N/3 dates 12 days apart, each date paired
with its next 1, 2, then 3 dates until there are N pairs (the sequential-1 chain comes first,
so the network is connected). Each pair is a synthetic topsApp run directory
(``tests/isce_synthetic.py``: a Mogi uplift, 0.9 coherence, a low-coherence "lake", swath
edges) exported to our COGs with ``dinsar.products.export_pair``, beside a geocoding DEM that
covers the grid. Then it measures, each in its own child process, wall time and peak RSS
(``os.wait4`` on the child: the largest resident set of it and of its waited-for children):

* (a) ``handoff``: our ``write_mintpy_handoff`` for all N pairs, in one process;
* (b) ``load_data``: MintPy's load_data on those files, from a minimal hand-written template
  (the one in ``tests/test_mintpy_handoff.py``), run as ``smallbaselineApp.py <template>
  --dostep load_data`` (``load_data.py`` alone refuses anything but a complete
  ``smallbaselineApp.cfg``; this is the same code, after MintPy writes that file);
* (c) ``smallbaselineApp``: MintPy's whole ``smallbaselineApp.py`` on the same files, with every
  correction that needs a network or a long stack off (troposphere, ionosphere, solid-earth
  tides, unwrapping-error correction, DEM error, deramp), no plots, no KMZ or HDF-EOS5; it runs
  its own load_data again, so (c) includes (b);
* (d) ``export``: our export of MintPy's results into COGs (``dinsar.timeseries``'s
  ``export_timeseries``), once that module exists: see :func:`child_export_timeseries`.

Every child runs with ``OMP_NUM_THREADS=1`` (and the same for MKL/OpenBLAS): the machine's two
CPUs are shared, and a one-thread figure is comparable between runs. MintPy (GPL-3.0) runs only
as a program; nothing here imports it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))

log = logging.getLogger(__name__)

TRACK = "168_DESC"
REVISIT_DAYS = 12
FIRST_DATE = dt.date(2025, 6, 1)
MAX_NEIGHBOURS = 3  # each date paired with at most its next 3 dates
TIMESERIES_EXPORT_MODULE = ROOT / "scripts" / "dinsar" / "timeseries" / "export.py"
STEPS = ("handoff", "load_data", "smallbaselineApp", "export")
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                     "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")}  # fmt: skip


# ------------------------------------------------------------------------------------------------
# The synthetic track
# ------------------------------------------------------------------------------------------------


def network(n_pairs: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Dates and ``n_pairs`` pairs: the fewest dates whose next-1..3 network holds n_pairs, the
    pairs taken by temporal distance (all next-1, then next-2, ...), so the chain is whole."""
    n_dates = 2
    while sum(max(0, n_dates - k) for k in range(1, MAX_NEIGHBOURS + 1)) < n_pairs:
        n_dates += 1
    dates = [(FIRST_DATE + dt.timedelta(days=REVISIT_DAYS * i)).strftime("%Y%m%d")
             for i in range(n_dates)]  # fmt: skip
    pairs = [(dates[i], dates[i + k]) for k in range(1, MAX_NEIGHBOURS + 1)
             for i in range(n_dates - k)]  # fmt: skip
    return dates, pairs[:n_pairs]


def granule(date: str) -> str:
    return f"S1A_IW_SLC__1SDV_{date}T052632_{date}T052659_05{date[-4:]}_06{date[-4:]}_ABCD"


def date_bperp_m(dates: list[str]) -> dict[str, float]:
    """A spread of perpendicular baselines, as a real track has (within +-150 m)."""
    rng = np.random.default_rng(7)
    return {d: float(v) for d, v in zip(dates, rng.uniform(-150, 150, len(dates)), strict=True)}


def write_geocoding_dem(path: Path, width: int, length: int, margin: int = 3) -> None:
    """A float32 ISCE DEM on the synthetic posting, ``margin`` samples wider on each side."""
    import isce_synthetic as synthetic

    from dinsar.isce_image import IsceImage, write_raster

    rows, cols = np.mgrid[-margin : length + margin, -margin : width + margin]
    height = (420.0 + 0.75 * rows - 0.5 * cols).astype(np.float32)
    image = IsceImage(file_name=path.name, width=width + 2 * margin, length=length + 2 * margin,
                      data_type="FLOAT", image_type="dem",
                      first_lon=synthetic.LON0 - margin * synthetic.DLON, delta_lon=synthetic.DLON,
                      first_lat=synthetic.LAT0 - margin * synthetic.DLAT,
                      delta_lat=synthetic.DLAT)  # fmt: skip
    write_raster(path, [height], image)


def add_unwrapping_error(workdir: Path, index: int) -> None:
    """A 2-pi jump over a small patch of the unwrapped phase, as real unwrapping leaves some.

    Also needed by MintPy 1.6.4 itself: with no phase-closure ambiguity anywhere its
    quick_overview step fails plotting an empty histogram (``bins`` must be positive)."""
    from dinsar.isce_image import read_image, write_raster

    raster = workdir / "merged" / "filt_topophase.unw.geo"
    image = read_image(raster.with_name(raster.name + ".xml"))
    data = np.fromfile(raster, dtype="<f4").reshape(image.length, 2, image.width)  # BIL
    amplitude, phase = data[:, 0, :].copy(), data[:, 1, :].copy()
    row0 = image.length // 3 + (index % 5) * 4
    patch = (slice(row0, row0 + 12), slice(image.width // 3, image.width // 3 + 12))
    phase[patch] = np.where(phase[patch] != 0, phase[patch] + 2 * np.pi, 0)
    write_raster(raster, [amplitude, phase], image)


@dataclass(frozen=True)
class Track:
    root: Path
    dates: list[str]
    pairs: list[tuple[str, str]]

    @property
    def products(self) -> Path:
        return self.root / "products"

    @property
    def dem(self) -> Path:
        return self.root / "dem" / "geocode_dem.wgs84"


def build_track(root: Path, n_pairs: int, width: int, length: int) -> Track:
    """Our exported products of n_pairs synthetic pairs (kept for a rerun on the same grid)."""
    import isce_synthetic as synthetic

    from dinsar.products import PairInfo, export_pair

    dates, pairs = network(n_pairs)
    track = Track(root, dates, pairs)
    stamp = root / "built.json"
    wanted = {"pairs": n_pairs, "width": width, "length": length, "unwrapping_errors": 1}
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        log.info("reusing the %d synthetic pairs in %s", n_pairs, root)
        return track
    shutil.rmtree(root, ignore_errors=True)
    track.dem.parent.mkdir(parents=True)
    write_geocoding_dem(track.dem, width, length)
    bperp = date_bperp_m(dates)
    start = time.perf_counter()
    for index, (reference, secondary) in enumerate(pairs):
        pair = f"{reference}_{secondary}"
        workdir = root / "work" / pair
        synthetic.write_run(workdir, width=width, length=length, reference_date=reference,
                            secondary_date=secondary, phase_offset=0.1 * index)  # fmt: skip
        if index % 3 == 0:
            add_unwrapping_error(workdir, index)
        days = (dt.datetime.strptime(secondary, "%Y%m%d")
                - dt.datetime.strptime(reference, "%Y%m%d")).days  # fmt: skip
        info = PairInfo(pair=pair, reference=reference, secondary=secondary, btemp_days=days,
                        bperp_m=bperp[secondary] - bperp[reference], track=TRACK,
                        bperp_source="synthetic")  # fmt: skip
        export_pair(workdir, track.products / pair, pair_info=info, threads=1)
        shutil.rmtree(workdir)  # the topsApp-like run is not needed after the export
    shutil.rmtree(root / "work", ignore_errors=True)
    stamp.write_text(json.dumps(wanted))
    log.info("built %d pairs over %d dates (%d x %d) in %.0f s", len(pairs), len(dates), width,
             length, time.perf_counter() - start)  # fmt: skip
    return track


# ------------------------------------------------------------------------------------------------
# The measured steps
# ------------------------------------------------------------------------------------------------


def child_handoff(root: Path) -> None:
    """(a) our hand-off of every pair, as the time-series step writes it."""
    from dinsar.products.mintpy_handoff import RadarInfo, write_mintpy_handoff

    track_dem = root / "dem" / "geocode_dem.wgs84"
    for folder in sorted((root / "products").iterdir()):
        reference, secondary = folder.name.split("_")
        radar = RadarInfo(utc_seconds=5 * 3600 + 26 * 60 + 45.5, range_looks=19, azimuth_looks=7,
                          reference_granules=(granule(reference),),
                          secondary_granules=(granule(secondary),), filter_strength=0.5)  # fmt: skip
        write_mintpy_handoff(folder, radar, track_dem)


def child_export_timeseries(root: Path) -> None:
    """(d) our export of MintPy's results (timeseries.h5, velocity.h5, ...) into COGs, with the
    stable reference of ``reference_point: auto``, as the workflow runs it."""
    from dinsar.timeseries import export_timeseries

    export_timeseries(root / "mintpy_sbas", root / "timeseries_products", track=TRACK,
                      stable_reference=True)  # fmt: skip


def template_text(products: Path, full_run: bool) -> str:
    """A minimal MintPy template a user would write; for the whole run, the network-dependent
    corrections off (they need weather data, a long stack or unwrapping errors to fix)."""
    lines = [
        "mintpy.load.processor      = hyp3",
        f"mintpy.load.unwFile        = {products}/*/*_unw_phase.tif",
        f"mintpy.load.corFile        = {products}/*/*_corr.tif",
        f"mintpy.load.connCompFile   = {products}/*/*_conncomp.tif",
        f"mintpy.load.demFile        = {products}/*/*_dem.tif",
        f"mintpy.load.incAngleFile   = {products}/*/*_lv_theta.tif",
        f"mintpy.load.azAngleFile    = {products}/*/*_lv_phi.tif",
    ]
    if full_run:
        lines += [
            "mintpy.compute.cluster             = no",
            "mintpy.network.coherenceBased      = no",
            "mintpy.unwrapError.method          = no",
            "mintpy.troposphericDelay.method    = no",
            "mintpy.ionosphericDelay.method     = no",
            "mintpy.solidEarthTides             = no",
            "mintpy.topographicResidual         = no",
            "mintpy.deramp                      = no",
            "mintpy.save.kmz                    = no",
            "mintpy.save.hdfEos5                = no",
            "mintpy.plot                        = no",
        ]
    return "\n".join(lines) + "\n"


def mintpy_program(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: install MintPy (pip install -e '.[timeseries]')")
    return found


@dataclass(frozen=True)
class Measured:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float

    def rounded(self) -> dict[str, float]:
        return {"wall_s": round(self.wall_s, 2), "cpu_s": round(self.cpu_s, 2),
                "peak_rss_mb": round(self.peak_rss_mb, 1)}  # fmt: skip


def run_measured(command: list[str], cwd: Path, log_path: Path) -> Measured:
    """Run one step as a child; wall time, CPU (user + system) and peak RSS from wait4."""
    env = {**os.environ, **ONE_THREAD, "MPLBACKEND": "Agg"}
    with open(log_path, "w") as output:
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        tail = log_path.read_text()[-3000:]
        raise SystemExit(
            f"{' '.join(command)} failed ({child.returncode}); see {log_path}:\n{tail}"
        )
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0)  # kB


def measure_track(track: Track) -> dict[str, Measured | str]:
    """Steps (a) to (d) on one built track, each in a fresh child and a fresh MintPy folder."""
    results: dict[str, Measured | str] = {}
    logs = track.root / "logs"
    logs.mkdir(exist_ok=True)
    results["handoff"] = run_measured(
        [sys.executable, __file__, "--child", "handoff", str(track.root)], track.root,
        logs / "handoff.log")  # fmt: skip

    for step, full_run in (("load_data", False), ("smallbaselineApp", True)):
        workdir = track.root / ("mintpy_load" if step == "load_data" else "mintpy_sbas")
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir()
        template = workdir / "handwritten.txt"
        template.write_text(template_text(track.products, full_run))
        # load_data.py alone insists on a complete smallbaselineApp.cfg; MintPy's own way to
        # run only its loading from a user's template is smallbaselineApp's --dostep
        command = [mintpy_program("smallbaselineApp.py"), str(template)]
        if not full_run:
            command += ["--dostep", "load_data"]
        results[step] = run_measured(command, workdir, logs / f"{step}.log")
        log.info("%s: %s", step, results[step])

    if TIMESERIES_EXPORT_MODULE.is_file():
        results["export"] = run_measured(
            [sys.executable, __file__, "--child", "export", str(track.root)], track.root,
            logs / "export.log")  # fmt: skip
    else:
        results["export"] = (f"not measured: {TIMESERIES_EXPORT_MODULE.relative_to(ROOT)} does "
                             "not exist on this branch")  # fmt: skip
    return results


def machine() -> str:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {ram:.0f} GiB RAM, load {load}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--scratch", type=Path,
                        help="folder for the synthetic tracks and MintPy's runs")  # fmt: skip
    parser.add_argument("--width", type=int, default=400, help="grid columns (test grid: 240)")
    parser.add_argument("--length", type=int, default=400, help="grid rows (test grid: 160)")
    parser.add_argument("--child", nargs=2, metavar=("STEP", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("dinsar").setLevel(logging.WARNING)  # one line per pair is noise here

    if args.child:
        step, root = args.child
        {"handoff": child_handoff, "export": child_export_timeseries}[step](Path(root))
        return 0
    if args.scratch is None:
        parser.error("--scratch is required")

    for n_pairs in args.pairs:
        root = args.scratch / f"n{n_pairs}"
        start = time.perf_counter()
        track = build_track(root, n_pairs, args.width, args.length)
        built_s = time.perf_counter() - start
        results = measure_track(track)
        handoff, load = results["handoff"], results["load_data"]
        assert isinstance(handoff, Measured) and isinstance(load, Measured)
        row = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": f"benchmarks/timeseries_step.py --pairs {n_pairs} --width {args.width} "
            f"--length {args.length}",
            "machine": machine(),
            "pairs": len(track.pairs),
            "dates": len(track.dates),
            "grid": f"{args.width} x {args.length}",
            "build_s": round(built_s, 1),
            **{step: (value.rounded() if isinstance(value, Measured) else value)
               for step, value in results.items()},  # fmt: skip
            "handoff_over_load_data_wall": round(handoff.wall_s / load.wall_s, 3),
            "handoff_over_load_data_rss": round(handoff.peak_rss_mb / load.peak_rss_mb, 3),
        }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
