"""Rule `mintpy_handoff_pair`: beside a pair's products, the files MintPy's hyp3 loader reads."""

import logging
from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.products.metadata import read_metadata
from dinsar.products.mintpy_handoff import description_from_record, write_mintpy_handoff
from dinsar.records import DemManifest

log = logging.getLogger("dinsar.mintpy_handoff_pair")


def main(snakemake):
    product_dir = Path(snakemake.input.metadata).parent
    record = read_metadata(product_dir).get("mintpy")
    description = description_from_record(record, str(snakemake.input.metadata))
    dem = DemManifest.read(snakemake.input.dem)
    write_mintpy_handoff(
        product_dir,
        description.radar,
        dem.geocode_dem,
        swath=description.swath,
        polarization=description.polarization,
        out_dir=snakemake.output[0],
    )


if "snakemake" not in globals():
    snakemake = mock_snakemake("mintpy_handoff_pair", configfiles=["config/roi.yaml"], pair="20251220_20260101")
run(main, snakemake)
