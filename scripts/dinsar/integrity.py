"""Has a verified download changed since? A record beside the file answers without rehashing.

A download whose md5 matched the inventory leaves ``<file>.verified`` (md5, size, mtime). A
reader (topsApp.xml, the ISCE pre-run checks) calls :func:`check_unchanged`: same size and
mtime as recorded - nothing to do; otherwise the file is hashed again and must still have the
recorded md5. So a zip truncated or overwritten in the cache after its download (a copy cut
short, a full disk, a tool that rewrote it) is caught before ISCE reads it, and an untouched
4-8 GB zip is never hashed twice. Standard library only: the ISCE environment imports it too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .atomic import write_json
from .errors import DinsarError

SUFFIX = ".verified"
_BLOCK = 4 * 1024 * 1024


class ChangedFileError(DinsarError):
    """A file no longer has the content that was verified when it was downloaded."""


def record_path(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def _md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - ASF publishes md5; this is integrity, not security
    with open(path, "rb") as handle:
        while chunk := handle.read(_BLOCK):
            digest.update(chunk)
    return digest.hexdigest()


def record_verified(path: Path, md5: str) -> None:
    """Note that ``path`` has just been verified to have ``md5``."""
    stat = path.stat()
    record = {"md5": md5.lower(), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    write_json(record_path(path), record, indent=None)


def check_unchanged(path: Path, what: str = "") -> bool:
    """Raise ChangedFileError if ``path`` changed since it was verified; False if never verified."""
    path = Path(path)
    try:
        record = json.loads(record_path(path).read_text())
        md5, size, mtime = str(record["md5"]), int(record["size"]), int(record["mtime_ns"])
    except (OSError, ValueError, KeyError, TypeError):
        return False  # placed by hand or by an older version: nothing to compare with
    name = what or str(path)
    fix = "delete it and run again: it is downloaded afresh"
    stat = path.stat()
    if stat.st_size != size:
        raise ChangedFileError(
            f"{name} has {stat.st_size} bytes but had {size} when its download was verified "
            f"(truncated or overwritten since); {fix}"
        )
    if stat.st_mtime_ns == mtime:
        return True
    got = _md5(path)
    if got != md5:
        raise ChangedFileError(
            f"{name} changed after its download was verified: its md5 is now {got}, not "
            f"{md5} (corrupted since); {fix}"
        )
    record_verified(path, md5)  # same bytes, new mtime (copied, touched): no rehash next time
    return True
