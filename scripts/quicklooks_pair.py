"""Rule `quicklooks_pair`: quicklook PNGs of one pair's products (read from COG overviews)."""

from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.products import PairInfo, read_metadata
from dinsar.quicklooks import make_quicklooks
from dinsar.roi import parse_roi


def main(snakemake):
    product_dir = Path(snakemake.input.metadata).parent
    info = PairInfo(**snakemake.params.pair)
    info.orbits = read_metadata(product_dir)["pair"].get("orbits", {})
    outputs = {kind: snakemake.output[kind] for kind in snakemake.output.keys()}
    make_quicklooks(product_dir, outputs, roi=parse_roi(snakemake.params.roi), info=info)


if "snakemake" not in globals():
    snakemake = mock_snakemake("quicklooks_pair", configfiles=["config/roi.yaml"], pair="20251220_20260101")
run(main, snakemake)
