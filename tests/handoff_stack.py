"""A synthetic S1C/S1D stack with its MintPy hand-offs, shared by the hand-off and time-series
tests: 4 dates, a connected network of 5 pairs, each pair a synthetic topsApp run exported
(``export_pair``) with ``write_mintpy_handoff`` beside its products.

By default each pair holds ``isce_synthetic``'s Mogi uplift; ``velocity`` gives instead a
constant LOS velocity field (m/year, positive towards the satellite), so that each pair's
unwrapped phase is that of ``velocity * (secondary - reference)``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import isce_synthetic as synthetic  # noqa: E402

from dinsar.isce_image import IsceImage, read_image, write_raster  # noqa: E402
from dinsar.products import PairInfo, export_pair  # noqa: E402
from dinsar.products.mintpy_handoff import RadarInfo, write_mintpy_handoff  # noqa: E402

# A track flown by S1C and S1D (6 days apart), 4 dates, a connected network of 5 pairs
DATES = ("20250601", "20250607", "20250613", "20250619")
PLATFORM = {"20250601": "S1C", "20250607": "S1D", "20250613": "S1C", "20250619": "S1D"}
PAIRS = (("20250601", "20250607"), ("20250601", "20250613"), ("20250607", "20250613"),
         ("20250607", "20250619"), ("20250613", "20250619"))  # fmt: skip
TRACK = "168_DESC"
DEM_MARGIN = 3  # DEM samples beyond the pair grid on each side
# Sentinel-1's C-band wavelength, the one MintPy's hyp3 loader assumes (c / 5.405 GHz)
S1_WAVELENGTH = 299_792_458.0 / 5.405e9

# (rows, cols) -> LOS velocity in m/year
VelocityField = Callable[[np.ndarray, np.ndarray], np.ndarray]


def granule(date: str) -> str:
    return (f"{PLATFORM[date]}_IW_SLC__1SDV_{date}T052632_{date}T052659_00{date[-4:]}_"
            f"0{date[-5:]}_ABCD")  # fmt: skip


def radar_info(reference: str, secondary: str) -> RadarInfo:
    return RadarInfo(
        utc_seconds=5 * 3600 + 26 * 60 + 45.5,
        range_looks=19,
        azimuth_looks=7,
        reference_granules=(granule(reference),),
        secondary_granules=(granule(secondary),),
        filter_strength=0.5,
    )


def dem_value(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return 420.0 + 0.75 * rows - 0.5 * cols + 3.0 * np.sin(cols / 7.0)


def write_dem(path: Path, width: int, length: int) -> None:
    """A geocoded ISCE DEM on the synthetic grid's posting, DEM_MARGIN samples wider each side."""
    m = DEM_MARGIN
    rows, cols = np.mgrid[-m : length + m, -m : width + m]
    image = IsceImage(file_name=path.name, width=width + 2 * m, length=length + 2 * m,
                      data_type="FLOAT", image_type="dem",
                      first_lon=synthetic.LON0 - m * synthetic.DLON, delta_lon=synthetic.DLON,
                      first_lat=synthetic.LAT0 - m * synthetic.DLAT, delta_lat=synthetic.DLAT)  # fmt: skip
    write_raster(path, [dem_value(rows, cols).astype(np.float32)], image)


def vary_azimuth(workdir: Path) -> None:
    """Give los.rdr.geo an azimuth that changes across the grid (the synthetic one is constant)."""
    raster = workdir / "merged" / "los.rdr.geo"
    image = read_image(raster.with_name(raster.name + ".xml"))
    data = np.fromfile(raster, dtype="<f4").reshape(image.length, 2, image.width)  # BIL
    incidence, azimuth = data[:, 0, :], data[:, 1, :]
    cols = np.arange(image.width)[None, :]
    rows = np.arange(image.length)[:, None]
    varied = synthetic.AZIMUTH_DEG + 0.01 * cols - 0.005 * rows
    write_raster(raster, [incidence, np.where(azimuth != 0, varied, 0).astype(np.float32)], image)


def days_between(reference: str, secondary: str) -> int:
    def day(text: str) -> np.datetime64:
        return np.datetime64(f"{text[:4]}-{text[4:6]}-{text[6:]}")

    return int((day(secondary) - day(reference)).astype(int))


def _two_band(workdir: Path, name: str) -> tuple[np.ndarray, np.ndarray, IsceImage]:
    raster = workdir / "merged" / name
    image = read_image(raster.with_name(raster.name + ".xml"))
    data = np.fromfile(raster, dtype="<f4").reshape(image.length, 2, image.width)  # BIL
    return data[:, 0, :].copy(), data[:, 1, :].copy(), image


def set_motion(workdir: Path, velocity: VelocityField, years: float, wavelength: float) -> None:
    """Replace the run's phase (unwrapped, and the interferograms the export takes the phase
    within the cycle from) by that of ``velocity * years`` (ISCE's sign: phase = -4 pi / lambda
    times the motion towards the satellite); no data stays no data."""
    amplitude, phase, image = _two_band(workdir, "filt_topophase.unw.geo")
    rows, cols = np.mgrid[0 : image.length, 0 : image.width]
    motion = velocity(rows, cols) * years
    new = (-4 * math.pi / wavelength * motion).astype(np.float32)
    keep = (amplitude != 0) & np.isfinite(phase)
    unwrapped = np.where(keep, new, np.where(np.isfinite(phase), 0.0, np.nan)).astype(np.float32)
    write_raster(workdir / "merged" / "filt_topophase.unw.geo", [amplitude, unwrapped], image)
    for name in ("topophase.flat.geo", "filt_topophase.flat.geo"):
        raster = workdir / "merged" / name
        flat_image = read_image(raster.with_name(name + ".xml"))
        flat = np.fromfile(raster, dtype="<c8").reshape(flat_image.length, flat_image.width)
        ifg = np.where(flat != 0, np.abs(flat) * np.exp(1j * new), 0).astype(np.complex64)
        write_raster(raster, [ifg], flat_image)


def scale_coherence(workdir: Path, factor: float) -> None:
    amplitude, coherence, image = _two_band(workdir, "topophase.cor.geo")
    write_raster(workdir / "merged" / "topophase.cor.geo",
                 [amplitude, (coherence * factor).astype(np.float32)], image)  # fmt: skip


def build_stack(root: Path, *, width: int = 240, length: int = 160,
                wavelength: float = synthetic.WAVELENGTH, velocity: VelocityField | None = None,
                coherence_factor: dict[tuple[str, str], float] | None = None) -> Path:  # fmt: skip
    """``root/products/<pair>/`` for the 5 pairs, each with its MintPy hand-off, and
    ``root/dem/geocode_dem.wgs84``; returns ``root``."""
    products = root / "products"
    dem = root / "dem" / "geocode_dem.wgs84"
    dem.parent.mkdir(parents=True)
    for index, (reference, secondary) in enumerate(PAIRS):
        pair = f"{reference}_{secondary}"
        run = synthetic.write_run(root / "work" / pair, reference_date=reference,
                                  secondary_date=secondary, phase_offset=0.3 * index,
                                  width=width, length=length, wavelength=wavelength)  # fmt: skip
        vary_azimuth(run.workdir)
        days = days_between(reference, secondary)
        if velocity is not None:
            set_motion(run.workdir, velocity, days / 365.25, wavelength)
        factor = (coherence_factor or {}).get((reference, secondary))
        if factor is not None:
            scale_coherence(run.workdir, factor)
        if index == 0:
            write_dem(dem, run.width, run.length)
        info = PairInfo(pair=pair, reference=reference, secondary=secondary, btemp_days=days,
                        bperp_m=12.5 * (index + 1) - 30.0, track=TRACK,
                        bperp_source="test")  # fmt: skip
        export_pair(run.workdir, products / pair, pair_info=info, threads=1)
        write_mintpy_handoff(products / pair, radar_info(reference, secondary), dem)
    return root
