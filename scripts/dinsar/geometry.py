"""Topo once per reference date: the geometry job, and the pairs that take its files.

topsApp's ``topo`` maps every pixel of the reference bursts onto the DEM (``geom_reference/
IW<n>/{lat,lon,hgt,los}_NN.rdr``) and is the largest step of a pair. With ``isce.reuse_geometry``
the rule ``isce_geometry`` computes it once per reference date, and each pair of that date
hard-links the files instead of running topo (rule ``isce_topo``, dinsar.isce_step).

What is safe, from ISCE2 2.6.5's source and real runs (issue 15, step 1):

* Inputs of topo (``TopsProc/runTopo.py``, CPU path): per reference burst its geometry from
  ``<reference>/IW<n>.xml`` (range pixel size, azimuth interval, wavelength, orbit, lines,
  samples, sensing start, starting range), the DEM (``verifyDEM``: demFilename), and which
  bursts: ``numberOfCommonBursts`` and ``commonBurstStartReferenceIndex`` from computeBaselines.
  Each burst is computed alone at 1 x 1 looks (the looks do not matter) and written as
  ``lat_NN.rdr`` etc., NN = its index in the cropped reference product + 1. The secondary
  enters only through which bursts are common; the region of interest through the reference
  crop (preprocess crops the reference by the ROI alone, never by the secondary).
* So a burst's files are the same for every pair whose ``<reference>/IW<n>.xml`` and DEM are
  the same. Real runs (the shared real stack, 2026-12-05): pairs 20210401_20210413 and
  20210401_20210425 wrote byte-identical ``geom_reference/`` (24 files, 416 MB) and
  ``reference/IW1.xml``; a run of the reference date paired with itself (the geometry job)
  wrote the same 24 files byte for byte.
* What topo adds to the saved state (``Application.dumpPickleObj``, renderer xml):
  ``PICKLE/topo.xml`` is the TopsProc object, which topo does not change: it was byte-identical
  to ``PICKLE/verifyDEM.xml`` in every run. ``PICKLE/topo`` is the pickled processing document
  (a log no later step reads): verifyDEM's plus a ``topo`` node (the DEM used, per swath the
  common bursts, per burst lines, pixels, bounding box; the overall box). Between the two
  pairs it differed in 1 byte, the secondary's date that preprocess recorded, and so did
  ``PICKLE/verifyDEM``; their ``topo`` nodes were equal, and equal to the geometry run's.
* The GPU path (``useGPU`` with a GPU build) writes one mosaic and per-burst VRTs instead: not
  reused (the pair computes its own topo).

Hence the design: the geometry job runs topsApp startup..topo with the reference date as both
reference and secondary, so its common bursts are all the reference bursts of the ROI crop:
the union of what any of its pairs can share. A pair then takes the files of its own common
bursts (``reuse_problem`` says when it cannot, and the pair computes its own topo, saying why
in its log), writes ``PICKLE/topo.xml`` as a copy of its ``PICKLE/verifyDEM.xml`` and
``PICKLE/topo`` with ISCE's own interpreter (dinsar/isce_topo_state.py), and goes on from
subsetoverlaps as if it had run topo. On the real stack (5 pairs, 3 reference dates) every
product file and ISCE's final processing document came out the same with and without reuse
(tests/test_real_topsapp.py), and ISCE's CPU fell to 0.81 of one topo per pair (0.76 at
``sequential: 3``; benchmarks/README.md).
With a secondary whose slice starts a burst later (tests/test_real_geometry_shift.py: bursts
5-6 against the reference's 4-5) the pair's one common burst is the geometry's second: the
``*_02`` files computed with 2 common bursts were byte-identical to the pair's own 1-burst topo,
and so were its products; only the cost differs, a lone such pair paying the whole crop's topo
(51.8 s CPU here against 21.2 s for its own).

A pair whose topo ran with the geometry as input records it (``geometry.json``); the rules
keep that input for it, and never add it to a pair whose topo ran without one, so switching
the setting on reruns no finished pair.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .atomic import atomic_dir, atomic_path, write_bytes
from .isce_image import IsceImageError, component_properties, read_xml_properties
from .isce_run import CLEANUP_RECORD, IsceRunError, StepGroup, pickle_files
from .records import PairRecord
from .topsapp import TopsApp, interpreter

log = logging.getLogger(__name__)

# The geometry job: topsApp startup..topo on the reference date paired with itself.
GEOMETRY = StepGroup("geometry", "startup", "topo", threaded=True)
GEOMETRY_DIR = "geom_reference"  # TopsProc's geometryDirname (its default; topsApp.xml keeps it)
KINDS = ("lat", "lon", "hgt", "los")
SIDECARS = ("", ".xml", ".vrt")
_STATE_HELPER = Path(__file__).with_name("isce_topo_state.py")
# in a pair's folder: its topo job had the geometry job as input (taken or not, and why)
TAKEN_RECORD = "geometry.json"

Bursts = dict[int, tuple[int, int]]  # swath -> (first common reference burst index, count)


def expected_cpu_ratio(pairs: int, references: int, seconds_per_group: Mapping[str, float]) -> float:
    """The model: ISCE CPU of a stack with reuse over that with one topo per pair. Each pair
    runs every group but topo; each reference date's geometry job runs preprocess and topo:
    about ``1 - s (1 - references / pairs)`` with s the topo share of a pair's CPU."""
    pair = sum(seconds_per_group.values())
    geometry = seconds_per_group["preprocess"] + seconds_per_group["topo"]
    return (pairs * (pair - seconds_per_group["topo"]) + references * geometry) / (pairs * pair)


def common_bursts(state_xml: str | Path) -> Bursts:
    """Per swath with common bursts, (start index, count) from ISCE's state (PICKLE/<step>.xml)."""
    props = read_xml_properties(state_xml)
    counts = props.get("numberofcommonbursts")
    starts = props.get("commonburststartreferenceindex")
    if not isinstance(counts, list) or not isinstance(starts, list):
        raise IsceImageError(f"{state_xml}: no common bursts recorded (computeBaselines did not run)")
    return {n + 1: (int(starts[n]), int(counts[n])) for n in range(len(counts)) if counts[n] > 0}


def burst_files(swath: int, bursts: range) -> list[str]:
    """The files topo writes for these reference bursts (0-based indices), relative to
    geom_reference/."""
    return [f"IW{swath}/{kind}_{index + 1:02d}.rdr{ext}"
            for index in bursts for kind in KINDS for ext in SIDECARS]  # fmt: skip


def reuse_problem(workdir: str | Path, geometry_dir: str | Path, info: PairRecord,
                  topsapp: TopsApp) -> str | None:  # fmt: skip
    """Why this pair cannot take the geometry job's files (None: it can)."""
    workdir, geometry_dir = Path(workdir), Path(geometry_dir)
    if interpreter(topsapp) is None:
        return (f"topsApp runs as a command ({topsapp.describe()}): topo's saved state can only "
                "be written by ISCE's own Python interpreter")  # fmt: skip
    if not (geometry_dir / "PICKLE" / "topo").is_file():
        if (geometry_dir / CLEANUP_RECORD).is_file():  # its files went with the state
            return (f"the geometry files are gone ({geometry_dir / CLEANUP_RECORD}: removed with "
                    "its state once its pairs were geocoded, keep: products)")  # fmt: skip
        return f"the geometry job's state {geometry_dir / 'PICKLE' / 'topo'} is missing"
    mine, theirs = (component_properties(d / "topsApp.xml") for d in (workdir, geometry_dir))
    for key in ("topsinsar.demfilename", "topsinsar.usegpu"):
        if mine.get(key) != theirs.get(key):
            return f"topsApp.xml differs in {key.split('.')[1]} ({mine.get(key)} / {theirs.get(key)})"
    if (geometry_dir / GEOMETRY_DIR / "lat.rdr").exists():
        return "the geometry job used ISCE's GPU topo (one mosaic, per-burst VRTs)"
    try:
        pair, geometry = (common_bursts(d / pickle_files(s)[1])
                          for d, s in ((workdir, "verifyDEM"), (geometry_dir, "topo")))  # fmt: skip
    except IsceImageError as exc:
        return str(exc)
    reference = info.output_dirs["reference"]
    for swath, (start, count) in sorted(pair.items()):
        product = f"{reference}/IW{swath}.xml"
        mine_xml, theirs_xml = workdir / product, geometry_dir / product
        if not theirs_xml.is_file() or mine_xml.read_bytes() != theirs_xml.read_bytes():
            return f"its reference bursts ({product}) differ from the geometry job's"
        have = geometry.get(swath, (0, 0))
        if start < have[0] or start + count > have[0] + have[1]:
            return (f"it needs bursts {start + 1}..{start + count} of IW{swath}, the geometry "
                    f"holds {have[0] + 1}..{have[0] + have[1]}")
        missing = [f for f in burst_files(swath, range(start, start + count))
                   if not (geometry_dir / GEOMETRY_DIR / f).is_file()]  # fmt: skip
        if missing:
            return (f"the geometry files are gone ({GEOMETRY_DIR}/{missing[0]}: removed once its "
                    "pairs were geocoded, keep: products)")
    return None


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copy2(source, target)  # another file system, or no hard links there


def take_geometry(workdir: str | Path, geometry_dir: str | Path, topsapp: TopsApp,
                  env: Mapping[str, str], info: PairRecord) -> dict[str, Any]:  # fmt: skip
    """topo for a pair from the geometry job: its bursts' files (hard links, else copies) and
    topsApp's state after topo. Returns the usage record of the step (the state writer's
    exact CPU, as isce_run.run_topsapp's)."""
    # absolute: the state writer runs in the pair's folder (a workspace may be given relative)
    workdir, geometry_dir = Path(workdir).absolute(), Path(geometry_dir).absolute()
    started = time.monotonic()
    pair = common_bursts(workdir / pickle_files("verifyDEM")[1])
    geometry = common_bursts(geometry_dir / pickle_files("topo")[1])
    count = 0
    with atomic_dir(workdir / GEOMETRY_DIR) as folder:  # a killed job leaves no half folder
        for swath, (start, n) in sorted(pair.items()):
            (folder / f"IW{swath}").mkdir()
            for rel in burst_files(swath, range(start, start + n)):
                _link(geometry_dir / GEOMETRY_DIR / rel, folder / rel)
                count += 1
    spec = {"pair": {str(s): list(v) for s, v in pair.items()},
            "geometry": {str(s): list(v) for s, v in geometry.items()}}  # fmt: skip
    python = interpreter(topsapp)
    assert python is not None  # reuse_problem said so
    state, xml = (workdir / p for p in pickle_files("topo"))
    with atomic_path(state) as tmp, tempfile.TemporaryFile("w+") as errors:
        command = [*python, "-c", _STATE_HELPER.read_text(), str(workdir), str(geometry_dir),
                   json.dumps(spec), str(tmp), str(Path(topsapp.command[-1]).parent)]  # fmt: skip
        process = subprocess.Popen(command, cwd=workdir, env=topsapp.environment(env, 1),  # noqa: S603 - argument list, no shell
                                   stdout=errors, stderr=subprocess.STDOUT)  # fmt: skip
        _pid, status, usage = os.wait4(process.pid, 0)  # exact CPU, as isce_run.run_topsapp
        code = process.returncode = os.waitstatus_to_exitcode(status)
        if code != 0 or not tmp.is_file():
            errors.seek(0)
            raise IsceRunError(
                f"{workdir}: writing topsApp's state after topo failed (exit {code}): "
                f"{errors.read().strip()[-500:]}"
            )
    write_bytes(xml, (workdir / pickle_files("verifyDEM")[1]).read_bytes())
    log.info("%s: topo taken from %s (%d files of bursts %s, hard links), not computed again",
             workdir, geometry_dir, count, {f"IW{s}": f"{a + 1}..{a + n}" for s, (a, n) in pair.items()})  # fmt: skip
    return {"group": "topo", "wall_s": round(time.monotonic() - started, 3),
            "user_s": round(usage.ru_utime, 3), "system_s": round(usage.ru_stime, 3),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "max_rss_mb": round(usage.ru_maxrss / 1024, 1), "threads": 1, "exit_code": 0,
            "reused": True, "geometry": str(geometry_dir), "files": count}  # fmt: skip
