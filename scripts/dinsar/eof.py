"""Orbit files (.EOF): the one reader, and the one test of whether a file covers an acquisition.

Standard library only: the ISCE rules check their orbits with it before topsApp starts, also
inside an ISCE environment that has nothing else.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DinsarError


class EofError(DinsarError):
    """An orbit file is not one, or is truncated."""


@dataclass(frozen=True)
class EofContent:
    mission: str  # S1A .. S1D
    file_type: str  # AUX_POEORB | AUX_RESORB
    validity: tuple[dt.datetime, dt.datetime]  # aware UTC
    first_osv: dt.datetime
    last_osv: dt.datetime
    count: int

    def gaps(self, start: dt.datetime, stop: dt.datetime, margin_s: float,
             platform: str | None = None) -> list[str]:  # fmt: skip
        """What keeps this file from covering [start - margin, stop + margin]; [] if nothing.

        ISCE keeps the state vectors inside that window (extractPreciseOrbit) and interpolates
        between them, so the vectors must span it too, not only the header's validity.
        """
        start, stop = _aware(start), _aware(stop)
        margin = dt.timedelta(seconds=margin_s)
        need0, need1 = start - margin, stop + margin
        problems = []
        if platform and self.mission != platform:
            problems.append(f"it is for {self.mission}, not {platform}")
        first, last = self.validity
        if not (first <= need0 and last >= need1):
            problems.append(f"its validity {first:%Y-%m-%dT%H:%M:%S}..{last:%Y-%m-%dT%H:%M:%S}")
        if not (self.first_osv <= need0 and self.last_osv >= need1):
            problems.append(
                f"its state vectors span {self.first_osv:%Y-%m-%dT%H:%M:%S}.."
                f"{self.last_osv:%Y-%m-%dT%H:%M:%S}"
            )
        return problems


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _utc(text: str | None) -> dt.datetime:
    value = (text or "").strip().removeprefix("UTC=")
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


def read_eof(path: str | Path) -> EofContent:
    """Header validity and the span of the state vectors of an EOF file.

    Reads the head and the tail only (a POEORB holds ~9000 state vectors, 4.4 MB): the header
    and first vector are at the start, the last vector and the closing tag at the end, so a
    truncated file (no closing tag) is caught too.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(16384).decode("utf-8", "replace")
            handle.seek(max(size - 4096, 0))
            tail = handle.read().decode("utf-8", "replace")
    except OSError as exc:
        raise EofError(f"orbit file {path} is unreadable ({exc}); rerun the orbit step") from None

    def tag(name: str, text: str) -> str | None:
        match = re.search(rf"<{name}>([^<]*)</{name}>", text)
        return match.group(1).strip() if match else None

    header = {k: tag(k, head) for k in ("Mission", "File_Type", "Validity_Start", "Validity_Stop")}
    missing = [k for k, v in header.items() if not v]
    if missing:
        raise EofError(f"{path.name} is not an orbit file (no {', '.join(missing)} in its header)")
    stamps = re.findall(r"<UTC>UTC=([^<]+)</UTC>", tail)
    first = tag("UTC", head)
    if first is None or not stamps or "</Earth_Explorer_File>" not in tail:
        raise EofError(f"{path.name} is truncated or has no state vectors; delete it and rerun")
    count = re.search(r'<List_of_OSVs count="(\d+)"', head)
    try:
        return EofContent(
            mission=str(header["Mission"]).upper().replace("SENTINEL-", "S"),
            file_type=str(header["File_Type"]),
            validity=(_utc(header["Validity_Start"]), _utc(header["Validity_Stop"])),
            first_osv=_utc(first),
            last_osv=_utc(stamps[-1]),
            count=int(count.group(1)) if count else 0,
        )
    except ValueError as exc:
        raise EofError(f"{path.name} has an unreadable time ({exc})") from None
