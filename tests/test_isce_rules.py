"""ISCE execution: step groups, command resolution, resources, disk policy, and the rules run by
Snakemake on a staged workspace with the topsApp double (end to end, resume at unwrap, errors).

The staged inputs (SLC zips, orbit and DEM manifests) are written at the paths the staging and
DEM rules produce, before Snakemake runs; only ISCE outputs are targeted.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from dinsar.config import validate_config
from dinsar.isce_image import read_band, read_image
from dinsar.isce_run import (
    CPU_S_PER_BURST,
    GROUPS,
    HYP3_MEMORY_MB,
    STEP_ORDER,
    IsceRunError,
    check_after,
    check_resume_state,
    cleanup,
    cpu_seconds,
    geocode_products,
    group_outputs,
    keep_after_geocode,
    memory_mb,
    pair_bursts,
    pair_inputs,
    pair_params,
    runtime_min,
    step_command,
)
from dinsar.search import run_search
from harness import safe_factory as sf
from harness.records import pair_record
from workflow_runner import executed_rules, output_of, snakemake

DOUBLE = Path(__file__).resolve().parent / "topsapp_double" / "topsApp.py"
ROI = "POLYGON ((-121.2 54.5, -120.8 54.5, -120.8 54.8, -121.2 54.8, -121.2 54.5))"
STACK = "S1A_IW_SLC__1SSV_20160528T141908_20160528T141938_011460_011746_335C_stack.yml"
WAVELENGTH = 0.05546576
GEOCODED = ["filt_topophase.unw", "filt_topophase.flat", "topophase.cor", "phsig.cor", "los.rdr",
            "filt_topophase.unw.conncomp"]  # fmt: skip
GROUP_RULES = [f"isce_{g.name}" for g in GROUPS]
# The staged inputs stand for what staging and the DEM stage produce; only the search and the
# ISCE rules may run, so no staging rule ever re-makes (downloads) them in a test.
ALLOWED = ["--allowed-rules", "search", "topsapp_xml", *GROUP_RULES, "isce_cleanup"]


# --- steps and commands ------------------------------------------------------------------------


def test_step_order_matches_topsapp(shared_dir: Path) -> None:
    facts = json.loads((shared_dir / "reference/isce2/topsapp_steps.json").read_text())
    assert list(STEP_ORDER) == facts["step_order"]


def test_groups_run_startup_to_geocode_once_each() -> None:
    steps = [s for g in GROUPS for s in g.steps]
    assert steps == list(STEP_ORDER[: STEP_ORDER.index("geocode") + 1])
    assert [g.name for g in GROUPS] == ["preprocess", "topo", "coregistration", "interferogram",
                                        "filter", "unwrap", "geocode"]  # fmt: skip
    assert GROUPS[5].steps == ("unwrap", "unwrap2stage") and GROUPS[5].previous_step == "filter"


def test_step_command_is_an_argument_list_with_equals() -> None:
    assert step_command(["/opt/isce/topsApp.py"], "coregistration") == [
        "/opt/isce/topsApp.py", "topsApp.xml", "--start=subsetoverlaps", "--end=fineresamp"]  # fmt: skip


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_resume_needs_the_previous_pickle(tmp_path: Path) -> None:
    check_resume_state(tmp_path, "preprocess")  # starts from nothing
    with pytest.raises(IsceRunError, match=r"cannot start unwrap at step unwrap: PICKLE/filter"):
        check_resume_state(tmp_path, "unwrap")
    (tmp_path / "PICKLE").mkdir()
    for name in ("filter", "filter.xml"):
        (tmp_path / "PICKLE" / name).write_text("x")
    check_resume_state(tmp_path, "unwrap")


def test_missing_swath_after_preprocess_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "PICKLE").mkdir()
    for name in ("verifyDEM", "verifyDEM.xml"):
        (tmp_path / "PICKLE" / name).write_text("x")
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "IW2.xml").write_text("<x/>")
    info = pair_record(swaths=[2])
    with pytest.raises(IsceRunError) as err:
        check_after(tmp_path, "preprocess", info)
    assert "secondary/IW2.xml was not written" in str(err.value)
    assert "Could not extract" in str(err.value)


# --- declared outputs --------------------------------------------------------------------------


def test_group_outputs_are_real_files() -> None:
    assert group_outputs("topo", unwrap=True, unwrapper="snaphu_mcf") == {
        "state": ["PICKLE/topo"], "metadata": ["PICKLE/topo.xml"], "products": []}  # fmt: skip
    assert group_outputs("unwrap", unwrap=True, unwrapper="icu")["products"] == [
        "merged/filt_topophase.unw", "merged/filt_topophase.conncomp"]  # fmt: skip
    assert group_outputs("unwrap", unwrap=False, unwrapper="snaphu")["products"] == []
    geo = group_outputs("geocode", unwrap=True, unwrapper="snaphu", geocode=["merged/los.rdr"])
    assert geo["products"] == ["merged/los.rdr.geo", "merged/los.rdr.geo.xml", "merged/los.rdr.geo.vrt",
                               "merged/dem.crop", "merged/dem.crop.xml", "merged/dem.crop.vrt"]  # fmt: skip


def test_geocode_list_keeps_only_files_topsapp_writes() -> None:
    default = [f"merged/{n}" for n in GEOCODED]
    common = {"ionosphere": False, "looks": (19, 7)}
    assert geocode_products(default, unwrap=True, unwrapper="snaphu_mcf", strict=True, **common) == default
    kept = geocode_products(default, unwrap=False, unwrapper="snaphu_mcf", strict=False, **common)
    assert kept == ["merged/filt_topophase.flat", "merged/topophase.cor", "merged/phsig.cor", "merged/los.rdr"]
    with pytest.raises(IsceRunError, match="only written with isce.unwrap: true.*silently skip"):
        geocode_products(default, unwrap=False, unwrapper="snaphu_mcf", strict=True, **common)
    with pytest.raises(IsceRunError, match="not what unwrapper icu writes"):
        geocode_products(default, unwrap=True, unwrapper="icu", strict=True, **common)
    with pytest.raises(IsceRunError, match=r"only written at 1x1 looks"):
        geocode_products(["merged/lat.rdr"], unwrap=True, unwrapper="icu", strict=True, **common)


def test_pair_inputs_follow_the_staging_contract() -> None:
    from types import SimpleNamespace as NS

    def acquisition(date: str, ipf: str, granules: list[str]) -> NS:
        return NS(date=date, track="13_DESC", platform="S1A", granules=granules,
                  safe_names=granules, scenes=[NS(ipf=ipf) for _ in granules])  # fmt: skip

    ref = acquisition("20150603", "002.36", ["A1", "A2"])
    sec = acquisition("20150627", "002.43", ["B1", "B2"])
    # the staging rules' output patterns, as the ISCE rules pass them
    patterns = {"slc": "/cache/slc/{granule}.zip", "orbits": "/ws/orbits/{date}.json",
                "dem": "/ws/dem/{track}/dem.json", "aux_cal": "/ws/aux_cal/{date}.json"}  # fmt: skip

    inputs = pair_inputs(ref, sec, **patterns)
    assert inputs == {
        "ref_zips": ["/cache/slc/A1.zip", "/cache/slc/A2.zip"],
        "sec_zips": ["/cache/slc/B1.zip", "/cache/slc/B2.zip"],
        "ref_orbit": "/ws/orbits/20150603.json", "sec_orbit": "/ws/orbits/20150627.json",
        "dem": "/ws/dem/13_DESC/dem.json",
        "aux": ["/ws/aux_cal/20150603.json"],  # only the IPF 002.36 date
    }  # fmt: skip
    assert "aux" not in pair_inputs(sec, sec, **patterns)
    # one rule decides (aux_cal.needs_aux_cal): an IPF written "2.36" needs AUX_CAL too (the
    # string comparison with "002.36" missed it: downloaded, but not given to topsApp.xml)
    other = acquisition("20150603", "2.36", ["C1"])
    assert pair_inputs(other, sec, **patterns)["aux"] == ["/ws/aux_cal/20150603.json"]
    assert pair_params(ref, sec)["secondary"] == {"date": "20150627", "platform": "S1A",
                                                  "track": "13_DESC", "granules": ["B1", "B2"]}  # fmt: skip


def test_pair_bursts_from_the_record_or_the_estimate(tmp_path: Path) -> None:
    info = tmp_path / "dinsar_pair.json"
    assert pair_bursts(info, 12) == 12
    pair_record(bursts=5).write(info)
    assert pair_bursts(info, 12) == 5
    info.write_text(json.dumps({"bursts": 5}))  # not what topsapp_xml writes: the estimate
    assert pair_bursts(info, 12) == 12


# --- resources ---------------------------------------------------------------------------------


def test_memory_model_follows_hyp3s_table() -> None:
    """For each HyP3 tier (looks, up to N bursts): our estimate at N exceeds the tier below
    (HyP3 found that not enough), and at the tier's first burst count fits in the tier."""
    previous: dict[str, tuple[int, int]] = {}
    for looks, max_bursts, tier_mb in HYP3_MEMORY_MB:
        rg, az = (int(v) for v in looks.split("x"))
        first, below_mb = previous.get(looks, (1, 0))
        assert memory_mb("topo", max_bursts, rg, az) > below_mb, (looks, max_bursts)
        assert memory_mb("topo", first, rg, az) <= tier_mb, (looks, first)
        previous[looks] = (max_bursts + 1, tier_mb)
    assert memory_mb("topo", 27, 19, 7) == pytest.approx(15400, rel=0.05)  # 3 swaths x 9 bursts
    assert memory_mb("topo", 3, 19, 7, attempt=2) == 1.5 * memory_mb("topo", 3, 19, 7)
    assert memory_mb("preprocess", 27, 19, 7) == 1000
    assert memory_mb("geocode", 27, 19, 7) < memory_mb("topo", 27, 19, 7)


def test_runtime_scales_with_bursts_and_threads() -> None:
    assert runtime_min("topo", 27, 19, 7, 4) > runtime_min("topo", 3, 19, 7, 4) >= 10
    assert runtime_min("topo", 27, 19, 7, 1) > runtime_min("topo", 27, 19, 7, 8)
    assert runtime_min("unwrap", 27, 5, 1, 1) > runtime_min("unwrap", 27, 19, 7, 1)
    assert runtime_min("topo", 27, 19, 7, 4, attempt=2) == 2 * runtime_min("topo", 27, 19, 7, 4)


# --- disk policy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rel,kept",
    [
        ("merged/filt_topophase.unw.geo", True), ("merged/filt_topophase.unw.geo.vrt", True),
        ("merged/dem.crop.xml", True), ("merged/filt_topophase.unw", False),
        ("merged/filt_topophase.unw.xml", False), ("merged/los.rdr.full.vrt", False),
        ("PICKLE/topo", False), ("PICKLE/topo.xml", True), ("PICKLE/geocode", True),
        ("reference/IW2.xml", True), ("fine_coreg/IW2.xml", True),
        ("reference/IW2/burst_01.slc.vrt", False), ("geom_reference/IW2/lat_01.rdr", False),
        ("ESD/combined_IW2.int", False), ("fine_coreg/IW2/burst_01.slc", False),
        ("topsApp.xml", True), ("isce.log", True), ("dinsar_pair.json", True),
    ],
)  # fmt: skip
def test_keep_products_rule(rel: str, kept: bool) -> None:
    assert keep_after_geocode(rel) is kept


def test_cleanup_refuses_before_geocode_and_keeps_metadata(tmp_path: Path) -> None:
    for rel in ("merged/los.rdr.geo", "merged/los.rdr", "merged/los.rdr.xml", "reference/IW2.xml",
                "reference/IW2/burst_01.slc.xml", "reference/IW2/burst_01.slc.vrt",
                "geom_reference/IW2/lat_01.rdr", "geom_reference/IW2/lat_01.rdr.xml"):  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"1234")
    with pytest.raises(IsceRunError, match="not deleting intermediates"):
        cleanup(tmp_path, [tmp_path / "merged/filt_topophase.unw.geo"])
    summary = cleanup(tmp_path, [tmp_path / "merged/los.rdr.geo"])
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["merged/los.rdr.geo", "reference/IW2.xml"]
    assert summary["removed_files"] == 6 and summary["freed_bytes"] == 24
    assert not (tmp_path / "geom_reference").exists()


# --- Snakemake on a staged workspace -----------------------------------------------------------


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """The path-13 stack as an asf_search GeoJSON export (what `inventory:` reads)."""
    import asf_search
    import yaml
    from asf_search.search.search_generator import as_ASFProduct

    text = (shared_dir / "fixtures" / "asf_search" / STACK).read_text()
    records = yaml.safe_load(text)
    session = asf_search.ASFSession()
    products = [as_ASFProduct({"umm": r["umm"], "meta": r["meta"]}, session) for r in records]
    path = tmp_path_factory.mktemp("inventory") / "stack.geojson"
    path.write_text(json.dumps(asf_search.ASFSearchResults(products).geojson()))
    return path


def env_for(path_double: bool = True, **extra: str) -> dict[str, str]:
    """PATH with the double (and this Python for its shebang), for ``snakemake(env=...)``, which
    starts from the clean environment: no double settings leak in (harness.environment)."""
    parts = [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    if path_double:
        parts.insert(0, str(DOUBLE.parent))
    # no project ISCE2 build: it would come before the double on PATH
    env = {"PATH": os.pathsep.join(parts), "ISCE_HOME": "", "DINSAR_ISCE2_ROOT": "/nonexistent"}
    env.update(extra)
    return env


SEARCH = {"roi": ROI, "dates": {"start": "2016-09-01", "end": "2017-03-01"}}  # 8 dates, 7 pairs


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory, inventory: Path) -> Path:
    """The search checkpoint's outputs, made once by the code the checkpoint runs; each test's
    workspace starts from a copy (Snakemake then treats the checkpoint as done)."""
    folder = tmp_path_factory.mktemp("searched")
    cfg = validate_config({**SEARCH, "workspace": str(folder / "ws"), "inventory": str(inventory)})
    run_search(cfg, folder / "inventory" / "scenes.geojson", folder / "inventory" / "dates.csv")
    return folder / "inventory"


def staged(tmp_path: Path, searched: Path, inventory: Path, dates: list[str],
           keep: str = "products", **isce: object) -> tuple[Path, dict]:  # fmt: skip
    """A workspace with the search done and the staged inputs of ``dates`` in place."""
    workspace = tmp_path / "ws"
    shutil.copytree(searched, workspace / "inventory")
    config = {**SEARCH, "workspace": str(workspace), "inventory": str(inventory),
              "isce": {"threads": 1, **isce}, "keep": keep}  # fmt: skip
    sf.stage_inputs(workspace, workspace / "cache" / "slc", workspace / "inventory" / "scenes.geojson",
                    dates, dem_bounds=[-121.6, 54.2, -120.4, 55.1], dem_posting=1 / 400)  # fmt: skip
    return workspace, config


def targets_of(workspace: Path, pairs: list[str], keep: str = "products") -> list[str]:
    out = []
    for pair in pairs:
        out += [str(workspace / "work" / pair / "merged" / f"{n}.geo") for n in GEOCODED]
        if keep == "products":
            out.append(str(workspace / "work" / pair / "cleanup.json"))
    return out


def test_end_to_end_three_pairs(tmp_path: Path, searched: Path, inventory: Path) -> None:
    dates = ["20160901", "20161007", "20161031", "20161124"]
    pairs = ["20160901_20161007", "20161007_20161031", "20161031_20161124"]
    workspace, config = staged(tmp_path, searched, inventory, dates)
    targets = targets_of(workspace, pairs)
    result = snakemake(tmp_path, config, "--cores", "2", *targets, *ALLOWED,
                       env=env_for(DINSAR_DOUBLE_DEFO_AMP_M="0.01"))  # fmt: skip
    assert result.returncode == 0, output_of(result)
    ran = executed_rules(result)
    for rule in ["topsapp_xml", *GROUP_RULES, "isce_cleanup"]:
        assert ran.count(rule) == 3, rule
    expected = 4 * np.pi / WAVELENGTH * 0.01
    for pair in pairs:
        work = workspace / "work" / pair
        info = json.loads((work / "dinsar_pair.json").read_text())
        assert info["swaths"] == [2] and info["bursts"] >= 2
        unw = work / "merged" / "filt_topophase.unw.geo"
        image = read_image(unw.with_name(unw.name + ".xml"))
        assert image.delta_lon == pytest.approx(1 / 200)  # the geocode DEM's posting
        assert image.first_lon <= -121.25 + 1e-9 and image.first_lat >= 54.85 - 1e-9
        phase = read_band(unw, 2)
        row = int(round((image.first_lat - 54.65) / -image.delta_lat))
        col = int(round((-121.0 - image.first_lon) / image.delta_lon))
        assert phase[row, col] == pytest.approx(expected, rel=0.1)  # + = range increase
        # keep: products: intermediates gone, products, metadata and logs kept
        for gone in ("geom_reference", "fine_coreg/IW2", "fine_offsets", "ESD", "reference/IW2",
                     "merged/filt_topophase.unw", "merged/los.rdr.full.xml", "PICKLE/topo"):  # fmt: skip
            assert not (work / gone).exists(), gone
        for kept in ("reference/IW2.xml", "secondary/IW2.xml", "PICKLE/topo.xml", "topsApp.xml",
                     "merged/dem.crop", "merged/los.rdr.geo.vrt", "isce.log"):  # fmt: skip
            assert (work / kept).exists(), kept
        assert json.loads((work / "cleanup.json").read_text())["freed_bytes"] > 0
        log = (workspace / "logs" / "isce_unwrap" / f"{pair}.log").read_text()
        assert "--start=unwrap --end=unwrap2stage" in log and "Running step unwrap2stage" in log
        assert (workspace / "benchmarks" / "isce_topo" / f"{pair}.tsv").is_file()
    again = snakemake(tmp_path, config, "-n", *targets, *ALLOWED, env=env_for())
    assert again.returncode == 0 and "Nothing to be done" in output_of(again)


def test_resume_at_unwrap_reruns_nothing_earlier(tmp_path: Path, searched: Path, inventory: Path) -> None:
    dates = ["20161007", "20161031"]
    pair = "20161007_20161031"
    # the configured-command route: no double on PATH
    workspace, config = staged(tmp_path, searched, inventory, dates, keep="all",
                               topsapp=[sys.executable, str(DOUBLE)])  # fmt: skip
    targets = targets_of(workspace, [pair], keep="all")
    failed = snakemake(tmp_path, config, "--cores", "2", *targets, *ALLOWED,
                       env=env_for(path_double=False, DINSAR_DOUBLE_FAIL_AT="unwrap"))  # fmt: skip
    assert failed.returncode != 0
    assert "injected failure in step unwrap" in (workspace / "logs/isce_unwrap" / f"{pair}.log").read_text()
    assert "isce_unwrap" in executed_rules(failed)
    work = workspace / "work" / pair
    before = {p: (work / p).stat().st_mtime_ns for p in ("PICKLE/topo", "PICKLE/filter", "merged/phsig.cor")}
    fixed = snakemake(tmp_path, config, "--cores", "2", *targets, *ALLOWED,
                      env=env_for(path_double=False))  # fmt: skip
    assert fixed.returncode == 0, output_of(fixed)
    assert executed_rules(fixed) == ["isce_unwrap", "isce_geocode"]
    assert {p: (work / p).stat().st_mtime_ns for p in before} == before
    assert (work / "geom_reference").is_dir()  # keep: all


def test_clear_errors_for_a_bad_zip_and_a_missing_topsapp(tmp_path: Path, searched: Path, inventory: Path) -> None:
    dates = ["20161007", "20161031", "20161124"]
    workspace, config = staged(tmp_path, searched, inventory, dates)
    bad = next((workspace / "cache" / "slc").glob("*20161124T*.zip"))
    granule = bad.name.removesuffix(".zip")
    props = next(f["properties"] for f in json.loads((workspace / "inventory/scenes.geojson").read_text())["features"]
                 if f["properties"]["granule"] == granule)  # fmt: skip
    footprint = next(f["geometry"]["coordinates"][0] for f in json.loads(
        (workspace / "inventory/scenes.geojson").read_text())["features"] if f["properties"]["granule"] == granule)  # fmt: skip
    bad.write_bytes(sf.safe_zip_bytes(granule, footprint, ipf=props["ipf"], layout="nested"))
    targets = targets_of(workspace, ["20161007_20161031", "20161031_20161124"])
    result = snakemake(tmp_path, config, "--cores", "2", "--keep-going", *targets, *ALLOWED,
                       env=env_for(path_double=False))  # fmt: skip
    assert result.returncode != 0
    text = output_of(result)
    assert "error in rule topsapp_xml" in text and "holds 'safe/' at its top level" in text
    assert "error in rule isce_preprocess" in text and "topsApp.py is not on PATH" in text
    assert "make isce2" in text
    assert not (workspace / "work" / "20161007_20161031" / "PICKLE").exists()


def test_esd_is_turned_off_when_no_swath_keeps_two_bursts(tmp_path: Path, searched: Path,
                                                          inventory: Path) -> None:  # fmt: skip
    """With one common burst per swath, topsApp 2.6.5 skips ESD for every swath and then stops in
    runESD ('Coherence threshold too strict. No points left'; seen on a real run, and the double
    does the same): topsApp.xml must say do ESD False for such a pair."""
    import numpy as np
    from shapely.geometry import box

    from dinsar.bursts import ISCE_CROP_HEIGHTS
    from dinsar.safe import common_bursts, read_safe

    dates = ["20161007", "20161031"]
    pair = "_".join(dates)
    # 4 azimuth looks: one burst at the default 7 is too short for ISCE's phase sigma (below)
    workspace, config = staged(tmp_path, searched, inventory, dates, azimuth_looks=4)
    zips = sorted((workspace / "cache" / "slc").glob("*.zip"))
    safes = [read_safe(z, "vv") for z in zips]
    # a small area in the first burst of IW2, north of where ISCE's box of the second ends
    swath = safes[0].swaths[2]
    north_of = swath.bursts[1].geometry.box(swath.grid, ISCE_CROP_HEIGHTS)[3] + 0.02
    inside = swath.bursts[0].polygon().buffer(-0.02)
    w, s, e, n = inside.bounds
    lon, lat = next((x, y) for y in np.linspace(n, s, 40) for x in np.linspace(w, e, 40)
                    if y > north_of and inside.contains(box(x, y, x, y).centroid))  # fmt: skip
    roi = box(lon - 0.005, lat - 0.005, lon + 0.005, lat + 0.005)
    assert common_bursts(safes[:1], safes[1:], roi.bounds).get(2) == 1  # one burst in IW2
    config["roi"] = roi.wkt
    result = snakemake(tmp_path, config, "--cores", "2", *targets_of(workspace, [pair]), *ALLOWED,
                       env=env_for())  # fmt: skip
    assert result.returncode == 0, output_of(result)[-4000:]
    xml = (workspace / "work" / pair / "topsApp.xml").read_text()
    assert '<property name="do ESD">False</property>' in xml
    info = json.loads((workspace / "work" / pair / "dinsar_pair.json").read_text())
    assert info["esd"] is False and info["bursts"] == 1
    assert "ESD turned off for this pair" in (workspace / "logs/topsapp_xml" / f"{pair}.log").read_text()

    # the same pair at 7 azimuth looks: ~214 lines, and ISCE's ICU makes no patch of fewer
    # than 265, leaving phsig.cor empty; refused before topsApp starts, with the fix
    config["isce"]["azimuth_looks"] = 7
    config["workspace"] = str(tmp_path / "ws7")
    shutil.copytree(workspace / "inventory", tmp_path / "ws7" / "inventory")
    sf.stage_inputs(tmp_path / "ws7", tmp_path / "ws7" / "cache" / "slc", tmp_path / "ws7" / "inventory" / "scenes.geojson",
                    dates, dem_bounds=[-121.6, 54.2, -120.4, 55.1], dem_posting=1 / 400)  # fmt: skip
    short = snakemake(tmp_path, config, "--cores", "2", *targets_of(tmp_path / "ws7", [pair]),
                      *ALLOWED, env=env_for())  # fmt: skip
    assert short.returncode != 0
    text = output_of(short)
    assert "error in rule topsapp_xml" in text and "at 7 azimuth looks" in text, text[-3000:]
    assert "Enlarge the ROI along the track" in text and "isce.azimuth_looks to " in text
    assert not (tmp_path / "ws7" / "work" / pair / "PICKLE").exists()


def test_the_double_leaves_an_empty_phsig_like_isce_below_265_lines(tmp_path: Path) -> None:
    """ICU (isce2 icu.F) patches: none for 264 lines or fewer, one for 265..3700."""
    sys.path.insert(0, str(DOUBLE.parent))
    from dbl_steps import icu_patches

    from dinsar.safe import ICU_MIN_LINES

    assert icu_patches(214) == 0 and icu_patches(264) == 0
    assert icu_patches(ICU_MIN_LINES) == 1 and icu_patches(406) == 1 and icu_patches(3437) == 1


def test_one_cpu_model_for_the_rules_the_plan_and_the_cluster_benchmark(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The calibration lives in dinsar.isce_run; the plan and benchmarks/cluster_model.py read it."""
    import importlib

    from dinsar.plan import bursts_and_swaths, estimate_cpu
    from dinsar.roi import parse_roi

    assert cpu_seconds("topo", 10, 19, 7) == pytest.approx(10 * CPU_S_PER_BURST["topo"])
    # SNAPHU scales with the multilooked pixels: twice the looks, half the CPU
    assert cpu_seconds("unwrap", 10, 19, 7) == pytest.approx(2 * cpu_seconds("unwrap", 10, 19, 14))
    # the rules' runtime is that CPU time x the safety factor, spread over the threads
    assert runtime_min("topo", 27, 19, 7, 1) == math.ceil(3 * cpu_seconds("topo", 27, 19, 7) / 60)
    cpu = estimate_cpu(5, math.prod(bursts_and_swaths(parse_roi([11.5, 46.3, 11.7, 46.5]))), 19, 7)
    assert cpu.seconds_per_group == {
        g.name: cpu_seconds(g.name, cpu.bursts_per_pair, 19, 7) for g in GROUPS
    }
    assert cpu.total == pytest.approx(5 * cpu.per_pair)
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    model = importlib.import_module("cluster_model")
    # one thread: no Amdahl gain, exactly the library's CPU time
    for g in GROUPS:
        assert model.group_seconds(g.name, 27, 1, (19, 7)) == pytest.approx(
            cpu_seconds(g.name, 27, 19, 7)
        )
