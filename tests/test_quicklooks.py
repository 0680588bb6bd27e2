"""Quicklooks, stack figures and the Snakemake HTML report (built offline from a real run of the
workflow's product rules on synthetic ISCE output)."""

from __future__ import annotations

import base64
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import isce_synthetic as synthetic  # noqa: E402
from shapely.geometry import box  # noqa: E402

from dinsar import quicklooks  # noqa: E402
from dinsar.isce_image import IsceImage, write_raster  # noqa: E402
from dinsar.products import PairInfo, ProductError, export_pair  # noqa: E402
from dinsar.records import DemManifest, OrbitEntry, OrbitManifest  # noqa: E402
from workflow_runner import executed_rules, output_of, snakemake  # noqa: E402

ROI = box(11.51, 46.33, 11.69, 46.44)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ql")
    run = synthetic.write_run(root / "work")
    export_pair(run.workdir, root / "products", reference_point="auto")
    return root / "products"


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What each saved figure shows: titles, colour bars, colour maps, lines."""
    seen: list[dict[str, Any]] = []
    original = quicklooks.figure.save

    def spy(fig: Any, out_path: Any) -> Path:
        info: dict[str, Any] = {"path": Path(out_path), "titles": [], "labels": [], "images": [],
                                "lines": 0, "suptitle": fig._suptitle.get_text() if fig._suptitle else ""}  # fmt: skip
        for ax in fig.axes:
            info["titles"].append(ax.get_title())
            info["labels"] += [ax.get_ylabel(), ax.get_xlabel()]
            info["lines"] += len(ax.get_lines())
            for image in ax.get_images():
                info["images"].append({"cmap": image.get_cmap().name, "clim": image.get_clim()})
        seen.append(info)
        return original(fig, out_path)

    monkeypatch.setattr(quicklooks.figure, "save", spy)
    return seen


def test_pair_quicklooks_have_title_colorbar_units_roi(exported: Path, figures) -> None:
    info = PairInfo("20210401_20210413", "20210401", "20210413", 12, -41.7, "168_DESC")
    paths = quicklooks.make_quicklooks(exported, roi=ROI, info=info)
    assert set(paths) == {"displacement", "wrapped_phase", "coherence"}
    for path in paths.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    by_name = {f["path"].name: f for f in figures}
    for fig in by_name.values():
        title = " ".join(fig["titles"])
        for part in ("20210401", "20210413", "Btemp 12 d", "Bperp -42 m", "track 168_DESC"):
            assert part in title
        assert fig["lines"] >= 2  # the ROI outline (dark + light dashes)
    disp = by_name["quicklook_displacement.png"]
    low, high = disp["images"][0]["clim"]
    assert low == -high and high > 0  # symmetric
    assert disp["images"][0]["cmap"] == "RdBu_r"  # diverging
    assert any("towards the satellite" in label and "[cm]" in label for label in disp["labels"])
    assert by_name["quicklook_wrapped_phase.png"]["images"][0]["cmap"] == "twilight"  # cyclic
    assert by_name["quicklook_wrapped_phase.png"]["images"][0]["clim"] == pytest.approx((-math.pi, math.pi))
    coh = by_name["quicklook_coherence.png"]
    assert coh["images"][0]["clim"] == (0, 1)
    assert any("0.5 reliable" in label for label in coh["labels"])


def test_robust_limits_ignore_outliers_and_keep_a_local_signal(exported: Path) -> None:
    data = quicklooks.read_decimated(exported / "los_displacement.tif").data
    limit = quicklooks.robust_symmetric_limit(data, quicklooks.ROBUST_PERCENTILE)
    peak = np.nanmax(np.abs(data))
    assert 0.5 * peak < limit <= peak


def bump_scene(noise_m: float = 0.0, spikes: int = 0) -> tuple[np.ndarray, float]:
    """A 2.4 cm Gaussian bump (sigma 8 pixels, 0.2 % of the scene above half its peak), as the
    real run's, on an optional noise and with isolated unwrapping spikes of 10 cm."""
    rng = np.random.default_rng(1)
    rows, cols = np.mgrid[0:1000, 0:1200]
    bump = 0.024 * np.exp(-((rows - 400) ** 2 + (cols - 700) ** 2) / (2 * 8.0**2))
    data = bump + rng.normal(0, noise_m, bump.shape) if noise_m else bump.copy()
    data.flat[rng.choice(data.size, spikes, replace=False)] = 0.10
    data[800:900, 100:300] = np.nan
    return data, float(bump.max())


def test_the_displacement_limit_keeps_a_local_peak() -> None:
    data, peak = bump_scene()
    # the percentile alone clips the bump (1.5 cm of 2.4 on the real run)
    assert quicklooks.robust_symmetric_limit(data, quicklooks.ROBUST_PERCENTILE) < 0.7 * peak
    assert quicklooks.peak_keeping_limit(data) == pytest.approx(peak)
    # on noise, with spikes ten times the noise: the peak is still kept, the spikes ignored
    noisy, peak = bump_scene(noise_m=0.003, spikes=50)
    assert peak <= quicklooks.peak_keeping_limit(noisy) < 0.04
    # without a signal the limit is the percentile: noise and spikes do not widen it
    flat, _ = bump_scene(noise_m=0.003, spikes=50)
    flat[300:500, 600:800] = np.random.default_rng(2).normal(0, 0.003, (200, 200))
    assert quicklooks.peak_keeping_limit(flat) == pytest.approx(
        quicklooks.robust_symmetric_limit(flat, quicklooks.ROBUST_PERCENTILE)
    )
    # the stack's shared scale keeps the peak of the pair that has it
    limit, scale, unit = quicklooks.displacement_scale(flat, data)
    assert (limit, scale, unit) == (pytest.approx(peak), 100.0, "cm")


def test_decimated_reads_are_bounded(exported: Path) -> None:
    image = quicklooks.read_decimated(exported / "coherence.tif", max_pixels=50)
    assert max(image.data.shape) <= 50 and image.full_shape == (160, 240)
    west, east, south, north = image.extent
    assert west == pytest.approx(11.5) and north == pytest.approx(46.45)
    with pytest.raises(ProductError, match="export the pair first"):
        quicklooks.read_decimated(exported / "nope.tif")


def test_stack_figures_share_one_colour_scale(tmp_path: Path, figures) -> None:
    dirs = []
    for index, (ref, sec) in enumerate([("20210401", "20210413"), ("20210413", "20210425"),
                                        ("20210401", "20210425")]):  # fmt: skip
        run = synthetic.write_run(tmp_path / f"w{index}", reference_date=ref, secondary_date=sec)
        out = tmp_path / "products" / f"{ref}_{sec}"
        export_pair(run.workdir, out)
        dirs.append(out)
    pairs_csv = tmp_path / "pairs.csv"
    pairs_csv.write_text(
        "pair,track,reference,secondary,btemp_days,bperp_m\n"
        "20210401_20210413,168_DESC,20210401,20210413,12,30.0\n"
        "20210413_20210425,168_DESC,20210413,20210425,12,-10.0\n"
        "20210401_20210425,168_DESC,20210401,20210425,24,20.0\n"
    )
    pairs = quicklooks.load_stack_pairs(dirs, pairs_csv)
    assert [p.pair for p in pairs] == ["20210401_20210413", "20210401_20210425", "20210413_20210425"]
    assert all(0.8 < p.mean_coherence < 0.9 for p in pairs)
    positions = quicklooks.date_positions(pairs)
    assert positions[("168_DESC", "20210413")] == 30.0 and positions[("168_DESC", "20210425")] == 20.0
    table = quicklooks.write_stack_table(pairs, tmp_path / "stack" / "pairs.csv")
    assert [p.pair for p in quicklooks.read_stack_table(table)] == [p.pair for p in pairs]
    quicklooks.plot_coherence_network(pairs, tmp_path / "stack" / "network.png")
    quicklooks.plot_mean_coherence(pairs, tmp_path / "stack" / "coherence.png", 0.3)
    quicklooks.plot_displacement_grid(pairs, tmp_path / "stack" / "grid.png", roi=ROI)
    grid = figures[-1]
    clims = {tuple(i["clim"]) for i in grid["images"]}
    assert len(grid["images"]) == 3 and len(clims) == 1  # one shared, symmetric scale
    low, high = clims.pop()
    assert low == -high
    html = quicklooks.processing_html({"isce": {"range_looks": 19}}, {"20210401": "POEORB",
                                      "20210413": "RESORB"}, pairs)  # fmt: skip
    assert "isce.range_looks" in html and "RESORB" in html and "20210401_20210425" in html


# --- the report -----------------------------------------------------------------------------

REFERENCE, SECONDARY = "20210401", "20210413"
PAIR = f"{REFERENCE}_{SECONDARY}"


def scene(date: str, index: int) -> dict[str, Any]:
    granule = f"S1A_IW_SLC__1SDV_{date}T052622_{date}T052650_03726{index}_04629{index}_EFA{index}"
    footprint = box(11.0, 46.0, 12.2, 46.9)
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [list(map(list, footprint.exterior.coords))]},
        "properties": {
            "granule": granule, "url": f"https://example.invalid/{granule}.zip", "bytes": 4_000_000_000,
            "md5": None, "path": 168, "frame": 150, "platform": "S1A",
            "flight_direction": "DESCENDING", "start_time": f"{date[:4]}-{date[4:6]}-{date[6:]}T05:26:22Z",
            "stop_time": f"{date[:4]}-{date[4:6]}-{date[6:]}T05:26:50Z", "polarization": "VV+VH",
            "orbit": 37260 + index, "ipf": "003.31", "center_lat": 46.4, "center_lon": 11.6,
        },
    }  # fmt: skip


def test_report_builds_offline_with_every_quicklook(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    inventory = tmp_path / "scenes.geojson"
    inventory.write_text(json.dumps({"type": "FeatureCollection",
                                     "features": [scene(REFERENCE, 1), scene(SECONDARY, 2)]}))  # fmt: skip
    # topsApp's output and the staging's orbit records, as the ISCE and staging stages leave them
    synthetic.write_run(ws / "work" / PAIR)
    (ws / "work" / PAIR / "PICKLE").mkdir()
    for name in ("geocode", "geocode.xml"):  # the geocode step's state, which the export follows
        (ws / "work" / PAIR / "PICKLE" / name).write_text("<topsProc/>\n")
    (ws / "orbits").mkdir(parents=True)
    for date, kind in ((REFERENCE, "POEORB"), (SECONDARY, "RESORB")):
        entry = OrbitEntry(platform="S1A", type=kind, file=f"/orbits/{kind}.EOF", granules=[],
                           validity=[f"{date}T00:00:00", f"{date}T23:59:59"])  # fmt: skip
        OrbitManifest(date=date, orbits=[entry]).write(ws / "orbits" / f"{date}.json")
    # the DEM stage's record (the products and the report name the DEM used), and its geocoding
    # DEM, on whose lattice the synthetic run's grid lies: the track grid is cut from it
    dem = ws / "dem" / "168_DESC" / "dem.wgs84"
    dem.parent.mkdir(parents=True)
    margin = 100  # DEM samples beyond the run's grid on each side
    image = IsceImage(file_name=str(dem), width=240 + 2 * margin, length=160 + 2 * margin,
                      data_type="SHORT", first_lon=synthetic.LON0 - margin * synthetic.DLON,
                      delta_lon=synthetic.DLON, first_lat=synthetic.LAT0 - margin * synthetic.DLAT,
                      delta_lat=synthetic.DLAT, image_type="dem", reference="WGS84")  # fmt: skip
    write_raster(dem, [np.full((image.length, image.width), 330, dtype=np.int16)], image)
    DemManifest(track="168_DESC", dem=str(dem), geocode_dem=str(dem), source="glo_30",
                bounds=[11.4, 46.2, 11.8, 46.6], posting=[1 / 3600, -1 / 3600],
                input_vertical_datum="geoid (removed)").write(ws / "dem" / "168_DESC" / "dem.json")  # fmt: skip
    config = {
        "workspace": str(ws),
        "roi": [11.51, 46.33, 11.69, 46.44],
        "dates": {"start": "2021-03-30", "end": "2021-04-20"},
        "inventory": str(inventory),
        "products": {"reference_point": "auto"},
    }
    # only our rules run: the merged/ files and orbit records above stand in for their producers
    allowed = ["search", "plan", "export_pair", "quicklooks_pair", "stack_summary",
               "processing_report", "products"]  # fmt: skip
    result = snakemake(tmp_path, config, "products", "-c2", "--allowed-rules", *allowed)
    assert result.returncode == 0, output_of(result)[-4000:]
    assert {"export_pair", "quicklooks_pair", "stack_summary", "processing_report"} <= set(
        executed_rules(result)
    )
    product_dir = ws / "products" / PAIR
    assert (product_dir / "los_displacement.tif").is_file()
    assert (ws / "logs" / "export_pair" / f"{PAIR}.log").is_file()

    report = tmp_path / "report.html"
    result = snakemake(tmp_path, config, "--report", str(report), "products",
                       "--allowed-rules", *allowed)  # fmt: skip
    assert result.returncode == 0, output_of(result)[-4000:]
    assert "downloading" not in output_of(result).lower()  # Snakemake's assets are local
    html = report.read_text()
    # self-contained: every image embedded as a data URI, nothing loaded from the network
    for png in [*product_dir.glob("quicklook_*.png"), *(ws / "products" / "stack").glob("*.png"),
                ws / "plan" / "network.png"]:  # fmt: skip
        assert base64.b64encode(png.read_bytes()).decode()[:2000] in html, png.name
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']https?://", html)
    for text in ("LOS displacement", "positive towards the satellite", "0.5 the phase is reliable",
                 "2. Pairs", "3. Stack", "4. Processing", "168_DESC"):  # fmt: skip
        assert text in html, text
    processing = (ws / "products" / "stack" / "processing.html").read_text()
    assert "POEORB" in processing and "RESORB" in processing and "isce.range_looks" in processing
    assert "DEM used" in processing and "glo_30" in processing
    assert base64.b64encode(processing.encode()).decode()[:500] in html
    # every figure is labelled with a name, not its path
    items = re.search(r"var results = (\{.*?\});\n", html, re.S)
    assert items
    for item in json.loads(items.group(1)).values():
        assert item["labels"] and all(str(ws) not in str(v) for v in item["labels"].values())

    # mid-run (the stack summaries not made yet): the report holds what exists
    for made in (ws / "products" / "stack").iterdir():
        made.unlink()
    result = snakemake(tmp_path, config, "--report", str(report), "products",
                       "--allowed-rules", *allowed)  # fmt: skip
    assert result.returncode == 0, output_of(result)[-4000:]
    html = report.read_text()
    for png in [*product_dir.glob("quicklook_*.png"), ws / "plan" / "network.png"]:
        assert base64.b64encode(png.read_bytes()).decode()[:2000] in html, png.name
    categories = re.search(r"var categories = (\{.*?\});\n", html, re.S)
    assert categories and set(json.loads(categories.group(1))) == {"1. Plan", "2. Pairs"}
