"""Benchmark: export + quicklooks of a full-frame-sized geocoded pair vs a plain rasterio copy.

    .venv/bin/python benchmarks/products.py                      # 20000 x 15000, in $TMPDIR
    .venv/bin/python benchmarks/products.py --width 4000 --length 3000 --tmp /scratch

Writes a synthetic topsApp run directory (ISCE-format merged/*.geo with .xml/.vrt sidecars,
2-band float32 BIL unw/cor/los, complex64 interferogram, float32 phsig, uint8 conncomp, and
reference/IW1.xml with the wavelength), then measures, each in its own child process:

* copy:   every input raster read through its .vrt and written as a plain GeoTIFF with
          ``rasterio.shutil.copy`` (the same bytes in and out; the I/O floor);
* export: ``dinsar export`` (all COGs + quicklooks) of the same directory.

It reports wall time and peak RSS (``ru_maxrss`` of the child). Targets: export <= 2x copy
time, export peak RSS <= 1 GB. The copy runs before and after the export and the baseline is
their mean. Run as root, each step starts with a cold page cache (sync + drop_caches), so no
step profits from data another left in memory. Needs about 3.5x the input size free.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from dinsar.isce_image import IsceImage, write_sidecars  # noqa: E402

WAVELENGTH = 0.05546576
TIME_TARGET = 2.0
RSS_TARGET_MB = 1024.0


def _image(name: str, width: int, length: int, data_type: str, bands: int, scheme: str) -> IsceImage:
    return IsceImage(f"merged/{name}", width, length, data_type, bands, scheme,
                     first_lon=11.0, delta_lon=1 / 1200, first_lat=47.0, delta_lat=-1 / 1200)  # fmt: skip


def generate(workdir: Path, width: int, length: int) -> int:
    """Write the synthetic run directory block by block; returns the bytes of raster written."""
    merged = workdir / "merged"
    merged.mkdir(parents=True, exist_ok=True)
    specs = {
        "filt_topophase.unw.geo": ("FLOAT", 2, "BIL"),
        "filt_topophase.flat.geo": ("CFLOAT", 1, "BIP"),
        "topophase.cor.geo": ("FLOAT", 2, "BIL"),
        "phsig.cor.geo": ("FLOAT", 1, "BIP"),
        "los.rdr.geo": ("FLOAT", 2, "BIL"),
        "filt_topophase.unw.conncomp.geo": ("BYTE", 1, "BIP"),
    }
    handles = {name: open(merged / name, "wb") for name in specs}  # noqa: SIM115
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.3, size=(256, width)).astype(np.float32)
    cols = np.arange(width, dtype=np.float32)
    block = 256
    try:
        for row0 in range(0, length, block):
            rows = min(block, length - row0)
            r = np.arange(row0, row0 + rows, dtype=np.float32)[:, None]
            n = noise[:rows]
            # a smooth deformation-like field plus speckle-like noise; 0 outside a slanted swath
            phase = 6 * np.sin(r / 900.0) * np.cos(cols / 1300.0) + n
            valid = cols[None, :] > (r * 0.15 + 200)
            amp = np.where(valid, 100 + 30 * n, 0).astype(np.float32)
            phase = np.where(valid, phase, 0).astype(np.float32)
            coh = np.where(valid, np.clip(0.6 + 0.3 * np.sin(cols / 700.0) + 0.2 * n, 0, 1), 0)
            coh = coh.astype(np.float32)
            inc = np.where(valid, 30 + 15 * cols / width + 0 * r, 0).astype(np.float32)
            az = np.where(valid, np.float32(-100.8) + 0 * r, 0).astype(np.float32)
            handles["filt_topophase.unw.geo"].write(np.stack([amp, phase], axis=1).tobytes())
            flat = (amp * np.exp(1j * phase)).astype(np.complex64)
            handles["filt_topophase.flat.geo"].write(flat.tobytes())
            handles["topophase.cor.geo"].write(np.stack([amp, coh], axis=1).tobytes())
            handles["phsig.cor.geo"].write(coh.tobytes())
            handles["los.rdr.geo"].write(np.stack([inc, az], axis=1).tobytes())
            handles["filt_topophase.unw.conncomp.geo"].write(valid.astype(np.uint8).tobytes())
    finally:
        for handle in handles.values():
            handle.close()
    total = 0
    for name, (dtype, bands, scheme) in specs.items():
        write_sidecars(merged / name, _image(name, width, length, dtype, bands, scheme))
        total += (merged / name).stat().st_size
    iw = workdir / "reference" / "IW1.xml"
    iw.parent.mkdir(exist_ok=True)
    iw.write_text(
        '<productmanager_name><component name="instance"><component name="bursts">'
        '<component name="burst1"><property name="radarwavelength"><value>'
        f"{WAVELENGTH}</value></property>"
        '<property name="sensingstart"><value>2021-04-01 05:26:32.4</value></property>'
        '<property name="tracknumber"><value>168</value></property>'
        '<property name="passdirection"><value>DESCENDING</value></property>'
        "</component></component></component></productmanager_name>\n"
    )
    return total


def child_copy(workdir: Path, outdir: Path) -> None:
    import rasterio
    import rasterio.shutil

    outdir.mkdir(parents=True, exist_ok=True)
    with rasterio.Env():
        for vrt in sorted((workdir / "merged").glob("*.geo.vrt")):
            rasterio.shutil.copy(vrt, outdir / (vrt.name[: -len(".vrt")] + ".tif"), driver="GTiff")


def child_export(workdir: Path, outdir: Path) -> None:
    from dinsar.cli import main

    code = main(["-v", "export", str(workdir), str(outdir)])
    if code:
        raise SystemExit(code)


def measure(kind: str, workdir: Path, outdir: Path) -> dict[str, float]:
    """Run one measured step in a fresh interpreter; wall time and that child's peak RSS."""
    shutil.rmtree(outdir, ignore_errors=True)
    subprocess.run(["sync"], check=False)  # noqa: S607 (flush earlier writes out of this timing)
    cold = drop_caches()
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(workdir), str(outdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{proc.stderr[-3000:]}")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    out_bytes = sum(p.stat().st_size for p in outdir.rglob("*") if p.is_file())
    (workdir.parent / f"{kind}.log").write_text(proc.stderr)
    return {"wall_s": wall, "peak_rss_mb": child["peak_rss_mb"], "output_bytes": out_bytes,
            "cold_cache": cold}  # fmt: skip


def drop_caches() -> bool:
    """Empty the page cache (root only), so every measured step reads from disk."""
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=20000)
    parser.add_argument("--length", type=int, default=15000)
    parser.add_argument("--tmp", default=None, help="directory for the (large) test data")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "WORKDIR", "OUTDIR"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()

    if args.child:
        kind, workdir, outdir = args.child
        {"copy": child_copy, "export": child_export}[kind](Path(workdir), Path(outdir))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux
        print(json.dumps({"peak_rss_mb": peak}))
        return 0

    need = int(args.width * args.length * 37 * 3.5)  # inputs + copy + export outputs
    base = Path(args.tmp or tempfile.gettempdir())
    free = shutil.disk_usage(base).free
    if free < need:
        raise SystemExit(
            f"{base} has {free / 1e9:.1f} GB free, the benchmark needs about {need / 1e9:.1f} GB; "
            "use --tmp or a smaller --width/--length"
        )
    root = Path(tempfile.mkdtemp(prefix="dinsar-bench-", dir=base))
    try:
        t0 = time.perf_counter()
        total = generate(root / "work", args.width, args.length)
        gen = time.perf_counter() - t0
        print(f"generated {total / 1e9:.2f} GB of ISCE rasters in {gen:.0f} s", file=sys.stderr)
        copy1 = measure("copy", root / "work", root / "copy")
        export = measure("export", root / "work", root / "products")
        copy2 = measure("copy", root / "work", root / "copy")
        copy_s = (copy1["wall_s"] + copy2["wall_s"]) / 2
        result = {
            "date": dt.date.today().isoformat(),
            "command": " ".join([Path(sys.executable).name, "benchmarks/products.py",
                                 f"--width {args.width}", f"--length {args.length}"]),  # fmt: skip
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM",
            "raster": f"{args.width} x {args.length}",
            "input_gb": round(total / 1e9, 2),
            "copy_s": [round(copy1["wall_s"], 1), round(copy2["wall_s"], 1)],
            "copy_peak_rss_mb": round(max(copy1["peak_rss_mb"], copy2["peak_rss_mb"])),
            "export_s": round(export["wall_s"], 1),
            "export_peak_rss_mb": round(export["peak_rss_mb"]),
            "export_output_gb": round(export["output_bytes"] / 1e9, 2),
            "time_ratio": round(export["wall_s"] / copy_s, 2),
            "cold_page_cache": bool(copy1["cold_cache"] and export["cold_cache"]),
        }
        result["meets_targets"] = bool(
            result["time_ratio"] <= TIME_TARGET and result["export_peak_rss_mb"] <= RSS_TARGET_MB
        )
        print(json.dumps(result, indent=1))
        return 0 if result["meets_targets"] else 1
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
