"""Synthetic topsApp run directories: ISCE-format ``merged/*.geo`` products with a known motion.

The deformation is a Mogi point source (uplift). It is written with ISCE's phase sign convention
(reference/isce2/products.json, verified on a real run): unwrapped phase = +4*pi/lambda times the
range increase, so an uplift seen by the satellite (range DECREASE) has NEGATIVE phase. Layouts
follow ISCE: 2-band float32 BIL for unw/cor/los, complex64 for the interferogram, uint8 conncomp,
int16 dem.crop, each with ``.xml`` (``file_name`` relative, ``merged/<name>``, as ISCE writes it)
and ``.vrt``; the wavelength is per burst in ``reference/IW1.xml``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from dinsar.isce_image import IsceImage, write_raster  # noqa: E402

# A deliberately non-nominal wavelength: code that hard-codes 0.05546576 is off by ~1.3 %.
WAVELENGTH = 0.0562
LON0, LAT0 = 11.5, 46.45
DLON, DLAT = 1 / 1200, -1 / 1200
MOGI_DEPTH_M = 2000.0
MOGI_VOLUME_M3 = 1.0e6
POISSON = 0.25
AZIMUTH_DEG = -100.8  # descending, right-looking: satellite to the east-south-east


@dataclass
class SyntheticRun:
    workdir: Path
    width: int
    length: int
    wavelength: float
    los_truth: np.ndarray  # m, positive towards the satellite; NaN where no data
    phase: np.ndarray  # what was written into filt_topophase.unw band 2 (0 where no data)
    valid: np.ndarray  # pixels with data
    nan_patch: tuple[slice, slice]
    low_coherence: tuple[slice, slice]
    centre_rc: tuple[int, int]
    geotransform: tuple[float, float, float, float, float, float]

    def lat_lon(self, row: int, col: int) -> tuple[float, float]:
        return LAT0 + (row + 0.5) * DLAT, LON0 + (col + 0.5) * DLON


def mogi_enu(east: np.ndarray, north: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surface displacement (m) of a Mogi inflation source at the origin."""
    c = MOGI_VOLUME_M3 * (1 - POISSON) / math.pi
    r2 = east**2 + north**2
    denominator = (r2 + MOGI_DEPTH_M**2) ** 1.5
    return c * east / denominator, c * north / denominator, c * MOGI_DEPTH_M / denominator


def _image(name: str, width: int, length: int, data_type: str, bands: int, scheme: str,
           origin: tuple[float, float] = (0.0, 0.0)) -> IsceImage:  # fmt: skip
    return IsceImage(
        file_name=f"merged/{name}",
        width=width,
        length=length,
        data_type=data_type,
        bands=bands,
        scheme=scheme,
        first_lon=LON0 + origin[1] * DLON,
        delta_lon=DLON,
        first_lat=LAT0 + origin[0] * DLAT,
        delta_lat=DLAT,
    )


def write_swath_xml(path: Path, wavelength: float | None, sensing_start: str, track: int = 168,
                    direction: str = "DESCENDING", bursts: int = 3) -> None:  # fmt: skip
    """A reduced ISCE TOPSSwathSLCProduct XML: the per-burst properties the export reads."""
    burst_xml = []
    for index in range(1, bursts + 1):
        props = {
            "burstnumber": index,
            "passdirection": direction,
            "tracknumber": track,
            "sensingstart": sensing_start,
        }
        if wavelength is not None:
            props["radarwavelength"] = wavelength
        body = "\n".join(
            f'        <property name="{k}">\n            <value>{escape(str(v))}</value>\n'
            "        </property>"
            for k, v in props.items()
        )
        orbit = (
            '        <component name="orbit">\n'
            '            <property name="orbit_source">\n'
            "                <value>Annotation</value>\n            </property>\n"
            "        </component>"
        )
        burst_xml.append(
            f'      <component name="burst{index}">\n{body}\n{orbit}\n      </component>'
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<productmanager_name>\n  <component name=\"instance\">\n"
        '    <component name="bursts">\n' + "\n".join(burst_xml) + "\n    </component>\n"
        "  </component>\n</productmanager_name>\n"
    )


def write_run(
    workdir: Path,
    *,
    width: int = 240,
    length: int = 160,
    wavelength: float | None = WAVELENGTH,
    phase_offset: float = 0.0,
    conncomp: bool = True,
    reference_date: str = "20210401",
    secondary_date: str = "20210413",
    roi_snwe: tuple[float, float, float, float] | None = None,
    origin: tuple[float, float] = (0.0, 0.0),
) -> SyntheticRun:
    """Write a topsApp-like run directory with a Mogi uplift at the grid centre.

    ``origin``: (rows, columns) from (LAT0, LON0) to the grid's first pixel, in pixels (a
    fraction makes a grid off the common lattice).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    rows, cols = np.mgrid[0:length, 0:width]
    lat = LAT0 + (rows + 0.5) * DLAT
    lon = LON0 + (cols + 0.5) * DLON
    centre = (length // 2, width // 2)
    lat_c, lon_c = LAT0 + (centre[0] + 0.5) * DLAT, LON0 + (centre[1] + 0.5) * DLON
    east = (lon - lon_c) * 111_320.0 * math.cos(math.radians(lat_c))
    north = (lat - lat_c) * 110_540.0
    ue, un, uu = mogi_enu(east, north)
    incidence = 30.0 + 15.0 * cols / max(1, width - 1)
    inc, az = np.radians(incidence), math.radians(AZIMUTH_DEG)
    los = -np.sin(inc) * math.sin(az) * ue + np.sin(inc) * math.cos(az) * un + np.cos(inc) * uu
    lam = wavelength or 0.05546576
    # ISCE's sign: phase = 4*pi/lambda * range increase = -4*pi/lambda * (motion towards sat)
    phase = -4 * math.pi / lam * los + phase_offset

    rng = np.random.default_rng(5)
    amplitude = rng.uniform(50, 150, size=(length, width))
    coherence = np.full((length, width), 0.9) - rng.uniform(0, 0.05, size=(length, width))
    low = (slice(10, 40), slice(width - 60, width - 20))  # a "lake"
    coherence[low] = 0.1
    valid = np.ones((length, width), dtype=bool)
    valid[:4, :] = valid[-4:, :] = False  # geocoding zero-fill outside the swath
    valid[:, :6] = False
    valid[rows > cols + length - 20] = False  # a slanted swath edge
    nan_patch = (slice(length - 30, length - 20), slice(20, 30))

    unw_phase = np.where(valid, phase, 0.0).astype(np.float32)
    unw_amp = np.where(valid, amplitude, 0.0).astype(np.float32)
    unw_phase[nan_patch] = np.nan  # NaN is never data either
    flat = np.where(valid, amplitude * np.exp(1j * phase), 0).astype(np.complex64)
    cor_amp = np.where(valid, amplitude, 0.0).astype(np.float32)
    cor = np.where(valid, coherence, 0.0).astype(np.float32)
    phsig = np.where(valid, np.clip(coherence + 0.05, 0, 1), 0.0).astype(np.float32)
    los_inc = np.where(valid, incidence, 0.0).astype(np.float32)
    los_az = np.where(valid, AZIMUTH_DEG, 0.0).astype(np.float32)
    labels = np.where(valid, 1, 0).astype(np.uint8)
    labels[low] = 0
    labels[length - 12 : length - 6, width - 12 : width - 6] = 2  # a small island component

    merged = workdir / "merged"
    merged.mkdir(exist_ok=True)
    w, n = width, length
    write_raster(merged / "filt_topophase.unw.geo", [unw_amp, unw_phase],
                 _image("filt_topophase.unw.geo", w, n, "FLOAT", 2, "BIL", origin))  # fmt: skip
    write_raster(merged / "filt_topophase.flat.geo", [flat],
                 _image("filt_topophase.flat.geo", w, n, "CFLOAT", 1, "BIP", origin))  # fmt: skip
    # the unfiltered interferogram (here as the filtered one: no filter loss to take out)
    write_raster(merged / "topophase.flat.geo", [flat],
                 _image("topophase.flat.geo", w, n, "CFLOAT", 1, "BIP", origin))  # fmt: skip
    write_raster(merged / "topophase.cor.geo", [cor_amp, cor],
                 _image("topophase.cor.geo", w, n, "FLOAT", 2, "BIL", origin))  # fmt: skip
    write_raster(merged / "phsig.cor.geo", [phsig],
                 _image("phsig.cor.geo", w, n, "FLOAT", 1, "BIP", origin))  # fmt: skip
    write_raster(merged / "los.rdr.geo", [los_inc, los_az],
                 _image("los.rdr.geo", w, n, "FLOAT", 2, "BIL", origin))  # fmt: skip
    if conncomp:
        write_raster(merged / "filt_topophase.unw.conncomp.geo", [labels],
                     _image("filt_topophase.unw.conncomp.geo", w, n, "BYTE", 1, "BIP", origin))  # fmt: skip
    dem = IsceImage(file_name="merged/dem.crop", width=w, length=n, data_type="SHORT",
                    image_type="dem", reference="EGM96")  # fmt: skip
    write_raster(merged / "dem.crop", [np.full((n, w), 330, dtype=np.int16)], dem)

    def stamp(date: str) -> str:
        return f"{date[:4]}-{date[4:6]}-{date[6:]} 05:26:32.485660"

    write_swath_xml(workdir / "reference" / "IW1.xml", wavelength, stamp(reference_date))
    write_swath_xml(workdir / "secondary" / "IW1.xml", wavelength, stamp(secondary_date))
    south, north_, west, east_ = roi_snwe or (
        LAT0 + (length - 10) * DLAT, LAT0 + 10 * DLAT, LON0 + 10 * DLON, LON0 + (width - 10) * DLON
    )
    (workdir / "topsApp.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<topsApp>\n  <component name="topsinsar">\n'
        f'    <property name="region of interest">[{south}, {north_}, {west}, {east_}]</property>\n'
        "  </component>\n</topsApp>\n"
    )
    truth = np.where(valid, los, np.nan)
    truth[nan_patch] = np.nan
    return SyntheticRun(
        workdir=workdir,
        width=width,
        length=length,
        wavelength=lam,
        los_truth=truth,
        phase=unw_phase,
        valid=np.isfinite(truth),
        nan_patch=nan_patch,
        low_coherence=low,
        centre_rc=centre,
        geotransform=(LON0 + origin[1] * DLON, DLON, 0.0, LAT0 + origin[0] * DLAT, 0.0, DLAT),
    )
