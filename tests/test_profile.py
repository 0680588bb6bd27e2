"""dinsar.profile: values along a line through a product, NaN off the grid and on nodata."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from dinsar.errors import DinsarError
from dinsar.profile import sample_profile


def test_a_profile_reads_the_pixels_it_crosses(tmp_path) -> None:
    path = tmp_path / "los_displacement.tif"
    data = np.tile(np.arange(10, dtype="float32") / 100, (5, 1))  # 0.00 .. 0.09 west to east
    data[2, 7] = np.nan
    with rasterio.open(path, "w", driver="GTiff", width=10, height=5, count=1, dtype="float32",
                       crs="EPSG:4326", transform=from_origin(10.0, 46.0, 0.1, 0.1),
                       nodata=np.nan) as dst:  # fmt: skip
        dst.write(data, 1)
        dst.set_band_unit(1, "m")
    profile = sample_profile(path, (10.05, 45.75), (11.25, 45.75), samples=13)
    assert profile.units == "m"
    assert np.allclose(profile.values[:7], np.arange(7) / 100, atol=1e-6)
    assert np.isnan(profile.values[7])  # nodata
    assert np.allclose(profile.values[8:10], [0.08, 0.09], atol=1e-6)
    assert np.isnan(profile.values[10:]).all()  # east of the grid
    # 1.2 degrees of longitude at 45.75 N
    assert profile.distance_km[-1] == pytest.approx(1.2 * 111.195 * np.cos(np.radians(45.75)), rel=1e-3)
    assert profile.plot() is not None


def test_a_missing_product_is_one_line(tmp_path) -> None:
    with pytest.raises(DinsarError, match="not found"):
        sample_profile(tmp_path / "nope.tif", (0, 0), (1, 1))
