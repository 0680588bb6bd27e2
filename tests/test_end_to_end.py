"""The whole workflow, as a user runs it: `snakemake --cores 2` with nothing prepared.

Search (emulated CMR) -> preflight -> SLC downloads through Earthdata login -> orbits -> DEM
from tiles -> topsApp.xml -> the topsApp test double, step group by step group -> products,
quicklooks, stack summaries -> report. Every remote service is the local HTTPS emulation.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from test_notebooks import execute, images_in, text_of

from harness.pipeline import serve_window, user_setup
from workflow_runner import executed_rules, output_of, snakemake, write_config

START, END = "2016-09-01", "2016-11-24"  # 4 dates -> 3 sequential pairs
PAIRS = ["20160901_20161007", "20161007_20161031", "20161031_20161124"]
RANGE_INCREASE_M = 0.01  # what the double injects at the ROI centre (motion away)


@pytest.fixture
def user(tmp_path, cmr, earthdata, orbit_bucket, dem_tiles, https_server, ca_bundle, shared_dir):
    services = serve_window(
        START,
        END,
        cmr=cmr,
        earthdata=earthdata,
        orbit_bucket=orbit_bucket,
        dem_tiles=dem_tiles,
        https_server=https_server,
        shared_dir=shared_dir,
    )
    setup = user_setup(
        tmp_path,
        START,
        END,
        services,
        cmr=cmr,
        earthdata=earthdata,
        orbit_bucket=orbit_bucket,
        dem_tiles=dem_tiles,
        ca_bundle=ca_bundle,
    )
    setup.env["DINSAR_DOUBLE_DEFO_AMP_M"] = str(RANGE_INCREASE_M)
    # wide enough to be sampled well by the coarse grid of the synthetic test DEM
    setup.env["DINSAR_DOUBLE_DEFO_SIGMA_KM"] = "8"
    return setup


def test_full_run_from_search_to_report(tmp_path: Path, user, earthdata, https_server) -> None:
    # the time series at its default (the harness turns it off elsewhere): 4 dates, connected
    config = write_config(tmp_path, {**user.config, "timeseries": {"enabled": "auto"}})
    result = snakemake(tmp_path, config, "--cores", "2", env=user.env, timeout=900)
    assert result.returncode == 0, output_of(result)[-6000:]
    ran = executed_rules(result)
    for rule, count in {
        "search": 1, "plan": 1, "preflight": 1, "download_slc": 4, "orbits": 4, "dem": 1,
        "topsapp_xml": 3, "isce_preprocess": 3, "isce_topo": 3, "isce_coregistration": 3,
        "isce_interferogram": 3, "isce_filter": 3, "isce_unwrap": 3, "isce_geocode": 3,
        "isce_cleanup": 3, "export_pair": 3, "quicklooks_pair": 3, "stack_summary": 1,
        "processing_report": 1, "mintpy_handoff_pair": 3, "timeseries_track": 1,
    }.items():  # fmt: skip
        assert ran.count(rule) == count, (rule, ran.count(rule))
    # each date's scene downloaded exactly once although the middle dates serve two pairs
    # (one scene also gets the preflight's 1-byte login probe)
    sizes = {name: product.size for name, product in earthdata.products.items()}
    fetched = {name: earthdata.bytes_sent(name) for name in sizes}
    used = {name for name, sent in fetched.items() if sent}
    assert len(used) == 4
    assert sum(fetched.values()) == sum(sizes[name] for name in used) + 1

    ws = user.workspace
    # one grid per track: every product of every pair on the same transform and size, each pair
    # geocoded by the double's geozero (ISCE's index rule) exactly onto it from topsApp.xml's box
    grids = set()
    for path in sorted(ws.glob("products/*_*/*.tif")):
        with rasterio.open(path) as ds:
            grids.add((ds.transform.to_gdal(), ds.width, ds.height, ds.crs.to_epsg()))
    assert len(grids) == 1, grids
    for pair in PAIRS:
        placement = json.loads((ws / "products" / pair / "metadata.json").read_text())["grid"]
        assert placement["pair_placement"] | {"width": 0, "length": 0} == {
            "track_grid": True, "row_offset": 0, "col_offset": 0, "width": 0, "length": 0}  # fmt: skip
    for pair in PAIRS:
        products = ws / "products" / pair
        with rasterio.open(products / "los_displacement.tif") as ds:
            assert ds.units[0] == "m" and "towards the satellite" in json.dumps(ds.tags()).lower()
            assert ds.profile["tiled"] and ds.overviews(1)
            disp = ds.read(1)
            centre = ds.index(-121.0, 54.65)  # the ROI centre: the double's bump
        # a range increase is motion away from the satellite: negative displacement
        peak = np.unravel_index(np.nanargmin(disp), disp.shape)
        assert abs(peak[0] - centre[0]) <= 1 and abs(peak[1] - centre[1]) <= 1
        assert disp[peak] == pytest.approx(-RANGE_INCREASE_M, rel=0.1)
        assert np.nanmax(disp) < 0.1 * RANGE_INCREASE_M  # nothing moves towards the satellite
        for png in ("quicklook_displacement.png", "quicklook_wrapped_phase.png",
                    "quicklook_coherence.png"):  # fmt: skip
            assert (products / png).read_bytes()[:4] == b"\x89PNG"
        metadata = json.loads((products / "metadata.json").read_text())
        assert json.dumps(metadata).count("POEORB") >= 2
        assert not (ws / "work" / pair / "geom_reference").exists()  # keep: products
    html = (ws / "products" / "stack" / "processing.html").read_text()
    assert "POEORB" in html

    # the time series: MintPy inverted the chain of 3 pairs; the bump moves away from the
    # satellite (negative). The double's bump covers most of this small area, so the stable
    # reference (reference_point: auto) sits on its flank: compare with the area's edge, which
    # the pairs show still (their own maximum, above)
    (series,) = sorted(ws.glob("products/timeseries/*/timeseries.json"))
    summary = json.loads(series.read_text())
    assert summary["dates"] == ["20160901", "20161007", "20161031", "20161124"]
    assert sorted(summary["pairs_used"]) == PAIRS and summary["pairs_dropped"] == []
    folder = series.parent
    with rasterio.open(folder / "velocity.tif") as ds:
        velocity = ds.read(1)
        centre = ds.index(-121.0, 54.65)
        fastest = ds.index(summary["fastest_lon"], summary["fastest_lat"])
    assert abs(fastest[0] - centre[0]) <= 1 and abs(fastest[1] - centre[1]) <= 1
    # 1 cm away per pair, 3 cm over 84 days: about -0.13 m/year at the bump
    still = np.nanmax(velocity)
    assert velocity[centre] - still == pytest.approx(-3 * RANGE_INCREASE_M / 84 * 365.25, rel=0.2)
    assert np.nanmin(np.abs(velocity)) == 0.0  # the reference pixel
    with rasterio.open(folder / "displacement_20161124.tif") as ds:
        last = ds.read(1)
        assert last[centre] - np.nanmax(last) == pytest.approx(-3 * RANGE_INCREASE_M, rel=0.1)
    assert len((folder / "history.csv").read_text().splitlines()) == 1 + 4
    for png in ("velocity.png", "history.png"):
        assert (folder / png).read_bytes()[:4] == b"\x89PNG"

    # done means done: a rerun has nothing to do and asks no service for anything
    https_server.clear_log()
    again = snakemake(tmp_path, config, "-n", env=user.env)
    assert again.returncode == 0 and "Nothing to be done" in output_of(again)

    report = tmp_path / "report.html"
    built = snakemake(tmp_path, config, "--report", str(report), env=user.env)
    assert built.returncode == 0, output_of(built)[-3000:]
    text = report.read_text()
    pngs = sorted(ws.glob("products/*/quicklook_*.png")) + sorted(ws.glob("plan/*.png"))
    assert len(pngs) == 9 + 2
    for png in pngs:  # every figure is embedded: the report opens offline
        assert base64.b64encode(png.read_bytes()).decode()[:2000] in text, png
    assert "5. Time series" in text
    for png in ("velocity.png", "history.png"):
        assert base64.b64encode((folder / png).read_bytes()).decode()[:2000] in text, png
    assert https_server.requests() == []
    for secret in user.secrets:
        assert secret not in text

    # the products notebook shows the time series (the two figures after the pair's ones)
    explored = execute("04_explore_products.ipynb", tmp_path, CONFIG=str(config))
    assert images_in(explored) >= 3 + 1 + 1 + 2
    assert "time series of 1 track(s)" in text_of(explored)
