"""Rule `isce_cleanup` (keep: products): delete a geocoded pair's ISCE intermediates.

Keeps merged/*.geo with sidecars, dem.crop, ISCE's XML metadata, the logs and the geocode
PICKLE; writes a record of what was freed.
"""

import datetime as dt

from _helpers import mock_snakemake, run
from dinsar.atomic import write_json
from dinsar.errors import DinsarError
from dinsar.isce_run import cleanup


def main(snakemake):
    if snakemake.params.keep != "products":
        raise DinsarError(
            f"keep is {snakemake.params.keep!r}, so intermediates stay; set keep: products to "
            "delete them"
        )
    summary = cleanup(snakemake.params.workdir, snakemake.params.geo)
    summary["time"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    write_json(snakemake.output[0], summary)


if "snakemake" not in globals():
    snakemake = mock_snakemake(
        "isce_cleanup", configfiles=["config/roi.yaml"], pair="20251220_20260101"
    )
run(main, snakemake)
