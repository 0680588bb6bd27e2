"""Rule `isce_geometry`: topo once for a reference date (isce.reuse_geometry).

topsApp startup..topo in work/geometry/<date>/ with the date as its own secondary, so that its
geom_reference/ holds every reference burst of the ROI crop; the pairs of that date take these
files instead of computing them (dinsar.geometry says why this is sound). The same checks as
a pair's preprocess before, and as its topo after; the exact CPU time goes to the usage record.
"""

import os
from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.atomic import write_json
from dinsar.geometry import GEOMETRY
from dinsar.isce_run import (
    PAIR_INFO,
    check_after,
    check_pair_disk,
    fresh_start,
    prerun_checks,
    run_topsapp,
)
from dinsar.records import PairRecord
from dinsar.topsapp import find_topsapp


def main(snakemake):
    workdir = Path(snakemake.params.workdir)
    info = PairRecord.read(workdir / PAIR_INFO)
    topsapp = find_topsapp(snakemake.params.topsapp, os.environ, snakemake.params.probe_cache,
                           use_builds=snakemake.params.use_builds)  # fmt: skip
    prerun_checks(workdir, margin_s=snakemake.params.margin_seconds)
    fresh_start(workdir, info)
    check_pair_disk(workdir, info, snakemake.config.get("isce", {}).get("min_free_gb"))
    log_file = snakemake.log[0] if len(snakemake.log) else None
    usage = run_topsapp(topsapp, GEOMETRY, workdir, os.environ, log_file, snakemake.threads)
    usage.update(pair=info.pair, bursts=info.bursts, isce2=topsapp.version)
    if log_file:
        write_json(Path(log_file).with_suffix(".usage.json"), usage)
    check_after(workdir, "topo", info)


if "snakemake" not in globals():
    snakemake = mock_snakemake("isce_geometry", configfiles=["config/roi.yaml"], date="20251220")
run(main, snakemake)
