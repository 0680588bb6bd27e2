"""Rule `processing_report`: the report's table of parameters, orbit type per date and pairs."""

from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.atomic import write_text
from dinsar.products import read_metadata, read_orbit_types
from dinsar.quicklooks import processing_html, read_stack_table
from dinsar.records import DemManifest


def main(snakemake):
    orbits = read_orbit_types(snakemake.input.orbits)
    pairs = read_stack_table(snakemake.input.summary)
    dems = {m.track: m for m in map(DemManifest.read, snakemake.input.dems)}
    versions = [
        read_metadata(Path(m).parent).get("processing", {}).get("isce2_version") or "unknown"
        for m in snakemake.input.metadata
    ]
    write_text(snakemake.output[0],
               processing_html(snakemake.params.settings, orbits, pairs, dems, versions))


if "snakemake" not in globals():
    snakemake = mock_snakemake("processing_report", configfiles=["config/roi.yaml"])
run(main, snakemake)
