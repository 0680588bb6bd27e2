"""The whole workflow with the real topsApp.py (ISCE2 2.6.5) on the shared real stack.

From a saved search to the products: Earthdata login and downloads (emulated), orbits
(emulated bucket), the DEM from `dem.file`, topsApp.xml, the seven step groups with the real
topsApp.py, export. The stack's truth is known (harness.real_stack): a constant line-of-sight
velocity towards the satellite on a Gaussian bump, and a decorrelated patch on one date.

The displacement at the bump: topsApp's Goldstein filter (strength 0.5) shrinks the filtered
unwrapped phase by a signal-dependent amount (to 80 % of the truth for the 12-day pairs, 92 % for
the 24-day pairs of this stack). The exported phase is the unfiltered interferogram plus the
filtered unwrap's whole cycles (dinsar.products.cycles), so every pair must give the truth
within 3 %, and the triplets must close (d12 + d23 - d13) to 0.1 mm outside the decorrelated
patch, which must be no data.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from harness import environment
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
    # isce.reuse_geometry (the default): topo once per reference date
    assert ran.count("isce_geometry") == len({p.split("_")[0] for p in pairs})
    log = (real_run["workspace"] / "logs" / "isce_coregistration" / f"{pairs[0]}.log").read_text()
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
    # towards the satellite: positive; the filter's loss taken out (module docstring)
    assert truth[peak] > 0.009
    print(f"{pair}: {measured * 1e3:.3f} mm at the bump, truth {truth[peak] * 1e3:.3f} mm, "
          f"ratio {measured / truth[peak]:.4f}")
    assert 0.97 * truth[peak] < measured < 1.03 * truth[peak], (pair, measured, truth[peak])
    # the bump is where the truth's is: centroids of the upper halves within a pixel (~90 m)
    rows, cols = np.mgrid[0 : disp.shape[0], 0 : disp.shape[1]]

    def centroid(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        weights = np.where(mask, values, 0.0)
        return np.array([(rows * weights).sum(), (cols * weights).sum()]) / weights.sum()

    upper = valid & (disp - offset > 0.5 * measured)
    assert np.abs(centroid(disp - offset, upper) - centroid(truth, truth > 0.5 * truth.max())).max() < 1.0
    # the far field is near zero (the reference point is not set: the offset is arbitrary)
    assert np.percentile(np.abs(disp[far] - offset), 99) < 5e-4


def in_patch(real_stack, lat: np.ndarray, lon: np.ndarray, margin: float = 0.0) -> np.ndarray:
    south, north, west, east = real_stack.spec.patch
    return ((lat >= south - margin) & (lat <= north + margin)
            & (lon >= west - margin) & (lon <= east + margin))  # fmt: skip


def test_triplets_close_and_the_decorrelated_patch_is_masked(real_run, real_stack) -> None:
    """d12 + d23 - d13 below 0.1 mm outside the decorrelated patch (within 2 pixels of it the
    geocoding's interpolation mixes both); the patch itself (but its edge pixels, which mix
    coherent ground in: coherence 0.7-0.9 there, values within 1 mm of the truth) is no data in
    every pair of the decorrelated date, and stays data in the others."""
    products = real_run["workspace"] / "products"
    pairs = sorted(p.name for p in products.iterdir() if "_" in p.name)
    disp = {pair: band(products / pair / "los_displacement.tif") for pair in pairs}
    lat, lon = grid_latlon(products / pairs[0] / "los_displacement.tif")
    step = abs(lat[1, 0] - lat[0, 0])
    patch = in_patch(real_stack, lat, lon, -1.5 * step)  # the edge pixels left out
    near_patch = in_patch(real_stack, lat, lon, 2 * step)
    dates = sorted({d for pair in pairs for d in pair.split("_")})
    bad_date = dates[real_stack.spec.decorrelated_date]
    for pair in pairs:
        masked = np.isnan(disp[pair][patch]).mean()
        print(f"{pair}: {masked:.1%} of the decorrelated patch is no data")
        if bad_date in pair.split("_"):
            assert masked == 1.0, (pair, masked)
        else:
            assert masked < 0.05, (pair, masked)
    triplets = [(a, b, c) for a in dates for b in dates for c in dates if a < b < c
                and {f"{a}_{b}", f"{b}_{c}", f"{a}_{c}"} <= set(pairs)]  # fmt: skip
    assert len(triplets) == 2
    for a, b, c in triplets:
        closure = disp[f"{a}_{b}"] + disp[f"{b}_{c}"] - disp[f"{a}_{c}"]
        valid = np.isfinite(closure) & ~near_patch
        assert valid.mean() > 0.8
        # no reference point: each pair keeps the unwrapper's constant offset
        closure = closure - np.median(closure[valid])
        worst = np.abs(closure[valid]).max()
        print(f"triplet {a}-{b}-{c}: closure max {worst * 1e3:.4f} mm, 99th percentile "
              f"{np.percentile(np.abs(closure[valid]), 99) * 1e3:.4f} mm over {valid.sum()} pixels")
        assert worst < 1e-4, (a, b, c, worst)


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
        if not work.is_dir() or "_" not in work.name:
            continue  # work/geometry/ (isce.reuse_geometry): test_keep_products_removed_the_geometry
        assert not (work / "geom_reference").exists()
        # of the coregistered bursts only ISCE's metadata XML stays
        assert {p.suffix for p in (work / "fine_coreg").rglob("*") if p.is_file()} == {".xml"}
        assert not list(work.glob("merged/*.full*"))
        for name in ("filt_topophase.unw.geo", "topophase.flat.geo", "topophase.cor.geo",
                     "los.rdr.geo", "dem.crop"):  # fmt: skip
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
    usage = sorted((real_run["workspace"] / "logs" / "isce_geometry").glob("*.usage.json"))
    usage += sorted((real_run["workspace"] / "logs" / "isce_coregistration").glob("*.usage.json"))
    assert usage
    for path in usage:
        record = json.loads(path.read_text())
        assert record["cpu_s"] > 1 and record["max_rss_mb"] > 50 and record["isce2"] == "2.6.5"


def test_bursts_are_counted_as_isce_crops_them(real_run, real_stack) -> None:
    """ISCE keeps 2 bursts for this ROI (the second burst's -500..9000 m box reaches 80 m into
    it); the footprints meet only one, which is what dinsar_pair.json said before."""
    from shapely import wkt

    from dinsar.safe import read_safe, roi_bursts

    for work in sorted((real_run["workspace"] / "work").glob("*_*")):
        record = json.loads((work / "dinsar_pair.json").read_text())
        log = (work / "isce.log").read_text()
        isce = [int(n) for n in re.findall(r"Number of common bursts = (\d+)", log)]
        assert isce and record["bursts"] == isce[-1] == 2, (work.name, record["bursts"], isce)
    footprint = roi_bursts([read_safe(real_stack.scenes[0].zip_path)], wkt.loads(real_stack.roi_wkt))
    assert footprint == {1: 1}  # the old count


# --- resume after Ctrl-C during topo, on one pair kept whole (keep: all) ----------------------


@pytest.fixture(scope="session")
def real_resumed(tmp_path_factory, real_topsapp, real_services, real_stack):
    """The first pair, interrupted by SIGINT during isce_topo, then run again to the end."""
    root = tmp_path_factory.mktemp("real_resumed")
    dates = [s.date for s in real_stack.scenes][:2]
    pair = "_".join(dates)
    env = real_services.user_env(root / "home")
    iso = [f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in dates]
    # the pair's own topo (isce.reuse_geometry: false): the geometry job's kill is tested below
    config = real_services.config(root / "ws", root / "cache", keep="all", pairs={"sequential": 1},
                                  dates={"start": iso[0], "end": iso[1]},
                                  isce={"reuse_geometry": False})  # fmt: skip
    path = write_config(root, config)
    workspace = root / "ws"
    cmd = [str(Path(os.sys.executable).with_name("snakemake")), "-s",
           str(Path(__file__).resolve().parents[1] / "Snakefile"), "-d", str(root),
           "--cores", "2", "--configfile", str(path)]  # fmt: skip
    log_path = root / "first.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)  # fmt: skip
        topo_log = workspace / "logs" / "isce_topo" / f"{pair}.log"
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline and process.poll() is None:
            if topo_log.is_file() and "Running step topo" in topo_log.read_text(errors="replace"):
                break
            time.sleep(0.5)
        running = process.poll() is None
        if running:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        process.wait(timeout=600)
    interrupted = {
        "running": running, "returncode": process.returncode, "output": log_path.read_text(),
        "topo_done": (workspace / "work" / pair / "PICKLE" / "topo").exists(),
        "preprocess_mtime": (workspace / "work" / pair / "PICKLE" / "verifyDEM").stat().st_mtime_ns,
    }  # fmt: skip
    again = snakemake(root, path, "--cores", "2", env=env, timeout=3600)
    return {"root": root, "workspace": workspace, "pair": pair, "first": interrupted,
            "again": again, "env": env}


def test_ctrl_c_during_topo_resumes_at_topo(real_resumed) -> None:
    first, again = real_resumed["first"], real_resumed["again"]
    work = real_resumed["workspace"] / "work" / real_resumed["pair"]
    assert first["running"], "the run ended before topo started: " + first["output"][-3000:]
    assert first["returncode"] != 0 and not first["topo_done"]
    assert again.returncode == 0, output_of(again)[-6000:]
    ran = executed_rules(again)
    assert "isce_preprocess" not in ran and ran.count("isce_topo") == 1
    assert (work / "PICKLE" / "verifyDEM").stat().st_mtime_ns == first["preprocess_mtime"]
    products = real_resumed["workspace"] / "products" / real_resumed["pair"]
    assert (products / "los_displacement.tif").is_file()


def test_topo_stays_inside_the_dem(real_resumed, real_stack) -> None:
    """The DEM covers the processed bursts (the dem_extent checkpoint, at the file's heights):
    every pixel topo mapped lies inside it, more than two DEM samples from its edge."""
    from dinsar.isce_image import read_band, read_image

    assert real_resumed["again"].returncode == 0
    workspace = real_resumed["workspace"]
    dem = json.loads(next((workspace / "dem").glob("*/dem.json")).read_text())
    west, south, east, north = dem["extent"]
    step = abs(dem["posting"][0])
    geometry = workspace / "work" / real_resumed["pair"] / "geom_reference" / "IW1"
    lats = sorted(geometry.glob("lat_*.rdr"))
    assert len(lats) == 2  # both bursts
    for lat_path in lats:
        lon_path = lat_path.with_name(lat_path.name.replace("lat_", "lon_"))
        hgt_path = lat_path.with_name(lat_path.name.replace("lat_", "hgt_"))
        lat = read_band(lat_path, 1)
        lon = read_band(lon_path, 1)
        hgt = read_band(hgt_path, 1, read_image(str(hgt_path) + ".xml"))
        valid = (lat != 0) & (lon != 0)
        assert valid.mean() > 0.9
        assert lat[valid].min() > south + 2 * step and lat[valid].max() < north - 2 * step
        assert lon[valid].min() > west + 2 * step and lon[valid].max() < east - 2 * step
        # the DEM's own heights, never a fill value
        with rasterio.open(real_stack.dem) as src:
            terrain = src.read(1)
        assert terrain.min() - 1 < hgt[valid].min() and hgt[valid].max() < terrain.max() + 1


def test_the_double_writes_what_the_real_topsapp_writes(real_resumed, tmp_path) -> None:
    """The test double on the same topsApp.xml and inputs, group by group as the workflow runs
    it: the same PICKLE steps, the same merged/ and geocoded files, the same band layouts."""
    import shutil

    from dinsar.isce_image import read_image
    from dinsar.isce_run import GROUPS, step_command

    real = real_resumed["workspace"] / "work" / real_resumed["pair"]
    double = tmp_path / real.name
    double.mkdir()
    shutil.copy(real / "topsApp.xml", double / "topsApp.xml")
    script = Path(__file__).resolve().parent / "topsapp_double" / "topsApp.py"
    env = environment.clean()
    for group in GROUPS:
        made = subprocess.run([os.sys.executable, *step_command([str(script)], group.name)],
                              cwd=double, env=env, capture_output=True, text=True,
                              timeout=900, check=False)  # fmt: skip
        assert made.returncode == 0, (group.name, made.stdout[-3000:], made.stderr[-3000:])

    def pickles(folder: Path) -> set[str]:
        return {p.name for p in (folder / "PICKLE").iterdir()}

    assert pickles(double) == pickles(real)
    # topo changes none of topsApp's saved state (what isce.reuse_geometry relies on,
    # dinsar/geometry.py): the TopsProc rendering after topo is the one after verifyDEM
    for folder in (real, double):
        topo, verify = (folder / "PICKLE" / f"{step}.xml" for step in ("topo", "verifyDEM"))
        assert topo.read_bytes() == verify.read_bytes(), folder

    def merged(folder: Path) -> dict[str, tuple]:
        out = {}
        for xml in (folder / "merged").glob("*.xml"):
            raster = xml.with_suffix("")
            if raster.name.endswith(".full") or not raster.exists():
                continue  # the .full rasters are VRTs over the bursts (use virtual files)
            image = read_image(xml)
            out[raster.name] = (image.bands, image.data_type, image.scheme)
        return out

    real_files, double_files = merged(real), merged(double)
    assert real_files == double_files
    for name in ("reference/IW1.xml", "secondary/IW1.xml", "fine_coreg/IW1.xml",
                 "geom_reference/IW1/lat_01.rdr", "geom_reference/IW1/lat_02.rdr"):  # fmt: skip
        assert (real / name).exists() and (double / name).exists(), name


# --- a secondary orbit moved by a known perpendicular baseline ---------------------------------


BASELINE_M = 150.0


@pytest.fixture(scope="session")
def real_displaced(tmp_path_factory, real_topsapp, real_services, real_stack):
    """The first pair with the secondary's orbit moved 150 m perpendicular to the line of sight,
    served as that date's POEORB; the saved search has no baselines, so ISCE's are used."""
    from harness.orbit_server import OrbitBucket

    root = tmp_path_factory.mktemp("real_displaced")
    dates = [s.date for s in real_stack.scenes][:2]
    bucket = OrbitBucket(real_services.server, prefix="/s1-orbits-displaced")
    bucket.add(real_stack.scene(dates[0]).eof_name, real_stack.scene(dates[0]).eof_path)
    name, text = real_stack.displaced_orbit(dates[1], BASELINE_M)
    bucket.add(name, text.encode())
    iso = [f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in dates]
    config = real_services.config(root / "ws", root / "cache", pairs={"sequential": 1},
                                  dates={"start": iso[0], "end": iso[1]},
                                  orbits={"asf_url": bucket.url})  # fmt: skip
    path = write_config(root, config)
    result = snakemake(root, path, "--cores", "2", env=real_services.user_env(root / "home"),
                       timeout=3600)  # fmt: skip
    yield {"workspace": root / "ws", "pair": "_".join(dates), "result": result}
    bucket.close()


def test_isce_reports_the_displaced_orbit_as_its_bperp(real_displaced, real_stack) -> None:
    result = real_displaced["result"]
    assert result.returncode == 0, output_of(result)[-6000:]
    work = real_displaced["workspace"] / "work" / real_displaced["pair"]
    values = [float(v) for v in re.findall(
        r"Bperp at midrange for (?:first|last) common burst = (\S+)", (work / "isce.log").read_text())]  # fmt: skip
    assert values and all(abs(abs(v) - BASELINE_M) < 0.02 * BASELINE_M for v in values), values
    metadata = json.loads((real_displaced["workspace"] / "products" / real_displaced["pair"]
                           / "metadata.json").read_text())  # fmt: skip
    assert metadata["pair"]["bperp_m"] == pytest.approx(float(np.mean(values)), abs=1e-6)
    assert "ISCE topsApp computeBaselines" in metadata["pair"]["bperp_source"]
    assert abs(metadata["pair"]["bperp_m"]) == pytest.approx(BASELINE_M, rel=0.02)


# --- topo once per reference date (isce.reuse_geometry): the same products as one per pair ----
# These need the whole stack again without reuse (~6 min of real topsApp on 2 CPUs): they run in
# `make test-real` (tests/REAL.md), not in CI's `make test`.


@pytest.fixture(scope="session")
def real_run_own_topo(tmp_path_factory, real_topsapp, real_services):
    """The stack of ``real_run`` again with isce.reuse_geometry: false (one topo per pair)."""
    root = tmp_path_factory.mktemp("real_run_own_topo")
    config = real_services.config(root / "ws", root / "cache", isce={"reuse_geometry": False})
    path = write_config(root, config)
    result = snakemake(root, path, "--cores", "2", env=real_services.user_env(root / "home"),
                       timeout=4 * 3600)  # fmt: skip
    assert result.returncode == 0, output_of(result)[-8000:]
    return {"root": root, "workspace": root / "ws", "result": result}


def usage_records(workspace: Path, rule: str) -> dict[str, dict]:
    return {p.name.split(".")[0]: json.loads(p.read_text())
            for p in (workspace / "logs" / rule).glob("*.usage.json")}  # fmt: skip


@pytest.mark.real_heavy  # a second pass over the stack: make test-real
def test_reused_geometry_gives_byte_identical_products(real_run, real_run_own_topo) -> None:
    """Every product file of every pair, byte for byte (metadata.json holds no run-specific
    field: no timestamp, paths relative to the pair)."""
    shared, own = real_run["workspace"] / "products", real_run_own_topo["workspace"] / "products"
    pairs = sorted(p.name for p in own.iterdir() if "_" in p.name)
    assert pairs == sorted(p.name for p in shared.iterdir() if "_" in p.name) and len(pairs) == 5
    compared = 0
    for pair in pairs:
        files = sorted(p.relative_to(own / pair) for p in (own / pair).rglob("*") if p.is_file())
        assert {p.relative_to(shared / pair) for p in (shared / pair).rglob("*") if p.is_file()} == set(files)
        for rel in files:
            assert (own / pair / rel).read_bytes() == (shared / pair / rel).read_bytes(), (pair, rel)
            compared += 1
    assert compared >= 5 * 5
    # ISCE's own geocoded files too, and the TopsProc state after topo
    for pair in pairs:
        for rel in ("merged/filt_topophase.unw.geo", "merged/los.rdr.geo", "merged/topophase.cor.geo",
                    "PICKLE/topo.xml"):  # fmt: skip
            mine = (real_run["workspace"] / "work" / pair / rel).read_bytes()
            theirs = (real_run_own_topo["workspace"] / "work" / pair / rel).read_bytes()
            assert mine.replace(bytes(real_run["root"]), b"") == theirs.replace(
                bytes(real_run_own_topo["root"]), b""), (pair, rel)


@pytest.mark.real_heavy  # a second pass over the stack: make test-real
def test_topo_ran_once_per_reference_date(real_run, real_run_own_topo) -> None:
    """From the exact usage records: a topsApp topo per reference date with reuse, per pair
    without; every reusing pair took the files (hard links) instead."""
    pairs = sorted(p.name for p in (real_run["workspace"] / "products").iterdir() if "_" in p.name)
    references = sorted({p.split("_")[0] for p in pairs})
    geometry = usage_records(real_run["workspace"], "isce_geometry")
    assert sorted(geometry) == references and len(references) == 3
    topo = usage_records(real_run["workspace"], "isce_topo")
    assert sorted(topo) == pairs and all(r["reused"] for r in topo.values())
    own = usage_records(real_run_own_topo["workspace"], "isce_topo")
    assert sorted(own) == pairs and not any(r["reused"] for r in own.values())
    assert not (real_run_own_topo["workspace"] / "logs" / "isce_geometry").exists()
    for pair in pairs:
        log = (real_run["workspace"] / "logs" / "isce_topo" / f"{pair}.log").read_text()
        assert "topo taken from" in log and "Running step topo" not in log
    # taking the files costs next to nothing beside the topo it replaces
    assert max(r["cpu_s"] for r in topo.values()) < 0.1 * min(r["cpu_s"] for r in own.values())


def test_keep_products_removed_the_geometry(real_run) -> None:
    for folder in sorted((real_run["workspace"] / "work" / "geometry").iterdir()):
        assert not (folder / "geom_reference").exists(), folder
        assert (folder / "cleanup.json").is_file() and (folder / "PICKLE" / "topo.xml").is_file()


ISCE_STATE_COMPARE = """
import pickle, sys
import isce  # noqa: F401 - ISCE's classes for the pickles
(a, root_a), (b, root_b) = (sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])
docs = [pickle.load(open(path, "rb")) for path in (a, b)]
print(repr(docs[0]).replace(root_a, "<root>") == repr(docs[1]).replace(root_b, "<root>"))
"""


@pytest.mark.real_heavy  # a second pass over the stack: make test-real
def test_isces_processing_document_is_the_same_with_reuse(real_run, real_run_own_topo,
                                                          real_topsapp) -> None:  # fmt: skip
    """PICKLE/geocode (kept under keep: products) holds every step's catalog, topo's entries
    too: with reuse (written by dinsar/isce_topo_state.py) as with the pair's own topo, but for
    the workspace's path."""
    pairs = sorted(p.name for p in (real_run["workspace"] / "products").iterdir() if "_" in p.name)
    for pair in pairs:
        paths = [str(run["workspace"] / "work" / pair / "PICKLE" / "geocode")
                 for run in (real_run, real_run_own_topo)]  # fmt: skip
        result = subprocess.run(
            [real_topsapp.python, "-c", ISCE_STATE_COMPARE, paths[0], str(real_run["root"]),
             paths[1], str(real_run_own_topo["root"])],
            env=real_topsapp.environment(environment.clean(), 1), capture_output=True,
            text=True, timeout=300, check=False,
        )  # fmt: skip
        assert result.stdout.strip().splitlines()[-1:] == ["True"], (pair, result.stderr[-2000:])


# --- the time series (timeseries.enabled: auto): MintPy on the real pairs ----------------------


def test_timeseries_velocity_matches_the_truth(real_run, real_stack) -> None:
    """The default run inverted the 4-date network with the real MintPy: the least-squares slope
    of the velocity against the true LOS velocity over the area is 1 within 5 %, with the right
    sign (towards the satellite), and the far field is near 0."""
    ran = executed_rules(real_run["result"])
    assert ran.count("timeseries_track") == 1 and ran.count("mintpy_handoff_pair") == 5
    folder = real_run["workspace"] / "products" / "timeseries" / real_stack.extra["track"]
    velocity = band(folder / "velocity.tif")
    lat, lon = grid_latlon(folder / "velocity.tif")
    truth = real_stack.velocity_field(lat, lon)
    valid = np.isfinite(velocity) & ~in_patch(real_stack, lat, lon, margin=0.002)
    assert valid.sum() > 0.5 * valid.size
    moving = valid & (truth > 0.1 * truth.max())
    assert moving.sum() > 20
    slope, intercept = np.polyfit(truth[valid], velocity[valid], 1)
    far = valid & (truth < 1e-3 * truth.max())
    print(f"velocity vs truth: slope {slope:.4f}, intercept {intercept * 1e3:.2f} mm/yr, "
          f"far field median {np.median(velocity[far]) * 1e3:.2f} mm/yr, "
          f"peak {np.nanmax(velocity) * 1e3:.1f} mm/yr (truth {truth.max() * 1e3:.1f})")
    assert 0.95 < slope < 1.05, slope
    assert abs(np.median(velocity[far])) < 0.01 * real_stack.spec.velocity
    assert np.percentile(np.abs(velocity[far]), 95) < 0.05 * real_stack.spec.velocity


def test_timeseries_products_history_and_report(real_run, real_stack) -> None:
    folder = real_run["workspace"] / "products" / "timeseries" / real_stack.extra["track"]
    summary = json.loads((folder / "timeseries.json").read_text())
    dates = [s.date for s in real_stack.scenes]
    assert summary["dates"] == dates
    for date in dates:
        with rasterio.open(folder / f"displacement_{date}.tif") as ds:
            assert ds.crs.to_epsg() == 4326 and ds.overviews(1)
    # the displacement of the last date at the bump: the truth over the whole span
    lat, lon = grid_latlon(folder / f"displacement_{dates[-1]}.tif")
    last = band(folder / f"displacement_{dates[-1]}.tif")
    span = pair_days(f"{dates[0]}_{dates[-1]}")
    truth = real_stack.truth(lat, lon, span)
    peak = np.unravel_index(np.argmax(truth), truth.shape)
    assert last[peak] == pytest.approx(truth[peak], rel=0.08)
    # the fastest coherent point is on the bump
    assert real_stack.velocity_field(np.array(summary["fastest_lat"]),
                                     np.array(summary["fastest_lon"])) > (
        0.5 * real_stack.spec.velocity)
    for png in ("velocity.png", "history.png"):
        assert (folder / png).read_bytes()[:4] == b"\x89PNG"
    rows = (folder / "history.csv").read_text().splitlines()
    assert len(rows) == 1 + len(dates)
    # the report section
    report = real_run["root"] / "report.html"
    result = snakemake(real_run["root"], real_run["config"], "--report", str(report),
                       env=real_run["env"], timeout=600)  # fmt: skip
    assert result.returncode == 0, output_of(result)[-4000:]
    html = report.read_text()
    assert "5. Time series" in html and "LOS velocity" in html and "velocity.png" in html


def test_a_hand_written_template_loads_the_real_hand_off(real_run, real_topsapp, tmp_path) -> None:
    """What a user would write to go on with MintPy by hand; MintPy's geometry equals our angle
    COGs within 0.01 degrees."""
    import h5py

    products = real_run["workspace"] / "products"
    template = tmp_path / "mine.txt"
    template.write_text(
        "mintpy.load.processor      = hyp3\n"
        + "".join(f"mintpy.load.{key:<15}= {products}/*/mintpy/*_{suffix}.tif\n"
                  for key, suffix in (("unwFile", "unw_phase"), ("corFile", "corr"),
                                      ("connCompFile", "conncomp"), ("demFile", "dem"),
                                      ("incAngleFile", "lv_theta"), ("azAngleFile", "lv_phi")))
    )  # fmt: skip
    program = Path(sys.executable).parent / "smallbaselineApp.py"
    env = {**environment.clean(), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([str(program), str(template), "--dostep", "load_data"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    with h5py.File(tmp_path / "inputs" / "ifgramStack.h5", "r") as f:
        assert f["unwrapPhase"].shape[0] == 5
    with h5py.File(tmp_path / "inputs" / "geometryGeo.h5", "r") as f:
        incidence, azimuth = f["incidenceAngle"][:], f["azimuthAngle"][:]
    pair = sorted(p.name for p in products.iterdir() if "_" in p.name)[0]
    ours_inc, ours_az = band(products / pair / "incidence_angle.tif"), band(products / pair / "azimuth_angle.tif")
    valid = np.isfinite(ours_inc) & np.isfinite(ours_az)
    assert valid.sum() > 0.5 * valid.size
    assert np.abs(incidence[valid] - ours_inc[valid]).max() < 0.01
    assert np.abs(azimuth[valid] - ours_az[valid]).max() < 0.01


def test_the_timeseries_target_alone_makes_the_same_velocity_again(real_run, real_stack) -> None:
    """`snakemake timeseries`, as the README gives it, after the track's time series was
    deleted: only MintPy's job runs again (the pairs' hand-offs stand), and the velocity is
    the same to the last bit (MintPy's reference pixel is chosen, not drawn at random)."""
    import shutil

    folder = real_run["workspace"] / "products" / "timeseries" / real_stack.extra["track"]
    before = band(folder / "velocity.tif")
    shutil.rmtree(folder)
    result = snakemake(real_run["root"], real_run["config"], "timeseries", "--cores", "2",
                       env=real_run["env"], timeout=1800)  # fmt: skip
    assert result.returncode == 0, output_of(result)[-6000:]
    assert executed_rules(result) == ["timeseries_track", "timeseries"]
    np.testing.assert_array_equal(band(folder / "velocity.tif"), before)
    assert len(list(folder.glob("displacement_*.tif"))) == 4
    assert (folder / "velocity.png").is_file() and (folder / "history.png").is_file()
