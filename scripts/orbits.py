"""Rule `orbits`: the orbit file of every platform acquired on one date, and its manifest."""

from pathlib import Path

import requests

from _helpers import mock_snakemake, run
from dinsar.config import validate_config
from dinsar.net import pin_ca_bundle
from dinsar.orbits import (
    OrbitSettings,
    cdse_session,
    find_orbit,
    request_from_params,
    write_manifest,
)


def main(snakemake):
    cfg = validate_config(snakemake.config)
    settings = OrbitSettings.from_config(cfg)
    wanted = [request_from_params(r) for r in snakemake.params.orbits["requests"]]
    session = pin_ca_bundle(requests.Session(), cfg.network.ca_bundle)
    cdse = None
    if settings.source == "cdse":
        cdse = lambda: cdse_session(cfg.network.ca_bundle)  # noqa: E731 - log in only if needed
    entries = [find_orbit(request, settings, session, cdse) for request in wanted]
    write_manifest(Path(snakemake.output.manifest), snakemake.wildcards.date, entries)


if "snakemake" not in globals():
    snakemake = mock_snakemake("orbits", configfiles=["config/roi.yaml"], date="20251220")
run(main, snakemake)
