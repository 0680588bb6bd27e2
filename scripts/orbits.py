"""Rule `orbits`: the orbit file of every platform acquired on one date, and its manifest."""


import requests

from _helpers import mock_snakemake, run
from dinsar.config import validate_config
from dinsar.net import pin_ca_bundle
from dinsar.orbits import (
    cdse_session,
    find_orbit,
    request_from_params,
)
from dinsar.records import OrbitManifest


def main(snakemake):
    cfg = validate_config(snakemake.config)
    wanted = [request_from_params(r) for r in snakemake.params.orbits["requests"]]
    session = pin_ca_bundle(requests.Session(), cfg.network.ca_bundle)
    cdse = None
    if cfg.orbits.source == "cdse":
        cdse = lambda: cdse_session(cfg.network.ca_bundle)  # noqa: E731 - log in only if needed
    entries = [
        find_orbit(request, cfg.orbits, cfg.cache_dir("orbits"), cfg.network, session, cdse)
        for request in wanted
    ]
    OrbitManifest(date=snakemake.wildcards.date, orbits=entries).write(snakemake.output.manifest)


if "snakemake" not in globals():
    snakemake = mock_snakemake("orbits", configfiles=["config/roi.yaml"], date="20251220")
run(main, snakemake)
