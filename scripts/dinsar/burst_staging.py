"""Burst mode's staging: each burst's TIFF and metadata into the shared cache, then one SAFE per
date assembled from those local files with burst2safe.

Downloads go through :func:`dinsar.download.download` (resume, file lock, atomic rename). ASF
publishes no md5 for a burst, so a TIFF is checked for completeness instead: its pixel bytes
must be what the record says (lines x samples x 4 for CInt16) and every strip must lie inside
the file, and the last strip is read. The metadata XML must parse and hold the extractor's
annotation and manifest. A file failing its check is never renamed into place.

burst2safe's own downloader and its Earthdata route are not used: it writes straight to the
final name, skips any file that exists, and its login appends to ``~/.netrc``. Only its local
route (``local2safe``) is called, on files already in the cache.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import requests

from .atomic import atomic_path
from .config import Config, Download, Network
from .download import Outcome, Target, download
from .errors import DinsarError
from .inventory import Burst

log = logging.getLogger(__name__)

XFDU = "{urn:ccsds:schema:xfdu:1}XFDU"
# a slice's metadata for one polarization: the annotation of three swaths and the manifest,
# about 1.9 MB in the real burst-extractor SAFE of ../shared/fixtures/hyp3-isce2
METADATA_BYTES = 2_000_000


class BurstStagingError(DinsarError):
    """A burst could not be fetched whole, or the date's SAFE could not be assembled."""


# --- checks ------------------------------------------------------------------------------------


def tiff_problem(path: Path, pixel_bytes: int | None = None) -> str | None:
    """None when the TIFF at ``path`` is whole; else what is wrong, in a few words."""
    import tifffile

    try:
        size = path.stat().st_size
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            offsets, counts = list(page.dataoffsets), list(page.databytecounts)
            lines, samples = page.imagelength, page.imagewidth
            bits = page.bitspersample * page.samplesperpixel
        if not offsets or len(offsets) != len(counts):
            return "no image strips"
        end = max(o + c for o, c in zip(offsets, counts, strict=True))
        if end > size:
            return f"{size} bytes, but its strips end at byte {end}"
        with open(path, "rb") as handle:
            handle.seek(offsets[-1])
            if len(handle.read(counts[-1])) != counts[-1]:
                return "its last strip cannot be read"
    except (OSError, ValueError, IndexError, tifffile.TiffFileError) as exc:
        return f"not a readable TIFF ({str(exc)[:120]})"
    image = lines * samples * bits // 8
    if sum(counts) != image:
        return f"its strips hold {sum(counts)} bytes, its {lines} x {samples} pixels need {image}"
    if pixel_bytes is not None and image != pixel_bytes:
        return f"{lines} x {samples} pixels ({image} bytes), but the record says {pixel_bytes}"
    return None


def metadata_problem(path: Path) -> str | None:
    """None when the burst's metadata XML is whole: it parses and holds annotation and manifest."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        return f"not readable XML ({exc})"
    if root.find("metadata/product") is None or root.find(f"manifest/{XFDU}") is None:
        return "no product annotation or no manifest in it"
    return None


# --- downloads ---------------------------------------------------------------------------------


def burst_targets(burst: Burst, folder: Path) -> tuple[Target, Target]:
    """The burst's TIFF in the shared cache, keyed by the burst's granule, and the metadata
    XML, keyed by the slice and polarization it describes (every burst of a slice shares it;
    burst2safe reads one per slice)."""
    tiff = Target(
        burst.url,
        folder / burst.filename,
        label=burst.granule,
        check=lambda path: tiff_problem(path, burst.bytes),
        estimate=burst.bytes,
    )
    xml = Target(
        burst.xml_url, folder / burst.xml_filename, label=f"{burst.source} {burst.polarization} metadata",
        check=metadata_problem, estimate=METADATA_BYTES,
    )  # fmt: skip
    return tiff, xml


def download_burst(burst: Burst, folder: Path, session: requests.Session, network: Network,
                   settings: Download, progress: IO[str] | None = None) -> list[Outcome]:  # fmt: skip
    """Both files of a burst into the cache (nothing is fetched for a file already whole)."""
    return [download(t, session, network, settings, progress) for t in burst_targets(burst, folder)]


def find_burst(inventory: str | Path, **wanted: str) -> Burst:
    """The first burst of the inventory whose fields equal ``wanted`` (a granule, or a slice
    and polarization); a missing one means the inventory changed under the run."""
    from .inventory import load_saved_search

    for scene in load_saved_search(inventory):
        if isinstance(scene, Burst) and all(getattr(scene, k) == v for k, v in wanted.items()):
            return scene
    what = ", ".join(f"{k} {v}" for k, v in wanted.items())
    raise BurstStagingError(
        f"no burst with {what} in {inventory}; the inventory changed: rerun the plan"
    )


def fetch(inventory: str | Path, which: int, folder: Path, cfg: Config, log_path: str | Path,
          **wanted: str) -> Outcome:  # fmt: skip
    """One file of a burst of the inventory into ``folder``: its TIFF (``which`` 0) or its
    slice's metadata (1), through the Earthdata session; progress lines go to ``log_path``."""
    from .credentials import earthdata_session

    target = burst_targets(find_burst(inventory, **wanted), folder)[which]
    session = earthdata_session(cfg.download.edl_host, cfg.network.ca_bundle)
    with open(log_path, "a", encoding="utf-8") as progress:
        return download(target, session, cfg.network, cfg.download, progress)


# --- the date's SAFE ---------------------------------------------------------------------------


def assemble_safe(bursts: Sequence[Burst], folder: Path, dest: Path) -> Path:
    """One SAFE zip at ``dest`` from the date's bursts (TIFF and XML in ``folder``).

    burst2safe writes a SAFE folder in a private work directory beside ``dest``; it is zipped
    (stored, not compressed: TIFF pixels do not compress) as ``<dest stem>.SAFE/`` under a
    temporary name and renamed, so ``dest`` is whole or absent, and its name says which bursts
    it holds (``Acquisition.safe_names``). ``keep_files``: burst2safe otherwise deletes its
    inputs, here the shared cache's bursts.
    """
    from burst2safe.local2safe import local2safe

    tree: dict[str, dict] = {}
    for burst in bursts:
        files = {"DATA": str(folder / burst.filename), "METADATA": str(folder / burst.xml_filename)}
        for path in files.values():
            if not Path(path).is_file():
                raise BurstStagingError(
                    f"{burst.granule}: {path} is missing from the burst cache; run the workflow "
                    "again to download it"
                )
        # checked on arrival; checked again here, since the cache is shared and long-lived
        problem = tiff_problem(Path(files["DATA"]), burst.bytes) or metadata_problem(
            Path(files["METADATA"])
        )
        if problem:
            raise BurstStagingError(
                f"{burst.granule}: a file of it in the burst cache is damaged ({problem}); "
                f"delete {files['DATA']} and {files['METADATA']} and run again"
            )
        swaths = tree.setdefault(burst.source, {}).setdefault(burst.swath, {})
        swaths.setdefault(burst.polarization, {})[str(burst.burst_index)] = files
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.stem}.*"):  # what a killed assembly left
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.stem}.", dir=dest.parent))
    try:
        cwd = os.getcwd()
        try:
            safe = Path(local2safe(tree, all_anns=False, keep_files=True, work_dir=work))
        except (AssertionError, ValueError, KeyError, IndexError, AttributeError, OSError) as exc:
            raise BurstStagingError(
                f"burst2safe could not assemble {dest.name} from {len(bursts)} burst(s): "
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}; "
                "delete the bursts of this date from the burst cache to fetch them again"
            ) from None
        finally:
            os.chdir(cwd)
        with atomic_path(dest) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
            # topsApp wants the zip's name on its top folder; ISCE reads nothing else from it
            top = f"{dest.stem}.SAFE"
            archive.write(safe, top)
            for path in sorted(safe.rglob("*")):
                archive.write(path, f"{top}/{path.relative_to(safe).as_posix()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("assembled %s from %d burst(s)", dest.name, len(bursts))
    return dest
