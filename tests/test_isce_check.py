"""The ISCE2 check before anything heavy runs: plan, -n, stage and the run's preflight say which
topsApp.py they use and its version; scenes an older ISCE2 cannot process stop the run before
any download (stage warns and stages); no ISCE2 at all is said in one line, and stage works.

The topsApp test double stands for an installed ISCE2: it prints the real banner
(``ISCE VERSION = x``) with the version in $DINSAR_DOUBLE_VERSION. Sentinel-1C/1D scenes are
the recorded path-13 stack renamed (names, platform, orbit), served by the local emulations.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import pytest
from shapely.geometry import shape

from fixture_scenes import write_asf_export
from harness import environment
from harness.pipeline import DOUBLE_DIR, Services, user_setup
from harness.safe_factory import safe_zip_bytes
from workflow_runner import executed_rules, output_of, snakemake, write_config

START, END = "2016-09-01", "2016-10-31"  # three dates: 20160901, 20161007, 20161031


def saved_search(shared_dir: Path, path: Path, renames: dict[str, tuple[str, int | None]],
                 earthdata=None) -> dict[str, list[str]]:  # fmt: skip
    """The recorded stack's asf_search export in the window, with the scenes of some dates
    renamed to another platform ({date: (platform, absolute orbit)}); products served by the
    Earthdata emulation when given. Returns {date: [granules]}."""
    export = json.loads(write_asf_export(shared_dir, path).read_text())
    features, names = [], {}
    for feature in export["features"]:
        props = feature["properties"]
        if not START <= props["startTime"][:10] <= END:
            continue
        date = props["startTime"][:10].replace("-", "")
        platform, orbit = renames.get(date, (props["sceneName"][:3], None))
        name = platform + props["sceneName"][3:]
        props["platform"] = f"Sentinel-1{platform[-1]}"
        if orbit is not None:
            props["orbit"] = orbit
        if earthdata is not None:
            product = earthdata.add_product(name, safe_zip_bytes(
                name, shape(feature["geometry"]), flight_direction=props["flightDirection"],
                ipf=props["pgeVersion"]))  # fmt: skip
            props["url"], props["bytes"], props["md5sum"] = product.url, product.size, product.md5
        else:
            props["url"] = props["url"].replace(props["sceneName"], name)
        props["sceneName"] = name
        names.setdefault(date, []).append(name)
        features.append(feature)
    export["features"] = features
    path.write_text(json.dumps(export))
    return names


def serve_orbits(orbit_bucket, names: dict[str, list[str]]) -> None:
    """A POEORB of each date's platform covering its pass (all passes start near 14:19 UTC)."""
    for date, granules in names.items():
        start = dt.datetime.strptime(date + "141800", "%Y%m%d%H%M%S")
        orbit_bucket.add_retimed(granules[0][:3], start, start + dt.timedelta(minutes=3))


@pytest.fixture
def user(tmp_path, cmr, earthdata, orbit_bucket, dem_tiles, https_server, ca_bundle):
    from harness.orbit_server import serve_aux_cal

    services = Services([], dem_tiles.add_synthetic_geoid(), serve_aux_cal(https_server))
    setup = user_setup(tmp_path, START, END, services, cmr=cmr, earthdata=earthdata,
                       orbit_bucket=orbit_bucket, dem_tiles=dem_tiles, ca_bundle=ca_bundle)  # fmt: skip
    return setup


def without_double(env: dict[str, str]) -> dict[str, str]:
    """A machine with no ISCE2: no double on PATH, no project build, no ISCE_HOME."""
    path = [p for p in env["PATH"].split(os.pathsep) if Path(p) != DOUBLE_DIR]
    return {**env, "PATH": os.pathsep.join(path), "ISCE_HOME": ""}


def test_plan_and_dry_run_name_the_topsapp_and_its_version(tmp_path, user, shared_dir) -> None:
    inventory = tmp_path / "search.geojson"
    saved_search(shared_dir, inventory, {})
    config = write_config(tmp_path, {**user.config, "inventory": str(inventory)})
    planned = snakemake(tmp_path, config, "plan", "-c1", env=user.env)
    assert planned.returncode == 0, output_of(planned)
    line = f"topsApp: {DOUBLE_DIR / 'topsApp.py'} (ISCE2 2.6.5, PATH)"
    assert line in output_of(planned)
    assert line in (user.workspace / "plan" / "summary.txt").read_text()
    dry = snakemake(tmp_path, config, "-n", env=user.env)
    assert dry.returncode == 0 and line in output_of(dry)
    assert "will stop" not in output_of(dry)


def test_an_older_isce_stops_the_run_before_any_download(tmp_path, user, shared_dir, earthdata,
                                                         orbit_bucket) -> None:  # fmt: skip
    """ISCE2 2.6.4 on PATH (conda-forge's): S1D, and S1C after orbit 8018, need 2.6.5."""
    inventory = tmp_path / "search.geojson"
    names = saved_search(shared_dir, inventory, {"20161007": ("S1D", 1200),
                                                 "20161031": ("S1C", 9000)}, earthdata)  # fmt: skip
    serve_orbits(orbit_bucket, names)
    env = {**user.env, "DINSAR_DOUBLE_VERSION": "2.6.4"}
    config = write_config(tmp_path, {**user.config, "inventory": str(inventory)})

    planned = snakemake(tmp_path, config, "plan", "-c1", env=env)
    assert planned.returncode == 0, output_of(planned)
    summary = (user.workspace / "plan" / "summary.txt").read_text()
    assert "(ISCE2 2.6.4, PATH)" in summary
    stop = [line for line in summary.splitlines() if "will stop before any download" in line]
    assert len(stop) == 1 and "2 scene(s) need ISCE2 >= 2.6.5" in stop[0]
    named = {date: [g for g in granules if g in stop[0]] for date, granules in names.items()}
    assert len(named["20161007"]) == 1 and "Sentinel-1D" in stop[0]
    assert len(named["20161031"]) == 1 and "orbit 8018" in stop[0]
    assert named["20160901"] == [] and "make isce2" in stop[0]

    dry = snakemake(tmp_path, config, "-n", env=env)
    assert dry.returncode == 0 and "a run stops before any download" in output_of(dry)

    run = snakemake(tmp_path, config, "-c2", env=env)
    assert run.returncode != 0
    assert "error in rule preflight" in output_of(run)
    assert named["20161007"][0] in output_of(run) and "make isce2" in output_of(run)
    assert earthdata.product_requests() == []  # not one byte downloaded
    assert "download_slc" not in executed_rules(run)

    staged = snakemake(tmp_path, config, "stage", "-c2", env=env)
    assert staged.returncode == 0, output_of(staged)[-3000:]
    log = (user.workspace / "logs" / "preflight" / "preflight.log").read_text()
    assert "staging anyway" in log and named["20161007"][0] in log
    assert executed_rules(staged).count("download_slc") == 3


def test_no_isce_is_said_in_one_line_and_staging_still_works(tmp_path, user, shared_dir,
                                                             earthdata, orbit_bucket) -> None:  # fmt: skip
    inventory = tmp_path / "search.geojson"
    serve_orbits(orbit_bucket, saved_search(shared_dir, inventory, {}, earthdata))
    env = without_double(user.env)
    config = write_config(tmp_path, {**user.config, "inventory": str(inventory)})
    dry = snakemake(tmp_path, config, "-n", env=env)
    assert dry.returncode == 0, output_of(dry)
    lines = [line for line in output_of(dry).splitlines() if "no ISCE2" in line]
    assert len(lines) == 1 and "make isce2" in lines[0] and "isce.topsapp" in lines[0]
    planned = snakemake(tmp_path, config, "plan", "-c1", env=env)
    assert planned.returncode == 0
    summary = (user.workspace / "plan" / "summary.txt").read_text()
    assert "ISCE2: no ISCE2" in summary and "`snakemake stage` still works" in summary

    run = snakemake(tmp_path, config, "-c2", env=env)
    assert run.returncode != 0 and "error in rule preflight" in output_of(run)
    assert earthdata.product_requests() == []

    staged = snakemake(tmp_path, config, "stage", "-c2", env=env)
    assert staged.returncode == 0, output_of(staged)[-3000:]
    assert executed_rules(staged).count("download_slc") == 3


def test_conda_isce_version_is_the_env_pin(tmp_path, user, shared_dir) -> None:
    """`--sdm conda`: the rules' env (envs/isce2.yaml) is what runs; its version is read from
    the pin once per run, without building the env, and the S1D check applies to it."""
    inventory = tmp_path / "search.geojson"
    saved_search(shared_dir, inventory, {"20161007": ("S1D", 1200)})
    config = write_config(tmp_path, {**user.config, "inventory": str(inventory)})
    assert snakemake(tmp_path, config, "plan", "-c1", env=user.env).returncode == 0
    dry = snakemake(tmp_path, config, "-n", "--sdm", "conda", env=user.env)
    text = output_of(dry)
    # said while the Snakefile is read; Snakemake then needs conda itself, absent here
    assert dry.returncode == 0 or "Is conda installed" in text, text
    assert "topsApp: topsApp.py (ISCE2 2.6.4, conda env isce2.yaml" in text
    assert "a run stops before any download" in text and "Sentinel-1D" in text


def test_dinsar_isce2_command(tmp_path) -> None:
    import subprocess

    env = {**environment.clean(), "DINSAR_ISCE2_ROOT": str(tmp_path / "none"),
           "PATH": os.pathsep.join([str(DOUBLE_DIR), str(Path(sys.executable).parent)]),
           "DINSAR_DOUBLE_VERSION": "2.6.4"}  # fmt: skip
    dinsar = str(Path(sys.executable).with_name("dinsar"))
    found = subprocess.run([dinsar, "isce2"], env=env, capture_output=True, text=True, check=False)
    assert found.returncode == 0 and "(ISCE2 2.6.4, PATH)" in found.stdout
    need = subprocess.run([dinsar, "isce2", "--need"], env=env, capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert need.returncode == 3 and "older than ISCE2 2.6.5" in need.stdout
    env["DINSAR_DOUBLE_VERSION"] = "2.6.5"
    ok = subprocess.run([dinsar, "isce2", "--need"], env=env, capture_output=True, text=True,
                        check=False)  # fmt: skip
    assert ok.returncode == 0
    env["PATH"] = str(Path(sys.executable).parent)
    none = subprocess.run([dinsar, "isce2", "--need"], env=env, capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert none.returncode == 3 and "make isce2" in none.stdout
