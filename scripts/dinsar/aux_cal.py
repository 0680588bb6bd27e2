"""AUX_CAL files: only Sentinel-1 products processed with IPF 002.36 need them.

ISCE's Sentinel-1 reader looks for ``<platform>_AUX_CAL_*.SAFE`` folders in the topsApp
``auxiliary data directory`` when a product's IPF is 2.36 (antenna pattern correction). The
ESA SAR Mission Performance Cluster publishes one zip per platform with every AUX_CAL; we
fetch it once into the orbit cache and unpack the ``.SAFE`` folders flat into ``aux_cal/``
(the zip nests them under ``S1A/AUX_CAL/<yyyy>/<mm>/<dd>/``).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

import requests

from .config import Network
from .download import DEFAULT_NETWORK, Target, download, file_lock
from .errors import DinsarError

log = logging.getLogger(__name__)

AUX_CAL_BASE_URL = "https://sar-mpc.eu/files"
AUX_CAL_VERSION = "20241128"  # the bundle that contains every AUX_CAL, old ones included
# IPF 002.36 products need the AUX_CAL of their date (ISCE reads the antenna pattern there)
IPF_NEEDING_AUX_CAL = 2.36


class AuxCalError(DinsarError):
    """The AUX_CAL bundle could not be fetched or unpacked."""


def needs_aux_cal(ipf: str | None) -> bool:
    """True for IPF 002.36, however written ("002.36", "2.36"). The one place that decides."""
    if not ipf:
        return False
    try:
        return abs(float(ipf) - IPF_NEEDING_AUX_CAL) < 1e-6
    except ValueError:
        return False


def platforms_needing_aux_cal(acquisitions: Iterable[Any]) -> list[str]:
    """Platforms whose scenes among ``acquisitions`` were processed with IPF 002.36."""
    return sorted({s.platform for a in acquisitions for s in a.scenes if needs_aux_cal(s.ipf)})


def ipf_from_zip(path: Path) -> str | None:
    """The IPF version recorded in a SAFE zip's manifest.safe (when the inventory lacks it)."""
    with zipfile.ZipFile(path) as archive:
        name = next((n for n in archive.namelist() if n.endswith(".SAFE/manifest.safe")), None)
        if name is None:
            return None
        text = archive.read(name).decode("utf-8", "replace")
    match = re.search(r'name="Sentinel-1 IPF"\s+version="([^"]+)"', text)
    return match.group(1) if match else None


def bundle_name(platform: str) -> str:
    return f"{platform}_AUX_CAL_{AUX_CAL_VERSION}.zip"


def _done_marker(directory: Path, platform: str) -> Path:
    return directory / f".{platform}_AUX_CAL_{AUX_CAL_VERSION}.unpacked"


def _safe_members(archive: zipfile.ZipFile) -> Iterable[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Members inside a ``*_AUX_CAL_*.SAFE`` folder, with the path from that folder on."""
    for info in archive.infolist():
        parts = PurePosixPath(info.filename).parts
        if info.is_dir() or ".." in parts or info.filename.startswith("/"):
            continue
        index = next(
            (i for i, p in enumerate(parts) if re.fullmatch(r"S1[A-D]_AUX_CAL_.*\.SAFE", p)), None
        )
        if index is not None and index < len(parts) - 1:
            yield info, PurePosixPath(*parts[index:])


def unpack(bundle: Path, directory: Path) -> list[str]:
    """Unpack the .SAFE folders of ``bundle`` into ``directory``; returns the folder names."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        archive = zipfile.ZipFile(bundle)
    except zipfile.BadZipFile:
        bundle.unlink(missing_ok=True)
        raise AuxCalError(f"{bundle.name} is not a valid zip (deleted); run again") from None
    with archive, tempfile.TemporaryDirectory(dir=directory, prefix=".unpack-") as tmp:
        folders: set[str] = set()
        for info, rel in _safe_members(archive):
            out = Path(tmp, *rel.parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
            folders.add(rel.parts[0])
        if not folders:
            raise AuxCalError(
                f"{bundle.name} holds no *_AUX_CAL_*.SAFE folder; check orbits.aux_cal_url"
            )
        for folder in sorted(folders):
            final = directory / folder
            if not final.exists():  # another process may have unpacked it meanwhile
                Path(tmp, folder).rename(final)
    return sorted(folders)


def fetch_aux_cal(
    platforms: Iterable[str],
    directory: Path,
    session: requests.Session,
    base_url: str | None = None,
    network: Network = DEFAULT_NETWORK,
) -> Path:
    """Make sure ``directory`` holds the AUX_CAL folders of ``platforms``; returns it (absolute)."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    base = (base_url or AUX_CAL_BASE_URL).rstrip("/")
    for platform in sorted(set(platforms)):
        marker = _done_marker(directory, platform)
        if marker.exists():
            log.info("AUX_CAL of %s already in %s", platform, directory)
            continue
        with file_lock(directory / f".{platform}.lock", f"AUX_CAL of {platform}"):
            if marker.exists():
                continue
            name = bundle_name(platform)
            bundle = directory / ".bundles" / name
            download(Target(f"{base}/{name}", bundle, label=name), session, network)
            folders = unpack(bundle, directory)
            marker.write_text("\n".join(folders) + "\n")
            bundle.unlink(missing_ok=True)  # the unpacked folders are what ISCE reads
            log.info("AUX_CAL of %s: %d folder(s) in %s", platform, len(folders), directory)
    return directory
