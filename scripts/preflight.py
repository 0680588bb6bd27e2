"""Rule `preflight`: ISCE2 usable for these scenes, free disk for the SLCs still to download,
then one Earthdata login check; all before the first byte is downloaded."""

import logging
from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.atomic import write_json
from dinsar.config import validate_config
from dinsar.credentials import earthdata_session
from dinsar.disk import GB
from dinsar.download import preflight
from dinsar.errors import DinsarError
from dinsar.stack import Stack

log = logging.getLogger("dinsar.preflight")


def main(snakemake):
    cfg = validate_config(snakemake.config)
    isce = snakemake.params.isce
    if isce["problem"]:
        if isce["required"]:
            raise DinsarError(isce["problem"])
        log.warning("staging anyway: %s", isce["problem"])
    inventory = snakemake.params.inventory
    stack = Stack.load(inventory["scenes"], inventory["dates"], cfg)
    targets = stack.download_targets(cfg)
    kind = "bursts" if stack.burst_mode else "slc"
    report = preflight(
        targets,
        cfg.cache_dir(kind),
        int(cfg.download.disk_margin_gb * GB),
        lambda: earthdata_session(cfg.download.edl_host, cfg.network.ca_bundle),
        cfg.network,
        kind,
    )
    report["missing"] = list(snakemake.params.missing)  # what this check was made for
    report["isce"] = isce
    out = Path(snakemake.output.report)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, report)


if "snakemake" not in globals():
    snakemake = mock_snakemake("preflight", configfiles=["config/roi.yaml"])
run(main, snakemake)
