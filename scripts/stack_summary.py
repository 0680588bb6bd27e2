"""Rule `stack_summary`: network by coherence, mean coherence per pair, displacement grid, table."""

from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.quicklooks import (
    load_stack_pairs,
    plot_coherence_network,
    plot_displacement_grid,
    plot_mean_coherence,
    write_stack_table,
)
from dinsar.roi import parse_roi


def main(snakemake):
    directories = [Path(m).parent for m in snakemake.input.metadata]
    pairs = load_stack_pairs(directories, snakemake.input.pairs)
    write_stack_table(pairs, snakemake.output.table)
    plot_coherence_network(pairs, snakemake.output.network)
    plot_mean_coherence(pairs, snakemake.output.coherence, snakemake.params.coherence_threshold)
    if "grid" in snakemake.output.keys():
        plot_displacement_grid(pairs, snakemake.output.grid, roi=parse_roi(snakemake.params.roi))


if "snakemake" not in globals():
    snakemake = mock_snakemake("stack_summary", configfiles=["config/roi.yaml"])
run(main, snakemake)
