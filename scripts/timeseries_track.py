"""Rule `timeseries_track`: MintPy inverts a track's network; its results become our products."""

import logging
from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.config import Timeseries
from dinsar.timeseries import run_timeseries

log = logging.getLogger("dinsar.timeseries_track")


def main(snakemake):
    handoffs = {Path(d).parent.name: Path(d) for d in snakemake.input.handoffs}
    settings = Timeseries(**snakemake.params.settings)
    run_timeseries(
        handoffs,
        Path(snakemake.output.velocity).parent,
        Path(snakemake.params.work_dir),
        settings,
        track=snakemake.wildcards.track,
        # the fastest point and the stable reference: pixels the inversion fits well
        coherence_threshold=settings.min_temporal_coherence,
        threads=snakemake.threads,
    )


if "snakemake" not in globals():
    snakemake = mock_snakemake("timeseries_track", configfiles=["config/roi.yaml"], track="168_DESC")
run(main, snakemake)
