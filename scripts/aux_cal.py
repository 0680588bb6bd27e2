"""Rule `aux_cal`: the AUX_CAL folders for a date whose scenes were processed with IPF 002.36."""


import requests

from _helpers import mock_snakemake, run
from dinsar.aux_cal import fetch_aux_cal
from dinsar.config import validate_config
from dinsar.net import pin_ca_bundle
from dinsar.records import AuxCalManifest


def main(snakemake):
    cfg = validate_config(snakemake.config)
    session = pin_ca_bundle(requests.Session(), cfg.network.ca_bundle)
    directory = fetch_aux_cal(
        snakemake.params.platforms,
        cfg.cache_dir("orbits") / "aux_cal",
        session,
        cfg.orbits.aux_cal_url,
        cfg.network,
    )
    AuxCalManifest(date=snakemake.wildcards.date, directory=str(directory.resolve())).write(
        snakemake.output.manifest
    )


if "snakemake" not in globals():
    snakemake = mock_snakemake("aux_cal", configfiles=["config/roi.yaml"], date="20251220")
run(main, snakemake)
