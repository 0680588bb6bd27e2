"""Rule `export_pair`: one pair's topsApp geocoded output -> COG products + metadata.json."""

import logging
from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.config import validate_config
from dinsar.dem import track_grid_for
from dinsar.products import PairInfo, ProductError, export_pair, read_orbit_types
from dinsar.records import DemManifest

log = logging.getLogger("dinsar.export_pair")


def main(snakemake):
    info = PairInfo(**snakemake.params.pair)
    info.orbits = read_orbit_types(snakemake.input.orbits)
    outdir = Path(snakemake.output.metadata).parent
    dem = DemManifest.read(snakemake.input.dem)
    result = export_pair(
        snakemake.params.workdir,
        outdir,
        pair_info=info,
        reference_point=snakemake.params.reference_point,
        coherence_threshold=snakemake.params.coherence_threshold,
        threads=snakemake.threads,
        dem=dem,
        # every pair of the track on one grid (the one topsApp.xml's geocode box asked for)
        track_grid=track_grid_for(dem, validate_config(snakemake.config)),
    )
    missing = [f for f in snakemake.output if Path(f).name not in result.files]
    if missing:
        raise ProductError(
            f"topsApp's output for {info.pair} lacks what {', '.join(Path(m).name for m in missing)} "
            "needs; check isce.geocode_list and the geocode step's log"
        )


if "snakemake" not in globals():
    snakemake = mock_snakemake("export_pair", configfiles=["config/roi.yaml"], pair="20251220_20260101")
run(main, snakemake)
