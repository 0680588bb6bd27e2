"""Rule `processing_report`: the report's table of parameters, orbit type per date and pairs."""

import json
from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.atomic import write_text
from dinsar.products import read_orbit_types
from dinsar.quicklooks import processing_html, read_stack_table


def main(snakemake):
    orbits = read_orbit_types(snakemake.input.orbits)
    pairs = read_stack_table(snakemake.input.summary)
    dems = {}
    for path in snakemake.input.dems:
        manifest = json.loads(Path(path).read_text())
        dems[manifest["track"]] = manifest
    versions = [
        json.loads(Path(m).read_text()).get("processing", {}).get("isce2_version") or "unknown"
        for m in snakemake.input.metadata
    ]
    write_text(snakemake.output[0],
               processing_html(snakemake.params.settings, orbits, pairs, dems, versions))


if "snakemake" not in globals():
    snakemake = mock_snakemake("processing_report", configfiles=["config/roi.yaml"])
run(main, snakemake)
