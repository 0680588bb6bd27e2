"""What the products say about their pair: PairInfo (titles, tags, report), the provenance read
from the run (ISCE's Bperp and version, the DEM used, the orbit types) and ``metadata.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_json
from ..grid import Grid
from ..records import DemManifest, OrbitManifest
from .angles import AZIMUTH_DEFINITION, INCIDENCE_DEFINITION
from .displacement import SIGN_CONVENTION
from .isce_input import MergedInputs, read_topsapp_xml, swath_properties, swath_xmls
from .reference import ReferencePoint
from .spec import ProductError

log = logging.getLogger(__name__)

METADATA = "metadata.json"
ISCE_LOG = "isce.log"  # topsApp's own log in the run directory

_BPERP_RE = re.compile(r"Bperp at midrange for (?:first|last) common burst = (\S+)")
_ISCE_VERSION_RE = re.compile(r"ISCE VERSION = ([0-9][0-9A-Za-z._-]*)")
_SAFE_DATE = re.compile(r"S1[A-D]_IW_SLC__1S[SD][HV]_(\d{8})T\d{6}_")


@dataclass
class PairInfo:
    """What the titles, tags and report say about a pair."""

    pair: str
    reference: str | None = None  # YYYYMMDD
    secondary: str | None = None
    btemp_days: int | None = None
    bperp_m: float | None = None
    track: str | None = None
    orbits: dict[str, str] = field(default_factory=dict)  # date -> orbit type(s)
    bperp_source: str | None = None  # the search's baselines, or ISCE's own computation

    def title(self) -> str:
        dates = f"{self.reference or '?'} \u2192 {self.secondary or '?'}"
        btemp = f"{self.btemp_days} d" if self.btemp_days is not None else "n/a"
        bperp = (
            f"{self.bperp_m:.0f} m"
            if self.bperp_m is not None and math.isfinite(self.bperp_m)
            else "n/a"
        )
        return f"{dates}   Btemp {btemp}   Bperp {bperp}   track {self.track or 'n/a'}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.bperp_m is not None and not math.isfinite(self.bperp_m):
            data["bperp_m"] = None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PairInfo:
        return cls(**{k: data.get(k) for k in ("pair", "reference", "secondary", "btemp_days",
                                                "bperp_m", "track", "bperp_source")},
                   orbits=dict(data.get("orbits") or {}))  # fmt: skip


def pair_info_dict(pair: Any) -> dict[str, Any]:
    """A planned pair (``dinsar.pairs.Pair``) as the plain dict rule params carry."""
    bperp = float(pair.bperp_m)
    return {
        "pair": pair.id,
        "reference": pair.reference,
        "secondary": pair.secondary,
        "btemp_days": int(pair.btemp_days),
        "bperp_m": None if math.isnan(bperp) else bperp,
        "bperp_source": None if math.isnan(bperp) else "search (asf_search baselines)",
        "track": pair.track,
    }


def pair_info_from_workdir(workdir: str | Path) -> PairInfo:
    """Best-effort description of a hand-run topsApp directory (dates, track, Bperp, orbits)."""
    workdir = Path(workdir)
    info: dict[str, Any] = {}
    xml_values = read_topsapp_xml(workdir)
    for which in ("reference", "secondary"):
        props: dict[str, str] = {}
        for xml_path in swath_xmls(workdir, which)[:1]:
            for name, text in swath_properties(xml_path):
                props.setdefault(name, text)
        date = None
        if props.get("sensingstart"):
            date = re.sub(r"\D", "", props["sensingstart"])[:8] or None
        if date is None:
            match = _SAFE_DATE.search(xml_values.get(f"{which}.safe", ""))
            date = match.group(1) if match else None
        info[which] = date
        if which == "reference" and props.get("tracknumber"):
            direction = props.get("passdirection", "").upper()
            suffix = "ASC" if direction.startswith("A") else "DESC" if direction else "?"
            info["track"] = f"{props['tracknumber']}_{suffix}"
        if date and props.get("orbit_source"):
            info.setdefault("orbits", {})[date] = props["orbit_source"]
    ref, sec = info.get("reference"), info.get("secondary")
    btemp = None
    if ref and sec:
        btemp = (dt.datetime.strptime(sec, "%Y%m%d") - dt.datetime.strptime(ref, "%Y%m%d")).days
    bperp, bperp_source = isce_bperp(workdir)
    pair = workdir.resolve().name
    if not re.fullmatch(r"\d{8}_\d{8}", pair) and ref and sec:
        pair = f"{ref}_{sec}"
    return PairInfo(
        pair=pair,
        reference=ref,
        secondary=sec,
        btemp_days=btemp,
        bperp_m=bperp,
        track=info.get("track"),
        orbits=info.get("orbits", {}),
        bperp_source=bperp_source,
    )


def read_orbit_types(paths: Sequence[str | Path]) -> dict[str, str]:
    """date -> orbit type(s) ("POEORB", "RESORB", "POEORB+RESORB") from the orbit manifests."""
    manifests = [OrbitManifest.read(path) for path in paths]
    return {m.date.replace("-", ""): m.types or "unknown" for m in manifests}


def isce_bperp(workdir: str | Path) -> tuple[float | None, str | None]:
    """Bperp (m) from topsApp's computeBaselines in isce.log, and where it came from.

    The mean of its first and last common burst. ISCE writes nan when the two orbits coincide:
    its cosine is 0/0 for a zero baseline (runComputeBaseline.py), which we report as 0 m.
    """
    path = Path(workdir) / ISCE_LOG
    if not path.is_file():
        return None, None
    values = [float(m[1]) for m in _BPERP_RE.finditer(path.read_text(errors="replace"))
              if re.fullmatch(r"[-+0-9.eEnaNinf]+", m[1])]  # fmt: skip
    if not values:
        return None, None
    source = "ISCE topsApp computeBaselines (mid range, first and last common burst)"
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, source + "; nan there: the orbits coincide, a zero baseline"
    return float(np.mean(finite)), source


def isce_version(workdir: str | Path) -> str | None:
    """The ISCE2 version topsApp printed in its log (every step starts with the banner)."""
    path = Path(workdir) / ISCE_LOG
    if not path.is_file():
        return None
    found = _ISCE_VERSION_RE.findall(path.read_text(errors="replace"))
    return found[-1] if found else None


def export_metadata(
    info: PairInfo,
    wavelength: tuple[float, str],
    coherence_threshold: float,
    reference: ReferencePoint,
    grid: Grid,
    inputs: MergedInputs,
    products: Sequence[str],
    stats: dict[str, Any],
    dem: DemManifest | None,
) -> dict[str, Any]:
    """The content of an exported pair's metadata.json (``wavelength``: value, where from)."""
    return {
        "pair": info.to_json(),
        "title": info.title(),
        "wavelength_m": wavelength[0],
        "wavelength_source": wavelength[1],
        "sign_convention": SIGN_CONVENTION,
        "incidence_definition": INCIDENCE_DEFINITION,
        "azimuth_definition": AZIMUTH_DEFINITION,
        "coherence_threshold": coherence_threshold,
        "reference_point": asdict(reference),
        "grid": {"width": grid.width, "length": grid.length, "geotransform": list(grid.transform),
                 "crs": "EPSG:4326"},
        "inputs": {k: str(v.relative_to(inputs.workdir)) for k, v in inputs.present().items()},
        "products": sorted(products),
        "stats": stats,
        "processing": {"isce2_version": isce_version(inputs.workdir),
                       "exported_by": "dInSAR-Toolkit"},
        "dem": dem.provenance() if dem else None,
    }  # fmt: skip


def write_metadata(outdir: Path, metadata: dict[str, Any]) -> Path:
    return write_json(outdir / METADATA, metadata, default=_json_default)


def read_metadata(product_dir: str | Path) -> dict[str, Any]:
    path = Path(product_dir) / METADATA
    if not path.is_file():
        raise ProductError(f"{path} is missing; export the pair first (dinsar export)")
    return json.loads(path.read_text())


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
