"""Resumable, verified HTTP downloads into a shared cache.

One file at a time, the way the SLC, orbit, DEM-tile and AUX_CAL downloads all need it:

* the bytes go to ``<name>.part``; after a dropped connection the next request asks for the
  rest with ``Range: bytes=<size of .part>-`` (at most the chunk being read when the
  connection broke is fetched again);
* 5xx, 429, timeouts and dropped connections are retried with exponential backoff; the retry
  budget is per stall, so a long transfer that keeps making progress is never given up;
* the size (and md5, when known) is checked before an atomic rename to the final name; a
  wrong md5 deletes the file;
* a lock file beside the target (``flock``; also works on NFS with Linux clients) makes a
  second process wait for the first instead of downloading the same file again, and then
  find it complete;
* an existing complete file with the right md5 makes no request at all.

401/403 become one-line messages that say whether the credentials or the EULA are the problem.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import requests

from .config import Download, Network
from .errors import DinsarError
from .integrity import record_verified
from .retry import backoff_delays, is_transient_network_error, network_failure, unresolved_host

log = logging.getLogger(__name__)

MiB = 1024 * 1024
HASH_BLOCK = 4 * MiB
FSYNC_MIN_BYTES = 16 * MiB
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})


class DownloadError(DinsarError):
    """A download failed in a way retrying now will not fix."""


class AuthError(DownloadError):
    """Earthdata refused the credentials (401) or the data access (403, EULA)."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not match the inventory's md5 (the file was deleted)."""


class _Transient(Exception):
    """A failure worth retrying (5xx, 429, dropped connection, timeout)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Target:
    """What to fetch and what it must look like when it arrives."""

    url: str
    dest: Path
    size: int | None = None
    md5: str | None = None
    label: str = ""  # how messages name it (a granule, an orbit file)
    # a check of the content, for files without an md5 (a burst's TIFF): None when whole, else
    # what is wrong; run on the .part before the rename and on a file found in place
    check: Callable[[Path], str | None] | None = None
    estimate: int | None = None  # bytes to expect when ``size`` is not known: disk check only

    @property
    def name(self) -> str:
        return self.label or self.dest.name

    @property
    def part(self) -> Path:
        return self.dest.with_name(self.dest.name + ".part")

    @property
    def lock(self) -> Path:
        return self.dest.with_name(self.dest.name + ".lock")


# The config sections that steer a transfer (network: timeout and retries; download: chunk
# size and progress lines), at their defaults when a caller gives none.
DEFAULT_NETWORK = Network()
DEFAULT_DOWNLOAD = Download()


def chunk_bytes(settings: Download) -> int:
    return max(int(settings.chunk_mb * MiB), 1024)


@dataclass
class Outcome:
    """What a download did: for logs, tests and benchmarks."""

    path: Path
    skipped: bool = False  # already complete: no request was made
    requests: int = 0  # GET requests sent (redirect hops not counted)
    transferred: int = 0  # body bytes received
    resumed_from: int = 0  # size of the .part the first request continued
    retries: int = 0
    offsets: list[int] = field(default_factory=list)  # Range start of every request


def md5_file(path: Path, block: int = HASH_BLOCK) -> str:
    digest = hashlib.md5()  # noqa: S324 - ASF publishes md5 checksums; this is integrity, not security
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def is_complete(dest: Path, size: int | None, md5: str | None,
                check: Callable[[Path], str | None] | None = None) -> bool:  # fmt: skip
    """True if ``dest`` exists with the expected size and md5 (those that are known) and
    passes the content check (if any)."""
    if not dest.is_file():
        return False
    if size is not None and dest.stat().st_size != size:
        return False
    if check is not None and check(dest) is not None:
        return False
    return not md5 or md5_file(dest) == md5


@contextlib.contextmanager
def file_lock(path: Path, what: str, poll: float = 0.5, say_every: float = 60.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed); log while waiting for it.

    The lock file is left in place: removing it would let a third process lock a fresh inode
    while the second still waits on the old one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - closed in the finally below
    try:
        waited = 0.0
        next_note = 0.0
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            if waited >= next_note:
                log.info("%s is being downloaded by another process; waiting for it", what)
                next_note += say_every
            time.sleep(poll)
            waited += poll
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


class _LineWriter:
    """Turns tqdm's carriage-return redraws into one line per refresh (readable log files)."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def write(self, text: str) -> int:
        for piece in text.split("\r"):
            piece = piece.strip()
            if piece:
                self._out.write(piece + "\n")
        return len(text)

    def flush(self) -> None:
        self._out.flush()


def _progress(target: Target, initial: int, settings: Download, out: IO[str] | None) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=target.size,
        initial=initial,
        desc=target.name,
        unit="B",
        unit_scale=True,
        unit_divisor=1000,
        file=_LineWriter(out) if out is not None else None,
        disable=out is None,
        mininterval=settings.progress_seconds,
        ascii=True,
        ncols=110,
    )


def _host(url: str) -> str:
    return urlsplit(url).netloc


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


def _is_html(response: requests.Response) -> bool:
    return (response.headers.get("Content-Type") or "").lower().startswith("text/html")


def check_response(response: requests.Response, target: Target, session: requests.Session) -> None:
    """Raise the right error for a response that does not carry the file's bytes."""
    status = response.status_code
    host = _host(response.url)
    auth = getattr(session, "auth", None)
    edl = getattr(auth, "is_edl", lambda url: False)(response.url)
    creds = getattr(auth, "credentials", None)
    who = creds.describe() if creds is not None else "no Earthdata credentials"
    edl_site = f"https://{_host(response.url)}" if edl else "https://urs.earthdata.nasa.gov"
    if status in (200, 206):
        if edl and _is_html(response):
            raise AuthError(
                f"{target.name}: Earthdata Login answered with a page to approve the data "
                f"provider's application instead of the file ({who}): log in at {edl_site}, "
                "approve the application (Applications > Authorized Apps) and accept its EULA, "
                "then run again"
            )
        if _is_html(response) and not target.dest.name.endswith((".html", ".htm")):
            raise DownloadError(
                f"{target.name}: {host} answered with a web page instead of the file (a proxy "
                "or captive-portal login?); open the URL in a browser from this machine, or "
                "run the download where the network is direct"
            )
        return
    if status == 401:
        if creds is not None and creds.token:
            raise AuthError(
                f"{target.name}: the Earthdata token was rejected (HTTP 401 from {host}; "
                f"{who}): it has probably expired; create a new one at {edl_site}/profile "
                "(Generate Token) and set EARTHDATA_TOKEN, or use a .netrc login instead"
            )
        where = "Earthdata Login" if edl else host
        raise AuthError(
            f"{target.name}: {where} rejected the credentials (HTTP 401; {who}): fix the "
            f"login/password there (check them by logging in at {edl_site})"
        )
    if status == 403:
        raise AuthError(
            f"{target.name}: access refused (HTTP 403 from {host}) although the credentials "
            f"were accepted ({who}): the account has not accepted the EULA of this data or "
            f"authorized its application: log in at {edl_site}, approve the application "
            "(Applications > Authorized Apps; for Sentinel-1 'Alaska Satellite Facility Data "
            "Access') and accept its EULA, then run again"
        )
    if status in (404, 410):
        raise DownloadError(
            f"{target.name}: not found at {target.url} (HTTP {status}); the product may have "
            "been withdrawn or moved: search again (delete <workspace>/inventory) to refresh "
            "the URLs"
        )
    if status in TRANSIENT_STATUS or status >= 500:
        raise _Transient(f"HTTP {status} from {host}", _retry_after(response))
    raise DownloadError(f"{target.name}: unexpected HTTP {status} from {host} for {target.url}")


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _network_error(target: Target, exc: BaseException) -> DownloadError:
    if unresolved_host(exc) is not None:
        return DownloadError(f"{target.name}: {network_failure(exc, target.url)}")
    if isinstance(exc, requests.exceptions.SSLError):
        return DownloadError(
            f"{target.name}: the TLS certificate of {_host(target.url)} is not trusted ({exc}); "
            "behind a site proxy, set network.ca_bundle to its CA certificate (PEM)"
        )
    return DownloadError(f"{target.name}: {type(exc).__name__}: {exc}")


class _Transfer:
    """State of one file's download across attempts (hash of the bytes in .part so far)."""

    def __init__(self, target: Target, session: requests.Session, network: Network,
                 settings: Download) -> None:  # fmt: skip
        self.target = target
        self.session = session
        self.network = network
        self.settings = settings
        self.outcome = Outcome(target.dest)
        self.digest = hashlib.md5()  # noqa: S324 - integrity check against ASF's md5
        self.hashing = bool(target.md5)  # no published checksum: no CPU spent on one
        self.have = 0
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="download-writer")

    def start(self) -> None:
        part, size = self.target.part, self.target.size
        if part.is_file():
            have = part.stat().st_size
            if size is not None and have > size:
                log.warning("%s is larger than the file; starting again", part)
                part.unlink()
            else:
                if self.hashing:
                    with open(part, "rb") as handle:
                        while chunk := handle.read(HASH_BLOCK):
                            self.digest.update(chunk)
                self.have = have
                if have:
                    log.info("resuming %s from byte %d (%s)", self.target.name, have, part.name)
        self.outcome.resumed_from = self.have

    def restart(self, why: str) -> None:
        log.warning("%s: %s; downloading from the start", self.target.name, why)
        self.target.part.unlink(missing_ok=True)
        self.digest = hashlib.md5()  # noqa: S324
        self.have = 0

    def complete(self) -> bool:
        return self.target.size is not None and self.have == self.target.size

    def attempt(self, bar: Any) -> bool:
        """One GET from the current offset; True once every byte is in .part."""
        target = self.target
        headers = {"Accept-Encoding": "identity"}  # byte counts must be the file's
        if self.have:
            headers["Range"] = f"bytes={self.have}-"
        self.outcome.requests += 1
        self.outcome.offsets.append(self.have)
        timeout = (self.network.timeout, self.network.timeout)
        with self.session.get(target.url, headers=headers, stream=True, timeout=timeout) as resp:
            if resp.status_code == 416 and self.have:
                if self.complete():
                    return True
                self.restart("the server refused to resume (HTTP 416)")
                return False
            check_response(resp, target, self.session)
            total = self._expected_total(resp)
            if total is not None and target.size is not None and total != target.size:
                raise DownloadError(
                    f"{target.name}: the server offers {total} bytes but the inventory says "
                    f"{target.size}; the inventory is stale: search again (delete "
                    "<workspace>/inventory) and rerun"
                )
            with open(target.part, "ab") as handle:
                # Writing and hashing a chunk (both release the GIL) overlap with receiving
                # the next one; at most one chunk waits, and it is always written before the
                # offset is used again, so a resume starts right after the last whole chunk.
                pending: Future[None] | None = None
                try:
                    for chunk in resp.iter_content(chunk_size=chunk_bytes(self.settings)):
                        if chunk:
                            if pending is not None:
                                pending.result()
                            pending = self.writer.submit(self._store, handle, chunk, bar)
                finally:
                    if pending is not None:
                        pending.result()
            if target.size is None:
                return total is None or self.have == total
            return self.complete()

    def _store(self, handle: IO[bytes], chunk: bytes, bar: Any) -> None:
        handle.write(chunk)
        if self.hashing:
            self.digest.update(chunk)
        self.have += len(chunk)
        self.outcome.transferred += len(chunk)
        bar.update(len(chunk))

    def _expected_total(self, resp: requests.Response) -> int | None:
        if resp.status_code == 206:
            match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != self.have:
                self.restart(f"the server resumed at the wrong offset ({match and match.group(1)})")
                raise _Transient("bad Content-Range")
            return None if match.group(3) == "*" else int(match.group(3))
        if self.have:
            # 200 to a Range request: the whole file is coming again
            self.restart("the server ignored the resume request")
        length = resp.headers.get("Content-Length")
        return int(length) if length and length.isdigit() else None


def download(
    target: Target,
    session: requests.Session,
    network: Network = DEFAULT_NETWORK,
    settings: Download = DEFAULT_DOWNLOAD,
    progress: IO[str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Fetch ``target`` into its destination unless it is already there and verified."""
    dest = target.dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.lock, target.name):
        if dest.exists():
            if is_complete(dest, target.size, target.md5, target.check):
                log.info("%s is already complete and verified in %s", target.name, dest.parent)
                if target.md5:
                    record_verified(dest, target.md5)
                return Outcome(dest, skipped=True)
            log.warning("%s exists but is incomplete or corrupt; downloading it again", dest)
            dest.unlink()
        transfer = _Transfer(target, session, network, settings)
        try:
            transfer.start()
            _transfer_all(transfer, progress, sleep)
        finally:
            transfer.writer.shutdown()
        _finish(transfer)
        return transfer.outcome


def _transfer_all(
    transfer: _Transfer,
    progress: IO[str] | None,
    sleep: Callable[[float], None],
) -> None:
    """Request the rest of the file until it is all in .part, retrying what can be retried."""
    target = transfer.target
    delays = backoff_delays(transfer.network.retries, transfer.network.backoff)
    failures = 0
    with _progress(target, transfer.have, transfer.settings, progress) as bar:
        done = transfer.complete()
        while not done:
            before = transfer.have
            try:
                done = transfer.attempt(bar)
                if not done and transfer.have == before:
                    raise _Transient("the connection closed before the end of the file")
            except _Transient as exc:
                failures = _next_failure(failures, transfer.have > before)
                _wait(target, str(exc), failures, delays, exc.retry_after, sleep)
                transfer.outcome.retries += 1
            except requests.exceptions.RequestException as exc:
                if not is_transient_network_error(exc):
                    raise _network_error(target, exc) from None
                failures = _next_failure(failures, transfer.have > before)
                _wait(target, f"{type(exc).__name__}", failures, delays, None, sleep)
                transfer.outcome.retries += 1


def _next_failure(failures: int, progressed: bool) -> int:
    # A transfer that moved forward since the last failure starts a fresh retry budget.
    return 1 if progressed else failures + 1


def _wait(
    target: Target,
    reason: str,
    failures: int,
    delays: list[float],
    retry_after: float | None,
    sleep: Callable[[float], None],
) -> None:
    if failures > len(delays):
        kept = target.part.stat().st_size if target.part.exists() else 0
        raise DownloadError(
            f"{target.name}: download failed {failures} times in a row ({reason}) from "
            f"{_host(target.url)}; {kept} bytes are kept in {target.part.name}: run again to "
            "resume (raise network.retries for a flaky connection)"
        )
    delay = delays[failures - 1] if retry_after is None else min(retry_after, 300.0)
    log.warning(
        "%s: %s; retry %d of %d in %.1f s", target.name, reason, failures, len(delays), delay
    )
    sleep(delay)


def _finish(transfer: _Transfer) -> None:
    target = transfer.target
    part = target.part
    if not part.exists():
        part.touch()  # an empty file
    have = part.stat().st_size
    if target.size is not None and have != target.size:
        raise DownloadError(f"{target.name}: got {have} bytes, expected {target.size}")
    got = transfer.digest.hexdigest()
    if target.md5 and got != target.md5.lower():
        part.unlink()
        raise ChecksumError(
            f"{target.name}: md5 of the downloaded file is {got} but the inventory says "
            f"{target.md5}; the file was deleted: run again to download it afresh (if it "
            "happens again, the inventory's md5 is wrong: search again to refresh it, or fix "
            "the saved search that `inventory:` names)"
        )
    problem = target.check(part) if target.check is not None else None
    if problem is not None:
        part.unlink()
        raise DownloadError(
            f"{target.name}: the downloaded file is not whole ({problem}); it was deleted: run "
            "again to download it afresh"
        )
    if have >= FSYNC_MIN_BYTES:
        # A crash right after the rename must not leave a complete-looking but empty SLC zip
        # (Snakemake would never fetch it again). Small files (EOFs, tiles) are re-read and
        # checked where they are used, and an fsync costs 0.1-1 s on some disks.
        with open(part, "rb") as handle:
            os.fsync(handle.fileno())
    os.replace(part, target.dest)
    if target.md5:
        record_verified(target.dest, target.md5)  # readers can tell later if it changed
    log.info(
        "%s: %d bytes in %d request(s), %s",
        target.name,
        have,
        transfer.outcome.requests,
        "md5 verified"
        if target.md5
        else "size and content verified (no md5 published)"
        if target.check
        else "size verified (no md5 published)",
    )


def probe(target: Target, session: requests.Session, network: Network = DEFAULT_NETWORK) -> int:
    """Ask for the first byte of ``target`` (through the whole login redirect chain).

    This is the preflight credential check: it proves that Earthdata Login accepts the
    credentials *and* that the data may be downloaded (EULA), for one byte. Returns the
    HTTP status; raises AuthError / DownloadError like a download would.
    """
    delays = backoff_delays(network.retries, network.backoff)
    failures = 0
    while True:
        try:
            with session.get(
                target.url,
                headers={"Range": "bytes=0-0", "Accept-Encoding": "identity"},
                stream=True,
                timeout=(network.timeout, network.timeout),
            ) as resp:
                check_response(resp, target, session)
                return resp.status_code
        except _Transient as exc:
            failures += 1
            _wait(target, str(exc), failures, delays, exc.retry_after, time.sleep)
        except requests.exceptions.RequestException as exc:
            if not is_transient_network_error(exc):
                raise _network_error(target, exc) from None
            failures += 1
            _wait(target, type(exc).__name__, failures, delays, None, time.sleep)


def preflight(
    targets: list[Target],
    cache_dir: Path,
    margin_bytes: int,
    session_factory: Callable[[], requests.Session],
    network: Network = DEFAULT_NETWORK,
    kind: str = "slc",
) -> dict[str, Any]:
    """Before the first byte: free disk for what is still missing, then one login check.
    ``kind``: ``slc`` or ``bursts``, the cache (``cache.<kind>``) the files go to.

    The disk check counts only what is not yet in the cache (a ``.part`` counts its missing
    tail). The login check fetches one byte of the first missing file through the whole
    Earthdata redirect chain, so a wrong password or an unaccepted EULA stops the run here
    with one message instead of in every download job. Nothing missing: no network at all.
    """
    from .disk import check_free_space, format_bytes, remaining_bytes

    # a file of no known size (a burst's TIFF) that is in place was checked when it arrived
    todo = remaining_bytes(
        (t.dest, t.size or t.estimate or 0)
        for t in targets
        if not (t.size is None and _in_place(t))
    )
    report: dict[str, Any] = {
        "files": len(targets),
        "files_to_download": todo.files,
        "bytes_to_download": todo.bytes,
        "margin_bytes": margin_bytes,
    }
    what = f"{todo.files} of {len(targets)} {'burst' if kind == 'bursts' else 'SLC'} file(s)"
    report["free_bytes"] = check_free_space(cache_dir, todo.bytes, margin_bytes, what,
                                            f"cache.{kind}")  # fmt: skip
    log.info(
        "%s to download: %s (+ %s margin), %s free in %s",
        what, format_bytes(todo.bytes), format_bytes(margin_bytes),
        format_bytes(report["free_bytes"]), cache_dir,
    )  # fmt: skip
    if not todo.files:
        log.info("every file is already in the cache: no login check needed")
        return report
    session = session_factory()
    first = next(t for t in targets if not _in_place(t))
    probe(first, session, network)
    credentials = getattr(getattr(session, "auth", None), "credentials", None)
    report["credentials"] = credentials.source if credentials is not None else None
    report["checked_with"] = first.name
    log.info("Earthdata login and data access checked with %s", first.name)
    return report


def _in_place(target: Target) -> bool:
    """The file is there at its size (at any size when that is not known in advance)."""
    dest = target.dest
    return dest.is_file() and (target.size is None or dest.stat().st_size == target.size)


def missing_downloads(destinations: list[Path]) -> list[str]:
    """The preflight rule's params: the names of the files (SLC zips, bursts) still to download."""
    return sorted(p.name for p in destinations if not p.is_file())
