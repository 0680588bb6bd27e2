"""Rule `isce_cleanup` (keep: products): delete a geocoded pair's ISCE intermediates.

Keeps merged/*.geo with sidecars, dem.crop, ISCE's XML metadata, the logs and the geocode
PICKLE; writes a record of what was freed.
"""

import datetime as dt
import json
from pathlib import Path

from _helpers import mock_snakemake, run
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
    Path(snakemake.output[0]).write_text(json.dumps(summary, indent=1))


if "snakemake" not in globals():
    snakemake = mock_snakemake(
        "isce_cleanup", configfiles=["config/roi.yaml"], pair="20251220_20260101"
    )
run(main, snakemake)
