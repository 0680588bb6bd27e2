"""Topo once per reference date (isce.reuse_geometry, dinsar.geometry), with the test double.

The real topsApp's side (byte-identical products with and without reuse, topo once per
reference date) is in test_real_topsapp.py; the facts the design rests on in dinsar/geometry.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import test_isce_rules
from test_isce_rules import env_for, staged

from dinsar.geometry import burst_files, common_bursts, reuse_problem
from dinsar.isce_topo_state import topo_items
from dinsar.topsapp import TopsApp, interpreter
from harness.records import pair_record
from workflow_runner import REPO, SNAKEMAKE, executed_rules, output_of, snakemake, write_config

# the stack and search of test_isce_rules (module-scoped fixtures, made again for this module)
inventory = test_isce_rules.inventory
searched = test_isce_rules.searched

DATES = ["20160901", "20161007", "20161031"]
# sequential: 2 on three dates: two pairs share 20160901, one has 20161007
PAIRS = ["20160901_20161007", "20160901_20161031", "20161007_20161031"]
REFERENCES = ["20160901", "20161007"]
DOUBLE_APP = TopsApp(command=(str(REPO / "tests" / "topsapp_double" / "topsApp.py"),),
                     version="2.6.5", origin="PATH")  # fmt: skip


def state_xml(path: Path, counts: list[int], starts: list[int]) -> Path:
    """ISCE's TopsProc rendering (PICKLE/<step>.xml), the two properties topo reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '<topsProc name="topsproc">\n'
        f'  <property name="commonburststartreferenceindex"><value>{starts}</value></property>\n'
        f'  <property name="numberofcommonbursts"><value>{counts}</value></property>\n'
        "</topsProc>\n"
    )
    return path


def test_common_bursts_per_swath_from_isces_state(tmp_path: Path) -> None:
    path = state_xml(tmp_path / "topo.xml", [3, 0, 2], [1, -1, 0])
    assert common_bursts(path) == {1: (1, 3), 3: (0, 2)}
    assert burst_files(2, range(1, 2))[:3] == ["IW2/lat_02.rdr", "IW2/lat_02.rdr.xml",
                                               "IW2/lat_02.rdr.vrt"]  # fmt: skip
    assert len(burst_files(1, range(0, 3))) == 3 * 4 * 3


def test_topo_catalog_is_renumbered_for_the_pairs_own_bursts() -> None:
    """runTopo numbers its catalog entries from the pair's first common burst: a pair that
    uses bursts 2..3 of a geometry holding 1..3 gets the geometry's entries 1 and 2 as 0, 1."""
    node = {"Dem Used": "/dem.wgs84", "Number of common bursts IW-1": 3}
    for i in range(3):
        node[f"Number of lines for burst {i} - IW-1"] = 1500 + i
        node[f"Number of pixels for bursts {i} - IW-1"] = 4000 + i
        node[f"Bounding box for burst {i} - IW-1"] = [46.0 + i, 46.5 + i, 11.0 - i, 11.5 + i]
    items = dict(topo_items(node, {"1": [1, 2]}, {"1": [0, 3]}))
    assert items["Number of common bursts IW-1"] == 2
    assert items["Number of lines for burst 0 - IW-1"] == 1501
    assert items["Bounding box for burst 1 - IW-1"] == [48.0, 48.5, 9.0, 13.5]
    assert "Number of lines for burst 2 - IW-1" not in items
    assert items["Overall bounding box"] == [47.0, 48.5, 9.0, 13.5]
    # the same bursts: the geometry's node as it is, in runTopo's order
    assert dict(topo_items(node, {"1": [0, 3]}, {"1": [0, 3]})) == {**node, "Overall bounding box":
                                                                 [46.0, 48.5, 9.0, 13.5]}  # fmt: skip


def test_interpreter_that_can_write_isces_state(tmp_path: Path) -> None:
    assert interpreter(TopsApp(command=("/opt/py", "t.py"), version=None, origin="x",
                               python="/opt/py")) == ["/opt/py"]  # fmt: skip
    assert interpreter(DOUBLE_APP) == ["/usr/bin/env", "python3"]
    assert interpreter(TopsApp(command=("python3.11", "/x/topsApp.py"), version=None,
                               origin="isce.topsapp")) == ["python3.11"]  # fmt: skip
    container = TopsApp(command=("/usr/bin/apptainer", "exec", "isce2.sif", "topsApp.py"),
                        version="2.6.5", origin="isce.topsapp")  # fmt: skip
    assert interpreter(container) is None


def pair_dir(root: Path, counts: list[int], starts: list[int], reference: bytes = b"<r/>",
             dem: str = "/dem.wgs84") -> Path:  # fmt: skip
    root.mkdir(parents=True)
    (root / "topsApp.xml").write_text(
        '<topsApp><component name="topsinsar">'
        f'<property name="demFilename">{dem}</property></component></topsApp>'
    )
    (root / "reference").mkdir()
    (root / "reference" / "IW1.xml").write_bytes(reference)
    state_xml(root / "PICKLE" / "verifyDEM.xml", counts, starts)
    state_xml(root / "PICKLE" / "topo.xml", counts, starts)
    (root / "PICKLE" / "topo").write_bytes(b"state")
    return root


def geometry_dir(root: Path, bursts: int = 3) -> Path:
    folder = pair_dir(root, [bursts, 0, 0], [0, -1, -1])
    for rel in burst_files(1, range(bursts)):
        path = folder / "geom_reference" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return folder


def test_when_a_pair_computes_its_own_topo(tmp_path: Path) -> None:
    info = pair_record()
    geometry = geometry_dir(tmp_path / "geometry")
    ok = pair_dir(tmp_path / "ok", [2, 0, 0], [1, -1, -1])
    assert reuse_problem(ok, geometry, info, DOUBLE_APP) is None
    container = TopsApp(command=("apptainer", "exec", "i.sif", "topsApp.py"), version="2.6.5",
                        origin="isce.topsapp")  # fmt: skip
    assert "ISCE's own Python" in reuse_problem(ok, geometry, info, container)
    outside = pair_dir(tmp_path / "outside", [2, 0, 0], [2, -1, -1])
    assert reuse_problem(outside, geometry, info, DOUBLE_APP) == (
        "it needs bursts 3..4 of IW1, the geometry holds 1..3")
    other = pair_dir(tmp_path / "other", [2, 0, 0], [0, -1, -1], reference=b"<other/>")
    assert "reference bursts (reference/IW1.xml) differ" in reuse_problem(other, geometry, info, DOUBLE_APP)
    dem = pair_dir(tmp_path / "dem", [2, 0, 0], [0, -1, -1], dem="/other.wgs84")
    assert "demfilename" in reuse_problem(dem, geometry, info, DOUBLE_APP)
    (geometry / "geom_reference" / "IW1" / "hgt_02.rdr").unlink()
    assert "geometry files are gone (geom_reference/IW1/hgt_02.rdr" in reuse_problem(
        ok, geometry, info, DOUBLE_APP)  # fmt: skip
    (geometry / "PICKLE" / "topo").unlink()
    assert "state" in reuse_problem(ok, geometry, info, DOUBLE_APP)
    # keep: products takes the state with the files (only PICKLE/<step>.xml stay): say so
    (geometry / "cleanup.json").write_text("{}")
    assert "geometry files are gone" in reuse_problem(ok, geometry, info, DOUBLE_APP)
    assert "keep: products" in reuse_problem(ok, geometry, info, DOUBLE_APP)


# --- the workflow with the double --------------------------------------------------------------


def config_for(tmp_path: Path, searched: Path, inventory: Path, keep: str = "all",
               **isce: object) -> tuple[Path, dict]:  # fmt: skip
    workspace, config = staged(tmp_path, searched, inventory, DATES, keep=keep, **isce)
    config["pairs"] = {"sequential": 2}
    return workspace, config


def targets(workspace: Path, keep: str) -> list[str]:
    out = [str(workspace / "work" / p / "merged" / "filt_topophase.unw.geo") for p in PAIRS]
    if keep == "products":
        out += [str(workspace / "work" / p / "cleanup.json") for p in PAIRS]
        # 20160901's pairs are both here; 20161007 is also the reference of 20161007_20161124
        out.append(str(workspace / "work" / "geometry" / REFERENCES[0] / "cleanup.json"))
    return out


def products(workspace: Path) -> dict[str, bytes]:
    return {f"{p}/{f.name}": f.read_bytes() for p in PAIRS
            for f in sorted((workspace / "work" / p / "merged").glob("*.geo"))}  # fmt: skip


def test_dry_run_shows_one_geometry_job_per_reference_date(tmp_path: Path, searched: Path,
                                                           inventory: Path) -> None:  # fmt: skip
    workspace, config = config_for(tmp_path, searched, inventory)
    result = snakemake(tmp_path, config, "-n", *targets(workspace, "all"), env=env_for())
    assert result.returncode == 0, output_of(result)
    ran = executed_rules(result)
    assert ran.count("isce_geometry") == len(REFERENCES) and ran.count("isce_topo") == len(PAIRS)
    config["isce"]["reuse_geometry"] = False
    result = snakemake(tmp_path, config, "-n", *targets(workspace, "all"), env=env_for())
    assert result.returncode == 0 and "isce_geometry" not in executed_rules(result)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, searched: Path, inventory: Path) -> dict:
    """The three pairs with one topo per pair (reuse_geometry: false): the reference."""
    tmp_path = tmp_path_factory.mktemp("own_topo")
    workspace, config = config_for(tmp_path, searched, inventory, reuse_geometry=False)
    result = snakemake(tmp_path, config, "--cores", "2", *targets(workspace, "all"), env=env_for())
    assert result.returncode == 0, output_of(result)
    return {"products": products(workspace), "root": tmp_path, "workspace": workspace,
            "config": config}  # fmt: skip


def test_turning_reuse_on_reruns_no_finished_pair(uninterrupted: dict) -> None:
    """Pairs whose topo ran without a geometry do not depend on one afterwards."""
    config = {**uninterrupted["config"], "isce": {**uninterrupted["config"]["isce"],
                                                  "reuse_geometry": True}}  # fmt: skip
    result = snakemake(uninterrupted["root"], config, "-n",
                       *targets(uninterrupted["workspace"], "all"), env=env_for())  # fmt: skip
    assert result.returncode == 0 and "Nothing to be done" in output_of(result), output_of(result)


def test_reuse_and_keep_products(tmp_path: Path, searched: Path, inventory: Path,
                                 uninterrupted: dict) -> None:  # fmt: skip
    """Each pair takes its reference date's files (hard links), its products equal those of
    one topo per pair, and keep: products removes the geometry once its pairs are geocoded."""
    workspace, config = config_for(tmp_path, searched, inventory, keep="products")
    result = snakemake(tmp_path, config, "--cores", "2", *targets(workspace, "products"),
                       env=env_for())  # fmt: skip
    assert result.returncode == 0, output_of(result)
    ran = executed_rules(result)
    assert ran.count("isce_geometry") == 2 and ran.count("isce_geometry_cleanup") == 1
    for pair in PAIRS:
        log = (workspace / "logs" / "isce_topo" / f"{pair}.log").read_text()
        assert "topo taken from" in log and "Running step topo" not in log
        usage = json.loads((workspace / "logs" / "isce_topo" / f"{pair}.usage.json").read_text())
        assert usage["reused"] and usage["files"] == 3 * 4 * 3
    folder = workspace / "work" / "geometry" / REFERENCES[0]
    assert not (folder / "geom_reference").exists() and (folder / "PICKLE" / "topo.xml").is_file()
    # kept while a pair of its date (20161007_20161124) is not geocoded yet
    assert (workspace / "work" / "geometry" / REFERENCES[1] / "geom_reference").is_dir()
    assert products(workspace) == uninterrupted["products"]


def test_a_pair_without_the_geometry_computes_its_own_topo(tmp_path: Path, searched: Path,
                                                           inventory: Path) -> None:  # fmt: skip
    workspace, config = config_for(tmp_path, searched, inventory)
    first = snakemake(tmp_path, config, "--cores", "2", *targets(workspace, "all"), env=env_for())
    assert first.returncode == 0, output_of(first)
    geometry = workspace / "work" / "geometry" / "20160901" / "geom_reference"
    taken = workspace / "work" / PAIRS[0] / "geom_reference" / "IW2" / "lat_01.rdr"
    assert taken.stat().st_ino == (geometry / "IW2" / "lat_01.rdr").stat().st_ino  # a hard link
    for path in sorted(geometry.rglob("hgt_02.rdr")):
        path.unlink()  # e.g. removed under keep: products
    again = snakemake(tmp_path, config, str(workspace / "work" / PAIRS[0] / "merged" /
                      "filt_topophase.unw.geo"), "--cores", "2", "--forcerun", "isce_topo",
                      env=env_for())  # fmt: skip
    assert again.returncode == 0, output_of(again)
    log = (workspace / "logs" / "isce_topo" / f"{PAIRS[0]}.log").read_text()
    assert "computes its own topo: the geometry files are gone (geom_reference/IW2/hgt_02.rdr" in log
    assert "Running step topo" in log


# --- kill and resume ---------------------------------------------------------------------------

HOLD_PYTHON = """#!/bin/sh
# python3 for the double's #! line; the state writer (python3 -c ...) waits while a flag exists
case "$2" in *"def topo_items"*) held=yes ;; *) held=no ;; esac
if [ "$1" = "-c" ] && [ "$held" = yes ] && [ -e "$DINSAR_TEST_HOLD_FLAG" ]; then
    echo "holding the state writer (pid $$)" > "$DINSAR_TEST_HOLD_FLAG.note"
    while [ -e "$DINSAR_TEST_HOLD_FLAG" ]; do sleep 0.1; done
fi
exec {python} "$@"
"""


def killed_then_resumed(tmp_path: Path, searched: Path, inventory: Path, hold: dict[str, str],
                        held: Callable[[Path], bool], flag: Path | None = None) -> Path:  # fmt: skip
    """Run until ``held(workspace)`` (a job waits), SIGKILL the whole tree, run again."""
    workspace, config = config_for(tmp_path, searched, inventory)
    path = write_config(tmp_path, config)
    command = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "2",
               *targets(workspace, "all"), "--configfile", str(path)]  # fmt: skip
    from harness import environment

    env = {**environment.clean(), **env_for(**hold)}
    with open(tmp_path / "first.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,  # noqa: S603
                                   start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None and not held(workspace):
            time.sleep(0.1)
        holding = process.poll() is None and held(workspace)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert holding, (tmp_path / "first.log").read_text()[-3000:]
    if flag is not None:
        flag.unlink()
    again = snakemake(tmp_path, config, "--cores", "2", *targets(workspace, "all"), env=env_for())
    assert again.returncode == 0, output_of(again)
    return workspace


@pytest.mark.slow
def test_kill_during_the_geometry_job_then_resume(tmp_path: Path, searched: Path, inventory: Path,
                                                  uninterrupted: dict) -> None:  # fmt: skip
    """The double holds in topo, which only the geometry jobs run: killed there, the rerun
    makes the geometry again and every product equals the uninterrupted run's."""

    def held(workspace: Path) -> bool:
        logs = (workspace / "logs" / "isce_geometry").glob("*.log")
        return any("holding in step topo" in p.read_text(errors="replace") for p in logs)

    workspace = killed_then_resumed(tmp_path, searched, inventory,
                                    {"DINSAR_DOUBLE_HOLD_AT": "topo"}, held)  # fmt: skip
    assert products(workspace) == uninterrupted["products"]
    assert not list(workspace.rglob("*.tmp"))  # no partial file left


@pytest.mark.slow
def test_kill_while_a_pair_takes_the_geometry_then_resume(tmp_path: Path, searched: Path,
                                                         inventory: Path, uninterrupted: dict) -> None:  # fmt: skip
    """Killed while a pair writes topsApp's state after taking the files (its geom_reference
    linked, PICKLE/topo not yet written): the rerun finishes with identical products."""
    shim = tmp_path / "shim"
    shim.mkdir()
    python = shim / "python3"
    python.write_text(HOLD_PYTHON.format(python=sys.executable))
    python.chmod(0o755)
    flag = tmp_path / "hold"
    flag.write_text("")
    note = tmp_path / "hold.note"
    workspace = killed_then_resumed(
        tmp_path, searched, inventory,
        {"DINSAR_TEST_HOLD_FLAG": str(flag), "PATH": f"{shim}{os.pathsep}{env_for()['PATH']}"},
        lambda _workspace: note.exists(), flag,
    )  # fmt: skip
    taken = workspace / "work" / PAIRS[0] / "geom_reference"
    assert taken.is_dir()
    assert products(workspace) == uninterrupted["products"]
    assert not list(workspace.rglob("*.tmp"))
