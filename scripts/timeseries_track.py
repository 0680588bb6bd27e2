"""Rule `timeseries_track`: MintPy inverts a track's network; its results become our products."""

import logging
from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.config import Timeseries
from dinsar.timeseries import run_timeseries

log = logging.getLogger("dinsar.timeseries_track")


def main(snakemake):
    handoffs = {Path(d).parent.name: Path(d) for d in snakemake.input.handoffs}
    run_timeseries(
        handoffs,
        Path(snakemake.output.velocity).parent,
        Path(snakemake.params.work_dir),
        Timeseries(**snakemake.params.settings),
        track=snakemake.wildcards.track,
        coherence_threshold=snakemake.params.coherence_threshold,
    )


if "snakemake" not in globals():
    snakemake = mock_snakemake("timeseries_track", configfiles=["config/roi.yaml"], track="168_DESC")
run(main, snakemake)
