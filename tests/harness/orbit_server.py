"""The ASF orbit bucket (``s1-orbits``) on the local HTTPS server: S3 listing and EOF files.

* ``GET <prefix>/?prefix=..&marker=..&max-keys=..`` answers an S3 ``ListObjects`` (v1) page:
  keys in byte order after ``marker``, ``IsTruncated``, and per object Key, LastModified,
  ETag (the quoted md5, as S3 gives for single-part uploads), Size, StorageClass.
* ``GET <prefix>/AUX_POEORB/<name>.EOF`` (or AUX_RESORB) serves the bytes, with Range.

Objects are the **real** EOF files from the shared fixtures (their bytes untouched), plus, for
end-to-end runs on dates the fixtures do not cover, re-timed copies of a real POEORB made by
``safe_factory.eof_text`` (real state vectors, moved in time), and listing-only decoys that
should never be chosen. ``page_size`` is small in tests to exercise the paging.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
from pathlib import Path
from xml.sax.saxutils import escape

from .server import (
    Fault,
    FaultQueue,
    LocalHTTPSServer,
    Request,
    Response,
    bytes_response,
    text_response,
)

REAL_EOFS = (
    "sentineleof/S1A_OPER_AUX_POEORB_OPOD_20210307T053325_V20180419T225942_20180421T005942.EOF",
    "sentineleof/S1B_OPER_AUX_POEORB_OPOD_20210313T012515_V20180501T225942_20180503T005942.EOF",
    "s1-reader/S1A_OPER_AUX_RESORB_OPOD_20230823T162050_V20230823T123139_20230823T154909.EOF",
    "s1-reader/S1A_OPER_AUX_RESORB_OPOD_20230823T174849_V20230823T141024_20230823T172754.EOF",
)
EOF_NAME = re.compile(
    r"S1[A-D]_OPER_AUX_(POEORB|RESORB)_OPOD_\d{8}T\d{6}_V\d{8}T\d{6}_\d{8}T\d{6}\.EOF"
)
LAST_MODIFIED = "2024-01-01T00:00:00.000Z"


class OrbitBucket:
    """An emulated public S3 orbit bucket under ``prefix`` (``orbits.asf_url`` = :attr:`url`)."""

    def __init__(
        self, server: LocalHTTPSServer, prefix: str = "/s1-orbits", page_size: int = 1000
    ) -> None:
        self.server = server
        self.prefix = prefix.rstrip("/")
        self.page_size = page_size
        self.faults = FaultQueue()  # applied to file GETs (not to listings)
        self.listing_faults = FaultQueue()
        self._objects: dict[str, tuple[bytes | Path | None, int, str]] = {}
        self._lock = threading.Lock()
        self._routes = [
            server.add_route(
                "GET", re.compile(re.escape(self.prefix) + r"/?"), self._list, name="orbit-listing"
            ),
            server.add_route(
                "GET",
                re.compile(re.escape(self.prefix) + r"/(?P<key>AUX_(POEORB|RESORB)/[^/]+)"),
                self._file,
                name="orbit-file",
            ),  # fmt: skip
        ]

    @property
    def url(self) -> str:
        return self.server.url + self.prefix

    # -- content --------------------------------------------------------------------------
    def add(self, name: str, data: bytes | Path | None, size: int | None = None) -> str:
        """Add an object ``AUX_<type>/<name>``; ``data=None`` makes a listing-only decoy."""
        if not EOF_NAME.fullmatch(name):
            raise ValueError(f"not an orbit file name: {name}")
        key = f"AUX_{name.split('_')[3]}/{name}"
        if data is None:
            size, md5 = size or 4_400_000, hashlib.md5(name.encode()).hexdigest()  # noqa: S324
        else:
            raw = data.read_bytes() if isinstance(data, Path) else data
            size, md5 = len(raw), hashlib.md5(raw).hexdigest()  # noqa: S324
        with self._lock:
            self._objects[key] = (data, size, md5)
        return key

    def add_real(self, shared_dir: Path) -> list[str]:
        """The four real EOF files of the shared fixtures (bytes as recorded)."""
        return [self.add(Path(rel).name, shared_dir / "fixtures" / rel) for rel in REAL_EOFS]

    def add_retimed(
        self, platform: str, start: dt.datetime, stop: dt.datetime, hours: float = 1.0
    ) -> str:
        """A real POEORB re-timed to cover start..stop (naive UTC) +- ``hours``; returns its name."""
        from .safe_factory import eof_text

        name, text, _validity = eof_text(platform, _naive(start), _naive(stop), hours=hours)
        self.add(name, text.encode())
        return name

    def add_decoys(self, names: list[str]) -> None:
        for name in names:
            self.add(name, None)

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._objects)

    def md5(self, name: str) -> str:
        key = f"AUX_{name.split('_')[3]}/{name}"
        return self._objects[key][2]

    def reset(self) -> None:
        self.faults.clear()
        self.listing_faults.clear()

    def clear(self) -> None:
        with self._lock:
            self._objects.clear()
        self.reset()

    def close(self) -> None:
        self.clear()
        for route in self._routes:
            route.remove()

    def fail_next(self, status: int = 503, times: int = 1, listing: bool = False) -> None:
        (self.listing_faults if listing else self.faults).push(Fault(status=status), times)

    def requests(self) -> list:
        return self.server.requests(self.prefix)

    # -- handlers -------------------------------------------------------------------------
    def _list(self, request: Request) -> Response:
        faulted = self.listing_faults.next_response(
            lambda status: text_response("SlowDown\n", status)
        )
        if faulted is not None:
            return faulted
        query = {k: v[-1] for k, v in request.query.items()}
        unsupported = set(query) - {"prefix", "marker", "max-keys", "encoding-type"}
        if unsupported:
            return text_response(f"unsupported listing parameters {sorted(unsupported)}\n", 400)
        prefix, marker = query.get("prefix", ""), query.get("marker", "")
        limit = min(int(query.get("max-keys", "1000")), self.page_size)
        with self._lock:
            keys = [k for k in sorted(self._objects) if k.startswith(prefix) and k > marker]
            page = keys[:limit]
            rows = [(k, *self._objects[k][1:]) for k in page]
        contents = "".join(
            f"<Contents><Key>{escape(k)}</Key><LastModified>{LAST_MODIFIED}</LastModified>"
            f"<ETag>&quot;{md5}&quot;</ETag><Size>{size}</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents>"
            for k, size, md5 in rows
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>s1-orbits</Name><Prefix>{escape(prefix)}</Prefix><Marker>{escape(marker)}</Marker>"
            f"<MaxKeys>{limit}</MaxKeys><IsTruncated>{'true' if len(keys) > limit else 'false'}</IsTruncated>"
            f"{contents}</ListBucketResult>"
        )
        return Response(200, body.encode(), [("Content-Type", "application/xml")])

    def _file(self, request: Request) -> Response:
        assert request.match is not None
        key = request.match["key"]
        with self._lock:
            item = self._objects.get(key)
        if item is None or item[0] is None:
            return Response(
                404, b"<Error><Code>NoSuchKey</Code></Error>", [("Content-Type", "application/xml")]
            )
        faulted = self.faults.next_response(lambda status: text_response("fault\n", status))
        if faulted is not None:
            return faulted
        data, _size, md5 = item
        return bytes_response(
            request, data, content_type="binary/octet-stream", headers=[("ETag", f'"{md5}"')]
        )


def _naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


__all__ = ["REAL_EOFS", "OrbitBucket", "aux_cal_zip", "serve_aux_cal"]


def aux_cal_zip(platform: str, safe_names: tuple[str, ...] = ()) -> bytes:
    """A small AUX_CAL bundle laid out like the SAR MPC one: <S1x>/AUX_CAL/<y>/<m>/<d>/<name>.SAFE/."""
    import io
    import zipfile

    names = safe_names or (
        f"{platform}_AUX_CAL_V20140915T100000_G20151125T103928.SAFE",
        f"{platform}_AUX_CAL_V20190228T092500_G20210104T141310.SAFE",
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            validity = name.split("_V")[1][:8]
            folder = f"{platform}/AUX_CAL/{validity[:4]}/{validity[4:6]}/{validity[6:]}/{name}"
            archive.writestr(
                zipfile.ZipInfo(f"{folder}/manifest.safe", (2020, 1, 1, 0, 0, 0)), "<xfdu/>"
            )
            xml = f"<auxiliaryCalibration><platform>{platform}</platform></auxiliaryCalibration>"
            archive.writestr(
                zipfile.ZipInfo(
                    f"{folder}/data/{platform.lower()}-aux-cal.xml", (2020, 1, 1, 0, 0, 0)
                ),
                xml,
            )
    return buffer.getvalue()


def serve_aux_cal(server: LocalHTTPSServer, prefix: str = "/aux-cal") -> str:
    """Serve ``<prefix>/S1x_AUX_CAL_<version>.zip`` bundles; returns the base URL (``orbits.aux_cal_url``)."""
    pattern = re.compile(re.escape(prefix) + r"/(?P<plat>S1[A-D])_AUX_CAL_\d{8}\.zip")

    def handler(request: Request) -> Response:
        assert request.match is not None
        return bytes_response(
            request, aux_cal_zip(request.match["plat"]), content_type="application/zip"
        )

    server.add_route("GET", pattern, handler, name="aux-cal")
    return server.url + prefix
