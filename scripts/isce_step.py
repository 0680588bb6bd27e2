"""Rules `isce_<group>`: one topsApp step group in the pair's work directory.

Finds topsApp.py (isce.topsapp, PATH or $ISCE_HOME/applications), checks that the previous
group left its PICKLE state (and, before preprocess, the zips, the orbits and the free disk
the pair's intermediates need: isce.min_free_gb), runs
`topsApp.py topsApp.xml --start=X --end=Y` with OMP_NUM_THREADS = threads and ISCE's output in
the rule's log, then checks what the group must have written (ISCE often only prints errors).
"""

import os
from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.isce_run import (
    check_after,
    check_pair_disk,
    check_resume_state,
    fresh_start,
    prerun_checks,
    read_pair_info,
    resolve_topsapp,
    run_topsapp,
    step_command,
)


def main(snakemake):
    group = snakemake.params.group
    workdir = Path(snakemake.params.workdir)
    info = read_pair_info(workdir)
    command, env = resolve_topsapp(snakemake.params.topsapp, os.environ)
    check_resume_state(workdir, group)
    if group == "preprocess":
        prerun_checks(workdir, margin_s=snakemake.params.margin_seconds)
        fresh_start(workdir, info)
        # from the config, not params: changing the figure must not rerun finished pairs
        check_pair_disk(workdir, info, snakemake.config.get("isce", {}).get("min_free_gb"))
    log_file = snakemake.log[0] if len(snakemake.log) else None
    run_topsapp(step_command(command, group), workdir, env, log_file, snakemake.threads)
    check_after(workdir, group, info)


if "snakemake" not in globals():
    snakemake = mock_snakemake(
        "isce_topo", configfiles=["config/roi.yaml"], pair="20251220_20260101"
    )
run(main, snakemake)
