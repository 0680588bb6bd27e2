"""`snakemake stage` end to end against the local services: search, preflight, downloads, orbits,
AUX_CAL and the DEM; then a second run that transfers nothing, a third that fetches only what
was deleted, and no secret anywhere (files, logs, .snakemake, process arguments).

The SLC zips are real-layout SAFE zips from ``harness.safe_factory`` (one per scene of the
recorded path-13 stack), the orbits are real POEORBs re-timed to the scenes, the DEM tiles are
synthetic (the fixtures only have tiles around Los Angeles) and so is the geoid.
"""

from __future__ import annotations

import csv
import json
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from shapely.geometry import box, shape

from fixture_scenes import TEST_ROI
from harness.pipeline import Services, serve_window, user_setup
from workflow_runner import REPO, SNAKEMAKE, executed_rules, write_config

START, END = "2016-09-01", "2016-10-31"  # 3 dates (2 with two slices), 2 pairs
AUX_DATE = "20160901"  # its scene is made an IPF 002.36 product, so it needs AUX_CAL


def snakemake_watched(
    workdir: Path, config: Path, env: dict[str, str], secrets: list[str], *args: str
):
    """Run snakemake and check the command line of every process it starts for the secrets."""
    cmd = [
        SNAKEMAKE,
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        *args,
        "--configfile",
        str(config),
    ]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen: set[int] = set()
    leaks: list[str] = []
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            children = parent.children(recursive=True)
        except psutil.NoSuchProcess:
            break
        for child in [parent, *children]:
            try:
                line = " ".join(child.cmdline())
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            seen.add(child.pid)
            leaks += [line for secret in secrets if secret in line]
        time.sleep(0.05)
    output = proc.stdout.read() if proc.stdout else ""
    proc.wait(timeout=600)
    return subprocess.CompletedProcess(cmd, proc.returncode, output, ""), seen, leaks


@pytest.fixture
def staged_services(cmr, earthdata, orbit_bucket, dem_tiles, https_server, shared_dir) -> Services:
    """Products, orbits, tiles, geoid and AUX_CAL for every scene of the window."""
    return serve_window(
        START,
        END,
        cmr=cmr,
        earthdata=earthdata,
        orbit_bucket=orbit_bucket,
        dem_tiles=dem_tiles,
        https_server=https_server,
        shared_dir=shared_dir,
        aux_date=AUX_DATE,
    )


def test_stage_fetches_everything_once_and_nothing_twice(
    tmp_path, cmr, earthdata, orbit_bucket, dem_tiles, https_server, ca_bundle, staged_services
):
    user = user_setup(
        tmp_path,
        START,
        END,
        staged_services,
        cmr=cmr,
        earthdata=earthdata,
        orbit_bucket=orbit_bucket,
        dem_tiles=dem_tiles,
        ca_bundle=ca_bundle,
        double=False,
    )
    env, secrets = user.env, user.secrets
    netrc = user.home / ".netrc"
    caches = tmp_path / "shared_cache"  # outside the workspace, as when workspaces share it
    config = write_config(tmp_path, user.config)
    user_name = earthdata.user[0]

    first, pids, leaks = snakemake_watched(tmp_path, config, env, secrets, "stage", "-c2")
    assert first.returncode == 0, first.stdout
    assert leaks == [] and len(pids) > 3  # the downloads ran as child processes, none saw it

    ws = tmp_path / "ws"
    with open(ws / "inventory" / "dates.csv") as handle:  # the slices the plan uses
        granules = {g for row in csv.DictReader(handle) for g in row["granules"].split(";")}
    rules = executed_rules(first)
    assert rules.count("download_slc") == len(granules) == 3  # one slice per date covers the ROI
    assert {e.path.rsplit("/", 1)[1][:-4] for e in earthdata.product_requests()} == granules
    assert sorted(set(rules)) == [
        "aux_cal",
        "dem",
        "dem_extent",
        "download_slc",
        "orbits",
        "preflight",
        "search",
        "stage",
    ]
    for granule in granules:  # every zip complete and verified, nothing partial left
        path = caches / "slc" / f"{granule}.zip"
        assert path.read_bytes() == earthdata.products[granule].data
    assert not list((caches / "slc").glob("*.part"))
    assert json.loads((ws / "staging" / "preflight.json").read_text())["missing"] == sorted(
        f"{g}.zip" for g in granules
    )

    dates = sorted(p.stem for p in (ws / "orbits").glob("*.json"))
    assert dates == ["20160901", "20161007", "20161031"]
    for date in dates:
        manifest = json.loads((ws / "orbits" / f"{date}.json").read_text())
        (entry,) = manifest["orbits"]
        assert manifest["date"] == date and entry["platform"] == "S1A" and entry["type"] == "POEORB"
        assert Path(entry["file"]).is_file() and Path(entry["file"]).parent == caches / "orbits"
        assert {g[17:25] for g in entry["granules"]} == {date}

    aux = json.loads((ws / "aux_cal" / f"{AUX_DATE}.json").read_text())
    assert sorted(p.name for p in Path(aux["directory"]).glob("S1A_AUX_CAL_*.SAFE"))
    assert [p.stem for p in (ws / "aux_cal").glob("*.json")] == [AUX_DATE]  # only the 002.36 date

    from dinsar.dem import check_isce_dem

    dem = json.loads((ws / "dem" / "13_DESC" / "dem.json").read_text())
    check_isce_dem(Path(dem["dem"]))
    check_isce_dem(Path(dem["geocode_dem"]))
    # every burst topsApp will process, at any height it can have, + 0.2 degree is inside
    from shapely import wkt

    from dinsar.bursts import ISCE_CROP_HEIGHTS
    from dinsar.safe import read_safe, roi_bursts

    extent = box(*dem["extent"])
    roi = wkt.loads(TEST_ROI)
    kept = 0
    for granule in granules:
        safe = read_safe(caches / "slc" / f"{granule}.zip", "vv")
        for number in roi_bursts([safe], roi):
            swath = safe.swaths[number]
            for burst in swath.bursts_isce_keeps(roi.bounds):
                kept += 1
                burst_box = box(*burst.geometry.box(swath.grid, ISCE_CROP_HEIGHTS))
                assert extent.contains(burst_box.buffer(0.19))
    assert kept >= len(granules)
    assert dem["requirement"]["heights_m"] == list(ISCE_CROP_HEIGHTS)
    # not whole scenes: their other swaths lie outside
    scenes = [shape(r["geometry"]) for r in staged_services.records
              if r["properties"]["sceneName"] in granules]  # fmt: skip
    assert not all(extent.contains(s.buffer(0.19)) for s in scenes)

    log = (ws / "logs" / "download_slc" / f"{sorted(granules)[0]}.log").read_text()
    assert f"Earthdata user '{user_name}' from ~/.netrc (machine localhost)" in log
    assert "100%" in log and "md5 verified" in log
    preflight_log = (ws / "logs" / "preflight" / "preflight.log").read_text()
    assert (
        "3 of 3 SLC file(s) to download" in preflight_log and "data access checked" in preflight_log
    )

    # credential hygiene: not in any file of the run (workspace, caches, .snakemake, logs)
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != netrc:
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), path
    assert not any(s in first.stdout for s in secrets)

    # a second run: nothing to do, not one request to any service
    https_server.clear_log()
    second, _, _ = snakemake_watched(tmp_path, config, env, secrets, "stage", "-c2")
    assert second.returncode == 0, second.stdout
    assert executed_rules(second) == [] and "Nothing to be done" in second.stdout
    assert https_server.requests() == []

    # a deleted zip: the preflight runs again and only that scene is fetched (1 byte of probe)
    victim = sorted(granules)[1]
    (caches / "slc" / f"{victim}.zip").unlink()
    https_server.clear_log()
    third, _, leaks = snakemake_watched(tmp_path, config, env, secrets, "stage", "-c2")
    assert third.returncode == 0, third.stdout
    # the DEM's extent is read again from the new zip: the same, so the DEM is not re-made
    assert sorted(executed_rules(third)) == ["dem_extent", "download_slc", "preflight", "stage"]
    assert (
        earthdata.bytes_sent()
        == earthdata.bytes_sent(victim)
        == earthdata.products[victim].size + 1
    )
    assert [
        e for e in https_server.requests() if not e.path.startswith(("/SLC/", "/oauth/", "/login"))
    ] == []
    assert leaks == []


def test_a_dem_file_covering_the_processed_bursts_is_enough(
    tmp_path, cmr, earthdata, orbit_bucket, dem_tiles, https_server, ca_bundle, staged_services
):
    """A user DEM over the swath that meets the area (IW2), with a margin, but not the whole
    scenes (IW1 and IW3 outside): accepted. It was refused while the DEM had to cover every
    used scene's footprint; the DEM is cut to the bursts topsApp processes, at its heights."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from shapely import wkt

    from dinsar.safe import read_safe, roi_bursts

    user = user_setup(tmp_path, START, END, staged_services, cmr=cmr, earthdata=earthdata,
                      orbit_bucket=orbit_bucket, dem_tiles=dem_tiles, ca_bundle=ca_bundle)  # fmt: skip
    config = {**user.config, "dem": {**user.config["dem"], "buffer": 0.05}}
    path = write_config(tmp_path, config)
    first = snakemake_watched(tmp_path, path, user.env, user.secrets, "stage", "-c2")[0]
    assert first.returncode == 0, first.stdout[-3000:]
    roi = wkt.loads(TEST_ROI)
    zips = sorted((tmp_path / "shared_cache" / "slc").glob("*.zip"))
    swaths = [read_safe(z, "vv") for z in zips]
    assert {n for s in swaths for n in roi_bursts([s], roi)} == {2}
    west, south, east, north = (
        min(s.swaths[2].bursts[0].bounds[0] for s in swaths) - 0.3,
        min(b.bounds[1] for s in swaths for b in s.swaths[2].bursts) - 0.3,
        max(s.swaths[2].bursts[0].bounds[2] for s in swaths) + 0.3,
        max(b.bounds[3] for s in swaths for b in s.swaths[2].bursts) + 0.3,
    )
    scenes = [shape(r["geometry"]) for r in staged_services.records]
    assert not all(box(west, south, east, north).contains(s) for s in scenes)  # not the scenes
    posting = 1 / 120
    width, length = round((east - west) / posting), round((north - south) / posting)
    dem = tmp_path / "my_dem.tif"
    with rasterio.open(dem, "w", driver="GTiff", width=width, height=length, count=1,
                       dtype="float32", crs="EPSG:4326",
                       transform=from_origin(west, north, posting, posting)) as dst:  # fmt: skip
        dst.write(np.full((length, width), 800.0, dtype=np.float32), 1)
    config["dem"] = {"file": str(dem), "file_vertical_datum": "ellipsoid", "buffer": 0.05}
    config["workspace"] = str(tmp_path / "ws_file")
    path = write_config(tmp_path, config)
    second = snakemake_watched(tmp_path, path, user.env, user.secrets, "stage", "-c2")[0]
    assert second.returncode == 0, second.stdout[-3000:]
    manifest = json.loads((tmp_path / "ws_file" / "dem" / "13_DESC" / "dem.json").read_text())
    assert manifest["file"] == str(dem) and manifest["requirement"]["heights_m"] == [800.0, 800.0]
    w, s, e, n = manifest["extent"]
    assert west <= w and e <= east and south <= s and n <= north
