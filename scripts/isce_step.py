"""Rules `isce_<group>`: one topsApp step group in the pair's work directory.

Finds topsApp.py (isce.topsapp, the project's build, PATH or $ISCE_HOME/applications), checks that the previous
group left its PICKLE state (and, before preprocess, the zips, the orbits and the free disk
the pair's intermediates need: isce.min_free_gb), runs
`topsApp.py topsApp.xml --start=X --end=Y` with OMP_NUM_THREADS = threads and ISCE's output in
the rule's log, then checks what the group must have written (ISCE often only prints errors). The topsApp
process's exact CPU time and peak memory go to the group's usage record. isce_topo with
isce.reuse_geometry takes the reference date's geometry (dinsar.geometry) instead of running
topo, unless the pair cannot (its log says why).
"""

import logging
import os
from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.atomic import write_json
from dinsar.geometry import TAKEN_RECORD, reuse_problem, take_geometry
from dinsar.isce_run import (
    PAIR_INFO,
    check_after,
    check_pair_disk,
    check_resume_state,
    fresh_start,
    prerun_checks,
    run_topsapp,
)
from dinsar.records import PairRecord
from dinsar.topsapp import find_topsapp

log = logging.getLogger("dinsar.isce_step")


def main(snakemake):
    group = snakemake.params.group
    workdir = Path(snakemake.params.workdir)
    info = PairRecord.read(workdir / PAIR_INFO)
    topsapp = find_topsapp(snakemake.params.topsapp, os.environ, snakemake.params.probe_cache,
                           use_builds=snakemake.params.use_builds)  # fmt: skip
    check_resume_state(workdir, group)
    if group == "preprocess":
        prerun_checks(workdir, margin_s=snakemake.params.margin_seconds)
        fresh_start(workdir, info)
        # from the config, not params: changing the figure must not rerun finished pairs
        check_pair_disk(workdir, info, snakemake.config.get("isce", {}).get("min_free_gb"))
    log_file = snakemake.log[0] if len(snakemake.log) else None
    # isce.reuse_geometry: topo from the reference date's geometry job, unless it cannot be
    taken = snakemake.input.get("geometry")  # <geometry job>/PICKLE/topo.xml
    geometry = Path(taken).parent.parent if taken else None
    problem = geometry and reuse_problem(workdir, geometry, info, topsapp)
    if geometry and not problem:
        usage = take_geometry(workdir, geometry, topsapp, os.environ, info)
    else:
        if problem:
            log.warning("%s computes its own topo: %s", info.pair, problem)
        usage = run_topsapp(topsapp, group, workdir, os.environ, log_file, snakemake.threads)
        usage["reused"] = False
    if geometry:  # the rules keep the geometry as this pair's input from now on
        write_json(workdir / TAKEN_RECORD, {"geometry": str(geometry), "reused": not problem,
                                            "why_not": problem or None})  # fmt: skip
    usage.update(pair=info.pair, bursts=info.bursts, isce2=topsapp.version)
    if log_file:
        # exact CPU and memory of the topsApp process (Snakemake's benchmark files only sample)
        write_json(Path(log_file).with_suffix(".usage.json"), usage)
    check_after(workdir, group, info)


if "snakemake" not in globals():
    snakemake = mock_snakemake(
        "isce_topo", configfiles=["config/roi.yaml"], pair="20251220_20260101"
    )
run(main, snakemake)
