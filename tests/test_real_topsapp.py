"""The whole workflow with the real topsApp.py (ISCE2 2.6.5) on the shared real stack.

From a saved search to the products: Earthdata login and downloads (emulated), orbits
(emulated bucket), the DEM from `dem.file`, topsApp.xml, the seven step groups with the real
topsApp.py, export. The stack's truth is known (harness.real_stack): a constant line-of-sight
velocity towards the satellite on a Gaussian bump, and a decorrelated patch on one date.

Tolerance for the displacement at the bump: topsApp's Goldstein filter (strength 0.5) smooths
the unwrapped phase, and its loss depends on the signal's size and gradient: 2-22 % on real
runs, about 10-25 % on this bump (sigma 1.2 km, 10 to 20 mm). The peak test therefore accepts
60-100 % of the truth with the right sign; the unfiltered interferogram (``topophase.flat``)
carries the full signal and is checked to 0.1 rad.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from workflow_runner import executed_rules, output_of, snakemake, write_config

pytestmark = [pytest.mark.real]


def grid_latlon(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with rasterio.open(path) as src:
        rows, cols = np.mgrid[0 : src.height, 0 : src.width]
        lon = src.transform.c + (cols + 0.5) * src.transform.a
        lat = src.transform.f + (rows + 0.5) * src.transform.e
    return lat, lon


def band(path: Path, index: int = 1) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(index).astype(np.float64)


@pytest.fixture(scope="session")
def real_run(tmp_path_factory, real_topsapp, real_services):
    """Every pair of the stack (sequential: 2) through the real topsApp, keep: products."""
    root = tmp_path_factory.mktemp("real_run")
    env = real_services.user_env(root / "home")
    config = real_services.config(root / "ws", root / "cache")
    path = write_config(root, config)
    result = snakemake(root, path, "--cores", "2", env=env, timeout=4 * 3600)
    assert result.returncode == 0, output_of(result)[-8000:]
    return {"root": root, "workspace": root / "ws", "result": result, "env": env, "config": path}


def pair_days(pair: str) -> float:
    import datetime as dt

    ref, sec = (dt.datetime.strptime(d, "%Y%m%d") for d in pair.split("_"))
    return (sec - ref).days


def test_every_pair_ran_through_the_real_topsapp(real_run, real_stack) -> None:
    ran = executed_rules(real_run["result"])
    pairs = sorted(p.name for p in (real_run["workspace"] / "products").iterdir() if "_" in p.name)
    dates = [s.date for s in real_stack.scenes]
    assert pairs == sorted(f"{a}_{b}" for i, a in enumerate(dates) for b in dates[i + 1 : i + 3])
    for group in ("preprocess", "topo", "coregistration", "interferogram", "filter", "unwrap",
                  "geocode"):  # fmt: skip
        assert ran.count(f"isce_{group}") == len(pairs), group
    log = (real_run["workspace"] / "logs" / "isce_topo" / f"{pairs[0]}.log").read_text()
    assert "ISCE VERSION = 2.6.5" in log  # the real program, not the double


@pytest.mark.parametrize("pair_index", range(5))
def test_displacement_at_the_bump_has_the_right_sign_and_size(real_run, real_stack, pair_index):
    pairs = sorted(p.name for p in (real_run["workspace"] / "products").iterdir() if "_" in p.name)
    pair = pairs[pair_index]
    products = real_run["workspace"] / "products" / pair
    disp = band(products / "los_displacement.tif")
    lat, lon = grid_latlon(products / "los_displacement.tif")
    truth = real_stack.truth(lat, lon, pair_days(pair))
    valid = np.isfinite(disp)
    peak = np.unravel_index(np.argmax(np.where(valid, truth, -1)), truth.shape)
    far = valid & (truth < 1e-3 * truth.max())
    offset = np.median(disp[far])
    measured = disp[peak] - offset
    # towards the satellite: positive; within the filter's loss (module docstring)
    assert truth[peak] > 0.009
    assert 0.6 * truth[peak] < measured <= 1.02 * truth[peak], (pair, measured, truth[peak])
    # the product's extremum is where the truth's is (within a pixel)
    found = np.unravel_index(np.nanargmax(np.where(valid, disp, -np.inf)), disp.shape)
    assert abs(found[0] - peak[0]) <= 1 and abs(found[1] - peak[1]) <= 1
    # the far field is near zero (the reference point is not set: the offset is arbitrary)
    assert np.percentile(np.abs(disp[far] - offset), 99) < 5e-4


def test_unfiltered_phase_carries_the_full_signal(real_run, real_stack) -> None:
    """topsApp's unfiltered geocoded interferogram: the injected phase to 0.1 rad."""
    pair = sorted(p.name for p in (real_run["workspace"] / "work").iterdir() if "_" in p.name)[0]
    flat = real_run["workspace"] / "work" / pair / "merged" / "topophase.flat.geo.vrt"
    if not flat.exists():
        pytest.skip("topophase.flat is not in the geocode list")
    lat, lon = grid_latlon(flat)
    with rasterio.open(flat) as src:
        phase = np.angle(src.read(1))
    truth = real_stack.truth(lat, lon, pair_days(pair))
    expected = -4 * math.pi / real_stack.wavelength * truth  # topsApp: + for a range increase
    strong = truth > 0.5 * truth.max()
    error = np.angle(np.exp(1j * (phase[strong] - expected[strong])))
    assert np.median(np.abs(error)) < 0.1


def test_incidence_angle_and_geometry(real_run) -> None:
    pair = sorted(p.name for p in (real_run["workspace"] / "products").iterdir() if "_" in p.name)[0]
    products = real_run["workspace"] / "products" / pair
    incidence = band(products / "incidence_angle.tif")
    azimuth = band(products / "azimuth_angle.tif")
    valid = np.isfinite(incidence)
    # IW1 of a descending pass over 46.4 N: 32-37 degrees, increasing to the west (far range)
    assert 31 < np.nanmin(incidence) and np.nanmax(incidence) < 38
    west, east = incidence[valid & (grid_latlon(products / "incidence_angle.tif")[1] < 11.6)], \
        incidence[valid & (grid_latlon(products / "incidence_angle.tif")[1] > 11.7)]
    assert np.median(west) > np.median(east)
    # right-looking descending: the satellite lies to the east-south-east of the target
    assert -110 < np.nanmedian(azimuth) < -95


def test_keep_products_removed_the_real_intermediates(real_run) -> None:
    for work in sorted((real_run["workspace"] / "work").iterdir()):
        if not work.is_dir():
            continue
        assert not (work / "geom_reference").exists()
        assert not (work / "fine_coreg").exists()
        assert not list(work.glob("merged/*.full*"))
        for name in ("filt_topophase.unw.geo", "topophase.cor.geo", "los.rdr.geo", "dem.crop"):
            assert (work / "merged" / name).is_file(), (work, name)
        assert json.loads((work / "cleanup.json").read_text())["freed_bytes"] > 100e6
        total = sum(p.stat().st_size for p in work.rglob("*") if p.is_file())
        assert total < 60e6, (work, total)


def test_provenance_names_isce_and_the_dem(real_run, real_stack) -> None:
    pair = sorted(p.name for p in (real_run["workspace"] / "products").iterdir() if "_" in p.name)[0]
    metadata = json.loads((real_run["workspace"] / "products" / pair / "metadata.json").read_text())
    assert metadata["processing"]["isce2_version"] == "2.6.5"
    assert metadata["dem"]["file"] == str(real_stack.dem)
    # the saved search had no baselines: ISCE's own (nan for coinciding orbits: 0 m)
    assert metadata["pair"]["bperp_m"] == 0.0 and "ISCE" in metadata["pair"]["bperp_source"]
    html = (real_run["workspace"] / "products" / "stack" / "processing.html").read_text()
    assert "2.6.5" in html and real_stack.dem.name in html and "glo_30" not in html


def test_usage_records_are_exact(real_run) -> None:
    usage = sorted((real_run["workspace"] / "logs" / "isce_topo").glob("*.usage.json"))
    assert usage
    for path in usage:
        record = json.loads(path.read_text())
        assert record["cpu_s"] > 1 and record["max_rss_mb"] > 50 and record["isce2"] == "2.6.5"


# --- resume after Ctrl-C during topo -------------------------------------------------------------


def test_ctrl_c_during_topo_resumes_at_topo(tmp_path, real_topsapp, real_services, real_stack) -> None:
    dates = [s.date for s in real_stack.scenes][:2]
    pair = "_".join(dates)
    env = real_services.user_env(tmp_path / "home")
    config = real_services.config(tmp_path / "ws", tmp_path / "cache", keep="all",
                                  pairs={"sequential": 1}, dates={
                                      "start": f"{dates[0][:4]}-{dates[0][4:6]}-{dates[0][6:]}",
                                      "end": f"{dates[1][:4]}-{dates[1][4:6]}-{dates[1][6:]}"})  # fmt: skip
    path = write_config(tmp_path, config)
    workspace = tmp_path / "ws"
    cmd = [str(Path(os.sys.executable).with_name("snakemake")), "-s",
           str(Path(__file__).resolve().parents[1] / "Snakefile"), "-d", str(tmp_path),
           "--cores", "2", "--configfile", str(path)]  # fmt: skip
    log_path = tmp_path / "first.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)  # fmt: skip
        topo_log = workspace / "logs" / "isce_topo" / f"{pair}.log"
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline and process.poll() is None:
            if topo_log.is_file() and "Running step topo" in topo_log.read_text(errors="replace"):
                break
            time.sleep(0.5)
        assert process.poll() is None, log_path.read_text()[-4000:]
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        process.wait(timeout=600)
    assert process.returncode != 0
    assert not (workspace / "work" / pair / "PICKLE" / "topo").exists()
    preprocess = (workspace / "work" / pair / "PICKLE" / "verifyDEM").stat().st_mtime_ns
    again = snakemake(tmp_path, path, "--cores", "2", env=env, timeout=3600)
    assert again.returncode == 0, output_of(again)[-6000:]
    ran = executed_rules(again)
    assert "isce_preprocess" not in ran and ran.count("isce_topo") == 1
    assert (workspace / "work" / pair / "PICKLE" / "verifyDEM").stat().st_mtime_ns == preprocess
    # keep: all: the geometry is there, and topo never met the DEM's edge
    assert (workspace / "work" / pair / "geom_reference").is_dir()
    assert (workspace / "products" / pair / "los_displacement.tif").is_file()
