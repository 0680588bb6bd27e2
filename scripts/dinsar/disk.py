"""Free-space checks before downloads (numbers in the message, so the fix is obvious)."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import DinsarError

GB = 1_000_000_000
# A real ISCE2 run of 3 bursts x 1 swath wrote 5.9 GB of intermediates (geom_reference 3.0,
# fine_* 3.0): about 2 GB per burst and swath at full resolution.
INTERMEDIATE_BYTES_PER_BURST = 2 * GB


class DiskSpaceError(DinsarError):
    """Not enough free space for what is still to be downloaded or processed."""


def format_bytes(n: float) -> str:
    """Decimal units, as ASF and `df -H` print sizes: 4.9 GB, 812.3 MB."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Remaining:
    """What still has to be fetched, given the files already (partly) in the cache."""

    files: int
    bytes: int


def remaining_bytes(items: Iterable[tuple[Path, int]]) -> Remaining:
    """Bytes still to fetch for (destination, expected size) pairs.

    A complete file counts 0 (by size: hashing 200 GB just to plan would take minutes; the
    download itself verifies the md5). A ``.part`` counts only its missing tail.
    """
    files = total = 0
    for dest, size in items:
        if dest.is_file() and dest.stat().st_size == size:
            continue
        part = dest.with_name(dest.name + ".part")
        have = part.stat().st_size if part.is_file() else 0
        files += 1
        total += max(size - have, 0) if have <= size else size
    return Remaining(files, total)


def free_bytes(directory: Path) -> int:
    """Free bytes for an unprivileged user on the filesystem holding ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(directory).free


def check_free_space(directory: Path, needed: int, margin: int, what: str,
                     setting: str = "cache.slc") -> int:  # fmt: skip
    """Raise DiskSpaceError unless ``needed + margin`` bytes are free; return the free bytes."""
    free = free_bytes(directory)
    if needed + margin > free:
        raise DiskSpaceError(
            f"not enough disk space in {directory} for {what}: {format_bytes(needed)} still to "
            f"download + {format_bytes(margin)} margin (download.disk_margin_gb) = "
            f"{format_bytes(needed + margin)} needed, {format_bytes(free)} free; free some space, "
            f"point {setting} at a larger disk, or lower download.disk_margin_gb"
        )
    return free


def check_space_for(directory: Path, needed: int, what: str, fix: str) -> int:
    """Raise DiskSpaceError unless ``needed`` bytes are free; return the free bytes."""
    free = free_bytes(directory)
    if needed > free:
        raise DiskSpaceError(
            f"not enough disk space in {directory} for {what}: {format_bytes(needed)} needed, "
            f"{format_bytes(free)} free; {fix}"
        )
    return free
