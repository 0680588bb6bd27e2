"""Rule `burst_safe`: a date's SAFE zip assembled with burst2safe from its bursts in the cache."""

from pathlib import Path

from _helpers import mock_snakemake, run
from dinsar.burst_staging import assemble_safe
from dinsar.config import validate_config
from dinsar.stack import Stack


def main(snakemake):
    cfg = validate_config(snakemake.config)
    inventory = snakemake.params.inventory
    stack = Stack.load(inventory["scenes"], inventory["dates"], cfg)
    acquisition = stack.acquisition_of_safe(snakemake.wildcards.safe)
    assemble_safe(acquisition.scenes, cfg.cache_dir("bursts"), Path(snakemake.output.zip))


if "snakemake" not in globals():
    snakemake = mock_snakemake(
        "burst_safe",
        configfiles=["config/roi.yaml"],
        safe="174_DESC_20180628_174_IW3_372326-372326_VV",
    )
run(main, snakemake)
