"""Precise (POEORB) or restituted (RESORB) orbit files per acquisition date.

sentineleof provides the naming rules (``eof.products.SentinelOrbit``) and the choice among
candidates (``eof._select_orbit.last_valid_orbit``: the newest file whose validity covers the
acquisition plus a margin). The listing and the transfer are ours, because sentineleof's ASF
client hard-codes the bucket host, ignores ``network.ca_bundle`` (bare ``requests.get``, no
timeout, no retry), lists the whole bucket into ``~/.cache``, and writes straight to the final
file name, so a dropped transfer leaves a truncated EOF that it then skips as "already
exists". Here the bucket URL comes from ``orbits.asf_url``, the listing starts at the
acquisition date (keys sort by creation time), and files arrive through the verified,
resumable downloader (size + md5 from the bucket's ETag) before their content is checked.

CDSE (``orbits.source: cdse``) uses sentineleof's Copernicus Data Space query and token
functions, then the same downloader with the bearer token.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from .config import Network, Orbits
from .download import DEFAULT_NETWORK, DownloadError, Target, download
from .eof import EofContent, EofError, read_eof
from .errors import DinsarError
from .records import OrbitEntry
from .retry import is_transient_network_error, network_failure, unresolved_host, with_retries

log = logging.getLogger(__name__)

ASF_ORBIT_BUCKET = "https://s1-orbits.s3.amazonaws.com"
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
ORBIT_TYPES = ("POEORB", "RESORB")
EOF_NAME = re.compile(
    r"^(?P<mission>S1[A-D])_OPER_AUX_(?P<type>POEORB|RESORB)_OPOD_(?P<created>\d{8}T\d{6})_"
    r"V(?P<start>\d{8}T\d{6})_(?P<stop>\d{8}T\d{6})\.EOF$"
)
# RESORB files are published within hours of the pass: none created later than this covers it.
RESORB_PUBLISH_DAYS = 2
CDSE_MACHINE = "dataspace.copernicus.eu"


class OrbitError(DinsarError):
    """No orbit file covers an acquisition, or one could not be fetched or read."""


@dataclass(frozen=True)
class OrbitRequest:
    """One platform's acquisition on one date: the orbit must cover start..stop (+ margin)."""

    date: str
    platform: str
    start: dt.datetime  # aware UTC: first slice start
    stop: dt.datetime  # last slice stop
    granules: tuple[str, ...]

    def window(self) -> str:
        return f"{self.platform} {self.start:%Y-%m-%dT%H:%M:%S}..{self.stop:%H:%M:%S} UTC"


def orbit_requests(date: str, acquisitions: Iterable[Any]) -> list[OrbitRequest]:
    """One request per platform acquired on ``date`` (``Stack.by_date[date]``)."""
    by_platform: dict[str, list[Any]] = {}
    for acq in acquisitions:
        for scene in acq.scenes:
            by_platform.setdefault(scene.platform, []).append(scene)
    return [
        OrbitRequest(
            date=date,
            platform=platform,
            start=min(s.start_time for s in scenes),
            stop=max(s.stop_time for s in scenes),
            granules=tuple(sorted(s.granule for s in scenes)),
        )
        for platform, scenes in sorted(by_platform.items())
    ]


def orbit_params(date: str, acquisitions: Sequence[Any], cfg: Any) -> dict[str, Any]:
    """The ``orbits`` rule's params: what to cover (a changed acquisition re-runs the job)."""
    if not acquisitions:
        raise OrbitError(f"no usable acquisition on {date}; the plan has no such date")
    return {
        "requests": [request_to_params(r) for r in orbit_requests(date, acquisitions)],
        "precise_only": cfg.orbits.precise_only,
        "margin_seconds": cfg.orbits.margin_seconds,
    }


def request_to_params(request: OrbitRequest) -> dict[str, Any]:
    """JSON-able form (Snakemake params: a change of the acquisition re-runs the job)."""
    return {
        "date": request.date,
        "platform": request.platform,
        "start": request.start.isoformat(),
        "stop": request.stop.isoformat(),
        "granules": list(request.granules),
    }


def request_from_params(data: Mapping[str, Any]) -> OrbitRequest:
    return OrbitRequest(
        date=str(data["date"]),
        platform=str(data["platform"]),
        start=_aware(dt.datetime.fromisoformat(str(data["start"]))),
        stop=_aware(dt.datetime.fromisoformat(str(data["stop"]))),
        granules=tuple(data["granules"]),
    )


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _naive(value: dt.datetime) -> dt.datetime:
    """sentineleof compares naive UTC datetimes."""
    return value.astimezone(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Candidate:
    """An orbit file we could use: in the cache (``path``) or remote (``url``)."""

    name: str
    url: str | None = None
    path: Path | None = None
    size: int | None = None
    md5: str | None = None
    bearer: bool = False  # CDSE downloads need the access token

    @property
    def orbit_type(self) -> str:
        return self.name.split("_")[3]

    @property
    def validity(self) -> tuple[dt.datetime, dt.datetime]:
        match = EOF_NAME.match(self.name)
        assert match, self.name
        fmt = "%Y%m%dT%H%M%S"
        return (
            dt.datetime.strptime(match["start"], fmt).replace(tzinfo=dt.UTC),
            dt.datetime.strptime(match["stop"], fmt).replace(tzinfo=dt.UTC),
        )


def select(
    candidates: Sequence[Candidate], request: OrbitRequest, margin: dt.timedelta
) -> Candidate | None:
    """The newest candidate whose validity covers the acquisition with ``margin`` (sentineleof's rule)."""
    from eof._select_orbit import ValidityError, last_valid_orbit
    from eof.products import SentinelOrbit

    usable = [
        c for c in candidates if EOF_NAME.match(c.name) and c.name.startswith(request.platform)
    ]
    if not usable:
        return None
    try:
        chosen = last_valid_orbit(
            _naive(request.start),
            _naive(request.stop),
            [SentinelOrbit(c.name) for c in usable],
            margin0=margin,
            margin1=margin,
        )
    except ValidityError:
        return None
    return next(c for c in usable if c.name == chosen)


def local_candidates(cache_dir: Path, platform: str, orbit_type: str) -> list[Candidate]:
    return [
        Candidate(name=p.name, path=p)
        for p in sorted(cache_dir.glob(f"{platform}_OPER_AUX_{orbit_type}_OPOD_*.EOF"))
        if EOF_NAME.match(p.name)
    ]


# --- the ASF bucket ---------------------------------------------------------------------------


def _etag_md5(etag: str | None) -> str | None:
    """An S3 ETag is the md5 of the object unless it was a multipart upload ("<hex>-<n>")."""
    value = (etag or "").strip('"').lower()
    return value if re.fullmatch(r"[0-9a-f]{32}", value) else None


def parse_listing(xml_bytes: bytes) -> tuple[list[dict[str, Any]], bool]:
    """(objects, is_truncated) of one S3 ListObjects (v1) page."""
    try:
        root = ET.fromstring(xml_bytes)
    except ET.ParseError as exc:
        raise OrbitError(
            f"the orbit bucket answered with something that is not XML ({exc})"
        ) from None
    objects = []
    for contents in root.iter(f"{S3_NS}Contents"):
        objects.append(
            {
                "key": contents.findtext(f"{S3_NS}Key") or "",
                "size": int(contents.findtext(f"{S3_NS}Size") or 0),
                "etag": contents.findtext(f"{S3_NS}ETag"),
            }
        )
    truncated = (root.findtext(f"{S3_NS}IsTruncated") or "").lower() == "true"
    return objects, truncated


def list_bucket(
    session: requests.Session,
    base_url: str,
    request: OrbitRequest,
    orbit_type: str,
    network: Network,
) -> list[Candidate]:
    """Bucket entries that can cover the request: created from the day before it on.

    Keys are ``AUX_<type>/<name>`` and names sort by creation time, so starting the listing
    at the acquisition date skips years of older files (sentineleof lists them all).
    """
    prefix = f"AUX_{orbit_type}/{request.platform}_OPER_AUX_{orbit_type}_OPOD_"
    after = request.start - dt.timedelta(days=1)
    until = (
        request.stop + dt.timedelta(days=RESORB_PUBLISH_DAYS) if orbit_type == "RESORB" else None
    )
    marker = prefix + after.strftime("%Y%m%dT%H%M%S")
    found: list[Candidate] = []
    base = base_url.rstrip("/")
    while True:
        url = f"{base}/?{urlencode({'prefix': prefix, 'marker': marker})}"

        def fetch(url: str = url) -> bytes:
            response = session.get(url, timeout=(network.timeout, network.timeout))
            if response.status_code >= 500 or response.status_code == 429:
                raise _RetryableHTTP(f"HTTP {response.status_code}")
            if response.status_code != 200:
                raise OrbitError(
                    f"listing the orbit bucket {base} failed (HTTP {response.status_code}); "
                    "check orbits.asf_url"
                )
            return response.content

        page = with_retries(
            fetch, _retryable, network.retries, network.backoff, f"orbit listing at {base}"
        )
        objects, truncated = parse_listing(page)
        stop_listing = False
        for obj in objects:
            name = obj["key"].rsplit("/", 1)[-1]
            match = EOF_NAME.fullmatch(name)  # $ alone would accept a trailing newline
            # the key becomes a URL path and the name a file name: only the plain layout
            if not match or obj["key"] != f"AUX_{orbit_type}/{name}":
                continue
            created = dt.datetime.strptime(match["created"], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
            if until is not None and created > until:
                stop_listing = True
                break
            found.append(
                Candidate(
                    name=name,
                    url=f"{base}/{obj['key']}",
                    size=obj["size"] or None,
                    md5=_etag_md5(obj["etag"]),
                )
            )
        if stop_listing or not truncated or not objects:
            return found
        marker = objects[-1]["key"]


class _RetryableHTTP(requests.exceptions.HTTPError):
    """A 5xx or 429 from the bucket: worth another try."""


def _retryable(exc: BaseException) -> bool:
    # ChunkedEncodingError: a listing cut short (Content-Length not reached), as a reset is
    return isinstance(exc, _RetryableHTTP) or is_transient_network_error(exc)


# --- CDSE -------------------------------------------------------------------------------------


def cdse_candidates(
    request: OrbitRequest, orbit_type: str, margin: dt.timedelta
) -> list[Candidate]:
    """Query the Copernicus Data Space catalogue (through sentineleof) for covering files."""
    from eof.dataspace_client import DOWNLOAD_URL, DataspaceClient

    try:
        results = DataspaceClient.query_orbit(
            _naive(request.start) - margin,
            _naive(request.stop) + margin,
            request.platform,
            product_type=f"AUX_{orbit_type}",
        )
    except requests.RequestException as exc:
        raise OrbitError(
            f"the Copernicus Data Space catalogue could not be queried ({type(exc).__name__}); "
            "this needs network access to it; check this machine's network, or use "
            "orbits.source: asf"
        ) from None
    out = []
    for item in results:
        md5 = next(
            (c.get("Value") for c in item.get("Checksum") or [] if c.get("Algorithm") == "MD5"),
            None,
        )
        name = str(item["Name"])
        out.append(
            Candidate(
                name=name if name.endswith(".EOF") else f"{name}.EOF",
                url=f"{DOWNLOAD_URL}({item['Id']})/$value",
                size=item.get("ContentLength") or None,
                md5=md5.lower() if md5 else None,
                bearer=True,
            )
        )
    return out


def cdse_session(ca_bundle: str | None, env: Mapping[str, str] | None = None) -> requests.Session:
    """A session carrying a CDSE access token (credentials from .netrc or CDSE_USERNAME/PASSWORD)."""
    from eof.dataspace_client import get_access_token

    from .credentials import _netrc_entry, netrc_path
    from .net import pin_ca_bundle

    env = os.environ if env is None else env
    path = netrc_path(env)
    entry = _netrc_entry(path, CDSE_MACHINE)
    if entry is not None:
        source = f"{path} (machine {CDSE_MACHINE})"
        user, password = entry
    elif env.get("CDSE_USERNAME") and env.get("CDSE_PASSWORD"):
        source = "the environment (CDSE_USERNAME/CDSE_PASSWORD)"
        user, password = env["CDSE_USERNAME"], env["CDSE_PASSWORD"]
    else:
        raise OrbitError(
            f"orbits.source is cdse but no Copernicus Data Space credentials were found: add "
            f"'machine {CDSE_MACHINE} login <user> password <password>' to {path}, or set "
            "CDSE_USERNAME and CDSE_PASSWORD, or use orbits.source: asf (no login needed)"
        )
    log.info("CDSE credentials: user %r from %s", user, source)
    try:
        token = get_access_token(user, password, env.get("CDSE_TOTP"))
    except RuntimeError:
        raise OrbitError(
            f"Copernicus Data Space refused the login of user {user!r} from {source}: check "
            "the password (and CDSE_TOTP if two-factor login is on)"
        ) from None
    session = pin_ca_bundle(requests.Session(), ca_bundle)
    session.headers["Authorization"] = f"Bearer {token}"
    return session


# --- choosing and fetching --------------------------------------------------------------------


def check_covers(content: EofContent, name: str, request: OrbitRequest, margin: dt.timedelta
                 ) -> None:  # fmt: skip
    """Raise unless the file's header and state vectors cover the acquisition with the margin."""
    problems = content.gaps(request.start, request.stop, margin.total_seconds(), request.platform)
    if problems:
        raise OrbitError(
            f"orbit file {name} does not cover {request.window()} with a "
            f"{margin.total_seconds():.0f} s margin: {'; '.join(problems)}"
        )


def _read(path: Path) -> EofContent:
    try:
        return read_eof(path)
    except EofError as exc:
        raise OrbitError(str(exc)) from None


def _entry(request: OrbitRequest, path: Path, content: EofContent) -> OrbitEntry:
    return OrbitEntry(
        platform=request.platform,
        type=content.file_type.removeprefix("AUX_"),
        file=str(path.resolve()),
        validity=[_iso(content.validity[0]), _iso(content.validity[1])],
        granules=list(request.granules),
    )


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _use_local(
    candidate: Candidate, request: OrbitRequest, margin: dt.timedelta
) -> OrbitEntry | None:
    assert candidate.path is not None
    try:
        content = _read(candidate.path)
        check_covers(content, candidate.name, request, margin)
    except OrbitError as exc:
        log.warning("ignoring cached %s: %s", candidate.name, exc)
        return None
    log.info("%s: using cached %s", request.window(), candidate.name)
    return _entry(request, candidate.path, content)


def _fetch(
    candidate: Candidate,
    request: OrbitRequest,
    margin: dt.timedelta,
    cache_dir: Path,
    network: Network,
    session: requests.Session,
) -> OrbitEntry:
    assert candidate.url is not None
    dest = cache_dir / candidate.name
    target = Target(candidate.url, dest, candidate.size, candidate.md5, candidate.name)
    download(target, session, network)
    content = _read(dest)
    try:
        check_covers(content, candidate.name, request, margin)
    except OrbitError:
        dest.unlink(missing_ok=True)  # its name promised coverage its content does not give
        raise
    return _entry(request, dest, content)


def find_orbit(
    request: OrbitRequest,
    settings: Orbits,
    cache_dir: Path,
    network: Network = DEFAULT_NETWORK,
    session: requests.Session | None = None,
    cdse: requests.Session | Callable[[], requests.Session] | None = None,
) -> OrbitEntry:
    """The manifest entry of the best orbit for ``request``: POEORB, else RESORB (unless precise_only).

    A covering POEORB already in the cache makes no request. Network trouble while looking
    for a POEORB falls back to a cached RESORB (with a warning) rather than failing.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    margin = dt.timedelta(seconds=settings.margin_seconds)
    asf_url = settings.asf_url or ASF_ORBIT_BUCKET
    types = ("POEORB",) if settings.precise_only else ORBIT_TYPES
    local = {
        t: select(
            local_candidates(cache_dir, request.platform, t), request, margin
        )
        for t in types
    }
    if local.get("POEORB") is not None:
        entry = _use_local(local["POEORB"], request, margin)
        if entry:
            return entry
    problems: list[str] = []
    for orbit_type in types:
        try:
            if settings.source == "cdse":
                candidates = cdse_candidates(request, orbit_type, margin)
                if callable(cdse):  # log in only once a download is needed
                    cdse = cdse()
                fetch_session = cdse
            else:
                assert session is not None
                candidates = list_bucket(
                    session, asf_url, request, orbit_type, network
                )
                fetch_session = session
            chosen = select(candidates, request, margin)
            if chosen is None:
                problems.append(f"no {orbit_type} covers it")
                if orbit_type == "POEORB" and not settings.precise_only:
                    log.warning(
                        "%s: no precise orbit (POEORB) yet; falling back to a restituted one "
                        "(RESORB)",
                        request.window(),
                    )
            else:
                if fetch_session is None:
                    raise OrbitError("internal: no session for the orbit download")
                log.info("%s: %s", request.window(), chosen.name)
                return _fetch(chosen, request, margin, cache_dir, network, fetch_session)
        except (DownloadError, requests.RequestException) as exc:
            problems.append(f"{orbit_type}: {exc}")
            cached = local.get(orbit_type) or (
                local.get("RESORB") if orbit_type == "POEORB" else None
            )
            if cached is not None:
                entry = _use_local(cached, request, margin)
                if entry:
                    log.warning(
                        "%s: orbit server unreachable (%s); using cached %s",
                        request.window(),
                        exc,
                        cached.name,
                    )
                    return entry
            where = asf_url if settings.source == "asf" else "Copernicus Data Space"
            setting = "orbits.asf_url" if settings.source == "asf" else "orbits.source"
            if unresolved_host(exc) is not None:  # no retry: the next try fails the same way
                raise OrbitError(
                    f"orbit for {request.window()} could not be fetched from {where}: "
                    f"{network_failure(exc, setting)}"
                ) from None
            # a requests exception's text is a repr of urllib3 internals: its class says enough
            reason = (
                str(exc)
                if isinstance(exc, (DownloadError, _RetryableHTTP))
                else f"{type(exc).__name__} after {network.retries} retries"
            )
            raise OrbitError(
                f"orbit for {request.window()} could not be fetched from {where}: {reason}; run "
                "again later (raise network.retries for a flaky connection); this step needs "
                f"access to {where}"
            ) from None
        if orbit_type == "RESORB" and local.get("RESORB") is not None:
            entry = _use_local(local["RESORB"], request, margin)
            if entry:
                return entry
    margin_s = margin.total_seconds()
    if settings.precise_only:
        raise OrbitError(
            f"no precise orbit (POEORB) covers {request.window()} (+-{margin_s:.0f} s) and "
            "orbits.precise_only is true: POEORBs appear about 3 weeks after the acquisition; "
            "wait, or set orbits.precise_only: false to accept a restituted orbit (RESORB)"
        )
    raise OrbitError(
        f"no orbit file covers {request.window()} (+-{margin_s:.0f} s): "
        f"{'; '.join(problems)}; check the dates (an acquisition within the last hours has no "
        "orbit yet) or lower orbits.margin_seconds"
    )


