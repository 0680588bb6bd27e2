"""Topo once per reference date with a shifted burst window, with the real topsApp.py.

A two-date stack (harness.real_stack) whose second date holds the swath's bursts 5-6 where the
first holds 4-5 (``date_bursts``: the slice starts a burst later), over an area across the
boundary of bursts 4 and 5. ISCE crops the reference 20210401 to both bursts, so its geometry
job (the date paired with itself) computes topo for two bursts; the pair 20210401_20210413 has
one common burst, the reference's second: it takes only the ``*_02`` files of the geometry.

* Union path: the pair takes the subset of the geometry's files (dinsar.geometry).
* Own-topo path: the same workspace again after the pair's folders were removed, so that its
  topo runs anew while the geometry's files are gone (``keep: products`` removed them once the
  pair was geocoded): the pair computes its own topo and says why.
* Both against the same stack with ``isce.reuse_geometry: false``: every product file and
  ISCE's geocoded files byte for byte.

One burst at 7 azimuth looks is refused (ISCE's ICU needs more than 264 lines: dinsar.safe), so
the workflow runs at 3 azimuth looks. Marker ``real_heavy``: three runs of the pair and one
geometry job; in `make test-real` (tests/REAL.md).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from workflow_runner import executed_rules, output_of, snakemake, write_config

pytestmark = [pytest.mark.real_heavy]

REFERENCE, SECONDARY = "20210401", "20210413"
PAIR = f"{REFERENCE}_{SECONDARY}"
# the geometry's and the pair's files of a burst: lat/lon/hgt/los with .xml and .vrt
FILES_PER_BURST = 12


@pytest.fixture(scope="module")
def shifted_stack():
    from harness.real_stack import StackSpec, build

    spec = StackSpec(
        dates=2,
        date_bursts=((1, 5, 7),),  # the second date: bursts 5-6 instead of 4-5
        decorrelated_date=None,
        centre=(46.30, 11.65),  # the bump in burst 5, which the pair keeps
        roi=(11.58, 46.26, 11.72, 46.38),  # W, S, E, N: across the boundary of bursts 4 and 5
    )
    return build(spec)


@pytest.fixture(scope="module")
def shifted_services(shifted_stack, tls_material):
    from harness.real_services import RealServices
    from harness.server import LocalHTTPSServer

    with LocalHTTPSServer(tls_material.server_context) as server:
        yield RealServices.start(shifted_stack, server, str(tls_material.ca_pem))


def _run(root: Path, services, keep: str, **isce) -> dict:
    # the second date's slices cover 61 % of the area (they start a burst later)
    config = services.config(root / "ws", root / "cache", pairs={"sequential": 1}, keep=keep,
                             search={"min_roi_coverage": 0.5},
                             isce={"azimuth_looks": 3, **isce})  # fmt: skip
    path = write_config(root, config)
    env = services.user_env(root / "home")
    started = time.monotonic()
    result = snakemake(root, path, "--cores", "2", env=env, timeout=2 * 3600)
    assert result.returncode == 0, output_of(result)[-8000:]
    return {"root": root, "ws": root / "ws", "result": result, "config": path, "env": env,
            "seconds": round(time.monotonic() - started, 1)}  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory, real_topsapp, shifted_services):
    """kept: reuse, keep: all (the geometry's files stay to be compared); own: reuse_geometry
    false, keep: all; products: reuse, keep: products; again: that workspace once more after the
    pair's folders were removed (the geometry's files gone). One topsApp at a time."""
    kept = _run(tmp_path_factory.mktemp("shift_kept"), shifted_services, "all")
    own = _run(tmp_path_factory.mktemp("shift_own"), shifted_services, "all", reuse_geometry=False)
    products = _run(tmp_path_factory.mktemp("shift_products"), shifted_services, "products")
    # set the pair aside (products, ISCE's folder, its topo log and usage record), run again
    first = products["root"] / "first"
    first.mkdir()
    ws = products["ws"]
    shutil.move(ws / "products" / PAIR, first / "products")
    shutil.move(ws / "work" / PAIR, first / "work")
    (first / "logs").mkdir()
    for path in (ws / "logs" / "isce_topo").glob(f"{PAIR}.*"):
        shutil.move(path, first / "logs" / path.name)
    started = time.monotonic()
    again = snakemake(products["root"], products["config"], "--cores", "2", env=products["env"],
                      timeout=2 * 3600)  # fmt: skip
    assert again.returncode == 0, output_of(again)[-8000:]
    times = {"kept_s": kept["seconds"], "own_s": own["seconds"], "products_s": products["seconds"],
             "again_s": round(time.monotonic() - started, 1)}  # fmt: skip
    print("run times:", json.dumps(times))
    return {"kept": kept, "own": own, "products": products, "first": first, "again": again,
            "times": times}


def usage(folder: Path, name: str = PAIR) -> dict:
    return json.loads((folder / f"{name}.usage.json").read_text())


def test_the_second_date_holds_the_next_burst(shifted_stack) -> None:
    """The stack: 20210413 starts one burst cycle (2.76 s) after 20210401, 12 days later; both
    hold two bursts, and the burst they share is at the same time of the orbit cycle."""
    import datetime as dt
    import xml.etree.ElementTree as ET
    import zipfile

    def bursts(scene) -> list[dt.datetime]:
        with zipfile.ZipFile(scene.zip_path) as zf:
            name = next(n for n in zf.namelist() if "/annotation/" in n and n.endswith(".xml"))
            root = ET.fromstring(zf.read(name))
        return [dt.datetime.fromisoformat(b.findtext("azimuthTime"))
                for b in root.findall("swathTiming/burstList/burst")]  # fmt: skip

    first, second = (bursts(s) for s in shifted_stack.scenes)
    assert len(first) == len(second) == 2
    cycle = (first[1] - first[0]).total_seconds()
    assert 2.7 < cycle < 2.8
    assert second[0] - dt.timedelta(days=12) == first[1]
    assert (shifted_stack.scenes[1].start - shifted_stack.scenes[0].start).total_seconds() == \
        pytest.approx(12 * 86400 + cycle, abs=1e-3)  # fmt: skip


def topo_path(ws: Path, pair_logs: Path | None = None) -> dict:
    """What the pair's topo did, from the workflow's records: its usage record and log, and the
    bursts ISCE's state names (the pair's common bursts, the geometry job's)."""
    from dinsar.geometry import common_bursts

    logs = pair_logs or ws / "logs" / "isce_topo"
    work = pair_logs.parent / "work" if pair_logs else ws / "work" / PAIR
    taken = work / "geometry.json"
    return {
        "usage": usage(logs),
        "log": (logs / f"{PAIR}.log").read_text(),
        "taken": json.loads(taken.read_text()) if taken.is_file() else None,
        "pair_bursts": common_bursts(work / "PICKLE" / "verifyDEM.xml"),
        "isce_common": [int(n) for n in re.findall(r"Number of common bursts = (\d+)",
                                                    (work / "isce.log").read_text())],  # fmt: skip
    }


def assert_took_the_second_burst(ws: Path, pair_logs: Path | None = None) -> None:
    """Union path: the geometry job computed topo for bursts 1..2 of the reference crop; the
    pair's one common burst is the second (start index 1): it took that burst's 12 files and
    ran no topo."""
    from dinsar.geometry import common_bursts

    geometry = ws / "work" / "geometry" / REFERENCE
    assert common_bursts(geometry / "PICKLE" / "topo.xml") == {1: (0, 2)}
    assert "Running step topo" in (ws / "logs" / "isce_geometry" / f"{REFERENCE}.log").read_text()
    topo = topo_path(ws, pair_logs)
    assert topo["pair_bursts"] == {1: (1, 1)} and topo["isce_common"][-1] == 1
    assert topo["usage"]["reused"] is True and topo["usage"]["files"] == FILES_PER_BURST
    assert "topo taken from" in topo["log"] and "'IW1': '2..2'" in topo["log"]
    assert "Running step topo" not in topo["log"]
    assert topo["taken"] == {"geometry": str(geometry), "reused": True, "why_not": None}


def test_the_pair_took_one_of_the_geometrys_two_bursts(runs) -> None:
    from dinsar.geometry import GEOMETRY_DIR, burst_files

    ws = runs["kept"]["ws"]
    ran = executed_rules(runs["kept"]["result"])
    assert ran.count("isce_geometry") == 1 and ran.count("isce_topo") == 1
    assert_took_the_second_burst(ws)
    # keep: all: the geometry holds both bursts' files, the pair hard links to the second's only
    geometry = ws / "work" / "geometry" / REFERENCE / GEOMETRY_DIR
    pair = ws / "work" / PAIR / GEOMETRY_DIR
    assert sorted(str(p.relative_to(geometry)) for p in geometry.rglob("*") if p.is_file()) == \
        sorted(burst_files(1, range(2)))  # fmt: skip
    assert sorted(str(p.relative_to(pair)) for p in pair.rglob("*") if p.is_file()) == \
        sorted(burst_files(1, range(1, 2)))  # fmt: skip
    for rel in burst_files(1, range(1, 2)):
        assert (pair / rel).stat().st_ino == (geometry / rel).stat().st_ino, rel


def test_the_geometrys_second_burst_is_the_pairs_own_topo(runs) -> None:
    """The 12 files the pair took (computed with the reference's 2 bursts as common bursts)
    against those the pair's own topo wrote (with 1 common burst): byte for byte, the
    workspace path in the .xml/.vrt sidecars aside."""
    from dinsar.geometry import GEOMETRY_DIR, burst_files

    kept, own = runs["kept"], runs["own"]
    theirs = own["ws"] / "work" / PAIR / GEOMETRY_DIR
    assert sorted(str(p.relative_to(theirs)) for p in theirs.rglob("*") if p.is_file()) == \
        sorted(burst_files(1, range(1, 2)))  # fmt: skip
    differ = []
    for rel in burst_files(1, range(1, 2)):
        mine = (kept["ws"] / "work" / PAIR / GEOMETRY_DIR / rel).read_bytes()
        other = (theirs / rel).read_bytes()
        if mine.replace(bytes(kept["root"]), b"") != other.replace(bytes(own["root"]), b""):
            differ.append(rel)
    assert not differ, differ


def test_the_pair_run_anew_computed_its_own_topo_and_said_why(runs) -> None:
    """keep: products: the first run took the geometry (as above), and once the pair was
    geocoded the geometry's files and state went. Run again with the pair's folders removed,
    the geometry job is not rerun (its outputs are there), and the pair's topo runs topsApp's
    topo for its one burst, its log and geometry.json saying why."""
    ws = runs["products"]["ws"]
    assert executed_rules(runs["products"]["result"]).count("isce_geometry_cleanup") == 1
    assert_took_the_second_burst(ws, runs["first"] / "logs")
    ran = executed_rules(runs["again"])
    assert "isce_geometry" not in ran and ran.count("isce_topo") == 1
    topo = topo_path(ws)
    assert topo["usage"]["reused"] is False and topo["usage"]["cpu_s"] > 1
    assert topo["pair_bursts"] == {1: (1, 1)} and topo["isce_common"][-1] == 1
    why = topo["taken"]["why_not"]
    assert topo["taken"]["reused"] is False and "keep: products" in why
    assert f"computes its own topo: {why}" in topo["log"] and "Running step topo" in topo["log"]
    print("own topo, because:", why)


def test_without_reuse_the_pair_ran_its_own_topo(runs) -> None:
    ws = runs["own"]["ws"]
    ran = executed_rules(runs["own"]["result"])
    assert "isce_geometry" not in ran and ran.count("isce_topo") == 1
    topo = topo_path(ws)
    assert topo["usage"]["reused"] is False and topo["taken"] is None
    assert topo["pair_bursts"] == {1: (1, 1)}


def product_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("run", ["kept", "first", "again"])
def test_the_same_products_as_without_reuse(runs, run) -> None:
    """Every product file byte for byte (metadata.json has no run-specific field), ISCE's
    geocoded files and the TopsProc state after topo (workspace path aside): kept and first took
    the geometry's second burst, again computed its own topo."""
    own = runs["own"]
    if run == "first":
        products, work, root = runs["first"] / "products", runs["first"] / "work", runs["products"]["root"]
    else:
        ws = runs[run if run == "kept" else "products"]["ws"]
        products, work, root = ws / "products" / PAIR, ws / "work" / PAIR, ws.parent
    mine, theirs = product_files(products), product_files(own["ws"] / "products" / PAIR)
    assert sorted(mine) == sorted(theirs) and "los_displacement.tif" in mine
    differ = sorted(rel for rel in mine if mine[rel] != theirs[rel])
    assert not differ, differ
    for rel in ("merged/filt_topophase.unw.geo", "merged/los.rdr.geo", "merged/topophase.cor.geo",
                "PICKLE/topo.xml"):  # fmt: skip
        a = (work / rel).read_bytes().replace(bytes(root), b"")
        b = (own["ws"] / "work" / PAIR / rel).read_bytes().replace(bytes(own["root"]), b"")
        assert a == b, rel
    print(run, "identical:", len(mine), "product files,", sorted(mine))
