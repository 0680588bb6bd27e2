"""Burst mode against SLC mode with the real topsApp.py (ISCE2 2.6.5): the same pair, the same
area, the same products.

SLC mode downloads the shared real stack's SAFE zips; burst mode downloads the same slices'
bursts from the burst-extractor emulation (harness.burst_extractor: their TIFF and metadata,
cut from those zips), and each date's SAFE is assembled with burst2safe. Both workflows run
from a saved search to the products through the emulated Earthdata login. The products must lie
on the same grid with the same line-of-sight displacement within 1 mm at every valid pixel.

Marker ``real_heavy``: two whole workflow runs; in `make test-real` (tests/REAL.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from workflow_runner import executed_rules, output_of, snakemake, write_config

pytestmark = [pytest.mark.real_heavy]

PRODUCT = "los_displacement.tif"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, real_topsapp, real_services, real_stack):
    dates = [s.date for s in real_stack.scenes[:2]]
    pair = f"{dates[0]}_{dates[1]}"
    out = {}
    for mode in ("slc", "burst"):
        root = tmp_path_factory.mktemp(f"real_{mode}")
        env = real_services.user_env(root / "home")
        config = real_services.config(root / "ws", root / "cache", pairs={"sequential": 1},
                                      download={"mode": mode})  # fmt: skip
        first, last = dates[0], dates[1]
        config["dates"] = {"start": f"{first[:4]}-{first[4:6]}-{first[6:]}",
                           "end": f"{last[:4]}-{last[4:6]}-{last[6:]}"}  # fmt: skip
        if mode == "burst":
            config["inventory"] = str(real_services.burst_inventory(root / "bursts.geojson", dates))
        path = write_config(root, config)
        result = snakemake(root, path, "--cores", "2", env=env, timeout=2 * 3600)
        assert result.returncode == 0, output_of(result)[-8000:]
        out[mode] = {"root": root, "ws": root / "ws", "result": result, "pair": pair}
    return out


def read(path: Path) -> tuple[np.ndarray, rasterio.Affine, str, float | None]:
    with rasterio.open(path) as src:
        return src.read(1).astype(np.float64), src.transform, src.crs.to_string(), src.nodata


def test_burst_mode_ran_through_bursts_and_burst2safe(runs) -> None:
    burst = runs["burst"]
    ran = executed_rules(burst["result"])
    assert ran.count("download_burst") == 4  # two bursts on each of two dates
    assert ran.count("burst_metadata") == 2 and ran.count("burst_safe") == 2
    assert "download_slc" not in ran
    assert "download_burst" not in executed_rules(runs["slc"]["result"])
    safes = sorted(p.name for p in (burst["ws"] / "safe").iterdir())
    assert len(safes) == 2 and all("_168_IW1_" in s and s.endswith("_VV.zip") for s in safes)
    # the real program read the assembled SAFEs (topo itself may come from the geometry job)
    logs = burst["ws"] / "logs"
    assert "ISCE VERSION = 2.6.5" in (logs / "isce_preprocess" / f"{burst['pair']}.log").read_text()
    assert "ISCE VERSION = 2.6.5" in (logs / "isce_geometry" / f"{burst['pair'][:8]}.log").read_text()


def test_same_grid_and_displacement_within_a_millimetre(runs) -> None:
    pair = runs["slc"]["pair"]
    slc, t_slc, crs_slc, nodata = read(runs["slc"]["ws"] / "products" / pair / PRODUCT)
    bur, t_bur, crs_bur, _ = read(runs["burst"]["ws"] / "products" / pair / PRODUCT)
    assert slc.shape == bur.shape and t_slc == t_bur and crs_slc == crs_bur
    valid = np.isfinite(slc) & np.isfinite(bur)
    if nodata is not None and np.isfinite(nodata):
        valid &= (slc != nodata) & (bur != nodata)
    assert valid.sum() > 0.5 * slc.size
    # the same pixels are valid in both
    assert np.array_equal(valid, np.isfinite(slc) & np.isfinite(bur))
    diff = np.abs(slc[valid] - bur[valid])
    record = {"pixels": int(valid.sum()), "max_abs_diff_m": float(diff.max()),
              "mean_abs_diff_m": float(diff.mean())}  # fmt: skip
    (runs["burst"]["root"] / "difference.json").write_text(json.dumps(record))
    print("burst vs slc:", record)
    assert diff.max() <= 1e-3, record
