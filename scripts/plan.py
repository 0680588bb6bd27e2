"""Rule `plan`: scenes and pairs tables, network and coverage figures, and a printed summary."""

import logging
import sys
from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.atomic import write_text
from dinsar.burst_set import cache_folder
from dinsar.config import validate_config
from dinsar.dem import planned_track_grid
from dinsar.pairs import date_baselines, write_pairs_table
from dinsar.plan import (
    bursts_per_pair,
    estimate_cpu,
    estimate_disk,
    grid_lines,
    summary_text,
    timeseries_lines,
    write_scenes_table,
)
from dinsar.plots import plot_coverage, plot_network
from dinsar.roi import parse_roi
from dinsar.stack import Stack

log = logging.getLogger("dinsar.plan")


def cached_bytes(cfg, stack):
    done = 0
    for granule in stack.granules:
        scene = stack.scenes_by_granule[granule]
        path = cfg.cache_dir(cache_folder(scene)) / scene.filename
        if path.is_file():
            done += path.stat().st_size
    return done


def main(snakemake):
    cfg = validate_config(snakemake.config)
    inventory = snakemake.params.inventory
    stack = Stack.load(inventory["scenes"], inventory["dates"], cfg)
    pairs = stack.pairs
    # before any output: with timeseries.enabled: true a network MintPy cannot invert stops here
    timeseries = timeseries_lines(stack, cfg.timeseries.enabled)
    roi = parse_roi(cfg.roi)
    write_scenes_table(stack, snakemake.output.scenes)
    write_pairs_table(pairs, snakemake.output.pairs)
    bperp = {
        track: date_baselines([a for a in stack.used if a.track == track]) for track in stack.tracks
    }
    dropped = [a for a in stack.acquisitions if not a.used]
    plot_network(pairs, bperp, snakemake.output.network, dropped)
    plot_coverage(roi, stack.acquisitions, snakemake.output.coverage, cfg.search.min_roi_coverage)
    disk = estimate_disk(stack, roi, cfg.dem.buffer)
    text = summary_text(
        stack,
        disk,
        cfg.workspace,
        concurrent_pairs=1,
        keep=cfg.keep,
        cached_bytes=cached_bytes(cfg, stack),
        isce=snakemake.params.isce,
        cpu=estimate_cpu(
            len(pairs),
            bursts_per_pair(stack, roi),
            cfg.isce.range_looks,
            cfg.isce.azimuth_looks,
            references=len(stack.pairs_by_reference) if cfg.isce.reuse_geometry else None,
        ),
        grid=grid_lines(planned_track_grid(cfg.dem, cfg), cfg.isce.geocode_margin),
        timeseries=timeseries,
    )
    write_text(snakemake.output.summary, text)
    log.info("plan written to %s", Path(snakemake.output.summary).parent)
    print(text, file=sys.stderr)


if "snakemake" not in globals():
    snakemake = mock_snakemake("plan", configfiles=["config/roi.yaml"])
run(main, snakemake)
