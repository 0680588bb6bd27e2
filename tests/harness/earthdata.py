"""ASF-style product downloads behind an Earthdata-Login-style OAuth redirect.

Two host names point at the one local server, so the client really crosses hosts the way it
does in production (and must decide afresh where credentials may go):

* the **data host** ``127.0.0.1:<port>`` (like datapool.asf.alaska.edu) serves
  ``/SLC/S<A|B|C|D>/<granule>.zip``. Without a valid session cookie or bearer token it answers
  302 to the login host's ``/oauth/authorize?...&redirect_uri=<data host>/login&state=<path>``;
* the **login host** ``localhost:<port>`` (like urs.earthdata.nasa.gov, ``download.edl_host``)
  checks HTTP Basic credentials: none or wrong -> 401; an account that has not approved the
  application -> 200 HTML approval page; otherwise 302 back to ``/login?code=..&state=..``;
* ``/login`` on the data host trades the code for an ``asf-urs`` session cookie and redirects
  to the product again. An account with a pending EULA then gets 403 for products.

Requests reaching a route on the wrong host name get 421 (Misdirected Request). Products are
served with Range support; faults (status codes, dropped connections, a drop after N bytes)
apply to the next authorised product responses. ``rewrite_record`` is a ``cmr.rewrite`` hook
that points CMR records at the served products (URL, BYTES, MD5SUM, and optionally the IPF).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from .server import (
    Fault,
    FaultQueue,
    LocalHTTPSServer,
    Request,
    Response,
    bytes_response,
    text_response,
)

SESSION_COOKIE = "asf-urs"
DEFAULT_USER = ("dinsar-tester", "s3cret-Passw0rd-not-in-logs")
DEFAULT_TOKEN = "edl-token-0123456789abcdef-not-in-logs"


@dataclass(frozen=True)
class Product:
    name: str  # granule
    data: bytes | Path
    size: int
    md5: str
    url: str


class EarthdataEmulator:
    """Products on the data host, login on the login host; see the module docstring."""

    def __init__(
        self,
        server: LocalHTTPSServer,
        users: dict[str, str] | None = None,
        tokens: set[str] | None = None,
    ) -> None:
        self.server = server
        self.data_host = f"127.0.0.1:{server.port}"
        self.edl_host = f"localhost:{server.port}"
        self.users = dict(users or dict([DEFAULT_USER]))
        self.tokens = set(tokens or {DEFAULT_TOKEN})
        self.unapproved: set[str] = set()  # users who never approved the application
        self.eula_pending: set[str] = set()  # users who did not accept the data EULA
        self.products: dict[str, Product] = {}
        self.ipf: dict[str, str] = {}  # granule -> IPF version written into CMR records
        self.faults = FaultQueue()
        self.logins: list[tuple[str, bool]] = []  # (user or "?", accepted) per login attempt
        self._lock = threading.Lock()
        self._drops: deque[int] = deque()
        self._codes: dict[str, str] = {}
        self._sessions: dict[str, str] = {}
        self._routes = [
            server.add_route(
                "GET",
                re.compile(r"/SLC/(?P<plat>S[A-D])/(?P<name>[^/]+)\.zip"),
                self._product,
                name="earthdata-product",
            ),  # fmt: skip
            server.add_route("GET", "/login", self._login, name="earthdata-login-callback"),
            server.add_route(
                "GET", "/oauth/authorize", self._authorize, name="earthdata-authorize"
            ),
        ]

    # -- set-up ---------------------------------------------------------------------------
    @property
    def user(self) -> tuple[str, str]:
        return next(iter(self.users.items()))

    @property
    def token(self) -> str:
        return next(iter(self.tokens))

    def url(self, name: str) -> str:
        return f"https://{self.data_host}/SLC/S{name[2]}/{name}.zip"

    def add_product(self, name: str, data: bytes | Path) -> Product:
        raw = data.read_bytes() if isinstance(data, Path) else data
        product = Product(name, data, len(raw), hashlib.md5(raw).hexdigest(), self.url(name))  # noqa: S324
        with self._lock:
            self.products[name] = product
        return product

    def rewrite_record(self, record: dict[str, Any]) -> None:
        """``cmr.rewrite`` hook: point a CMR record at its served product (if any)."""
        umm = record["umm"]
        name = umm.get("GranuleUR", "").removesuffix("-SLC")
        product = self.products.get(name)
        if product is None:
            return
        for link in umm.get("RelatedUrls", []):
            if link.get("Type") == "GET DATA":
                link["URL"] = product.url
        for attribute in umm.get("AdditionalAttributes", []):
            if attribute.get("Name") == "BYTES":
                attribute["Values"] = [str(product.size)]
            elif attribute.get("Name") == "MD5SUM":
                attribute["Values"] = [product.md5]
        for info in umm.get("DataGranule", {}).get("ArchiveAndDistributionInformation", []):
            info["Size"], info["SizeUnit"] = product.size / 1e6, "MB"
        if name in self.ipf:
            umm.setdefault("PGEVersionClass", {})["PGEVersion"] = self.ipf[name]

    # -- faults ---------------------------------------------------------------------------
    def fail_next(self, status: int = 503, times: int = 1) -> None:
        self.faults.push(Fault(status=status), times)

    def drop_next(self, times: int = 1) -> None:
        """The next product responses are cut before any byte."""
        self.faults.push(Fault(drop=True), times)

    def drop_after(self, nbytes: int, times: int = 1, reset: bool = False) -> None:
        """The next product responses are cut after ``nbytes`` body bytes."""
        with self._lock:
            self._drops.extend([nbytes * (1 if not reset else -1)] * times)

    def reset(self) -> None:
        self.faults.clear()
        with self._lock:
            self._drops.clear()
            self._sessions.clear()
            self._codes.clear()
            self.logins.clear()
        self.unapproved.clear()
        self.eula_pending.clear()

    def close(self) -> None:
        self.reset()
        for route in self._routes:
            route.remove()

    # -- observation ----------------------------------------------------------------------
    def product_requests(self, name: str | None = None) -> list:
        entries = self.server.requests("/SLC/")
        return [e for e in entries if name is None or e.path.endswith(f"/{name}.zip")]

    def bytes_sent(self, name: str | None = None) -> int:
        return sum(e.bytes_sent for e in self.product_requests(name) if e.status in (200, 206))

    # -- handlers -------------------------------------------------------------------------
    def _wrong_host(self, request: Request, wanted: str) -> Response | None:
        if (request.header("Host") or "").lower() != wanted:
            return text_response(f"misdirected: this path lives on {wanted}\n", 421)
        return None

    def _product(self, request: Request) -> Response:
        assert request.match is not None
        product = self.products.get(request.match["name"])
        refused = self.gate(request)
        if refused is not None:
            return refused
        if product is None:
            return text_response("no such product\n", 404)
        return self.serve(request, product.data, "application/zip")

    def gate(self, request: Request) -> Response | None:
        """What a data-host route answers before serving anything: None for an authorised
        request on the data host, else the redirect to the login host, or the refusal."""
        misdirected = self._wrong_host(request, self.data_host)
        if misdirected:
            return misdirected
        user = self._authorised_user(request)
        if user is None:
            bearer = _bearer(request)
            if bearer is not None:  # a token that is not (or no longer) valid
                return text_response("invalid or expired token\n", 401)
            state = request.path
            query = urlencode(
                {
                    "client_id": "dinsar-test-app",
                    "response_type": "code",
                    "redirect_uri": f"https://{self.data_host}/login",
                    "state": state,
                }
            )
            return Response(
                302, b"", [("Location", f"https://{self.edl_host}/oauth/authorize?{query}")]
            )
        if user in self.eula_pending:
            return text_response("You must accept the EULA for this dataset\n", 403)
        return None

    def serve(self, request: Request, data: bytes | Path, content_type: str) -> Response:
        """An authorised response: the next queued fault or drop, else the bytes (with Range)."""
        faulted = self.faults.next_response(
            lambda status: text_response(f"fault {status}\n", status)
        )
        if faulted is not None:
            return faulted
        with self._lock:
            drop = self._drops.popleft() if self._drops else None
        if drop is None:
            return bytes_response(request, data, content_type=content_type)
        return bytes_response(
            request, data, content_type=content_type, drop_after=abs(drop), reset=drop < 0
        )

    def _authorised_user(self, request: Request) -> str | None:
        bearer = _bearer(request)
        if bearer is not None:
            return "token-user" if bearer in self.tokens else None
        cookies = _cookies(request)
        with self._lock:
            return self._sessions.get(cookies.get(SESSION_COOKIE, ""))

    def _authorize(self, request: Request) -> Response:
        misdirected = self._wrong_host(request, self.edl_host)
        if misdirected:
            return misdirected
        params = request.query
        redirect_uri = (params.get("redirect_uri") or [""])[0]
        state = (params.get("state") or [""])[0]
        if not redirect_uri.startswith(f"https://{self.data_host}/"):
            return text_response("unknown redirect_uri\n", 400)
        user, password = _basic(request)
        accepted = user is not None and self.users.get(user) == password
        with self._lock:
            self.logins.append((user or "?", accepted))
        if not accepted:
            return Response(
                401,
                b"Invalid credentials\n",
                [("WWW-Authenticate", 'Basic realm="Please enter your Earthdata Login credentials"'),
                 ("Content-Type", "text/plain")],
            )  # fmt: skip
        if user in self.unapproved:
            page = b"<html><body><h1>Approve application dinsar-test-app</h1></body></html>"
            return Response(200, page, [("Content-Type", "text/html; charset=utf-8")])
        code = secrets.token_hex(8)
        with self._lock:
            self._codes[code] = user  # type: ignore[assignment]
        location = f"{redirect_uri}?{urlencode({'code': code, 'state': state})}"
        return Response(
            302,
            b"",
            [("Location", location), ("Set-Cookie", "urs_user_already_logged=yes; Path=/; Secure")],
        )

    def _login(self, request: Request) -> Response:
        misdirected = self._wrong_host(request, self.data_host)
        if misdirected:
            return misdirected
        code = (request.query.get("code") or [""])[0]
        state = (request.query.get("state") or ["/"])[0]
        with self._lock:
            user = self._codes.pop(code, None)
            if user is None:
                return text_response("invalid code\n", 401)
            session = secrets.token_hex(16)
            self._sessions[session] = user
        if not state.startswith("/") or urlsplit(state).netloc:
            state = "/"
        return Response(
            302,
            b"",
            [("Location", f"https://{self.data_host}{state}"),
             ("Set-Cookie", f"{SESSION_COOKIE}={session}; Path=/; Secure; HttpOnly")],
        )  # fmt: skip


def _bearer(request: Request) -> str | None:
    header = request.header("Authorization") or ""
    return header[7:] if header.startswith("Bearer ") else None


def _basic(request: Request) -> tuple[str | None, str | None]:
    header = request.header("Authorization") or ""
    if not header.startswith("Basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None, None
    return user, password


def _cookies(request: Request) -> dict[str, str]:
    out = {}
    for part in (request.header("Cookie") or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key:
            out[key] = value
    return out


def netrc_text(machine: str, user: str, password: str) -> str:
    return f"machine {machine}\n  login {user}\n  password {password}\n"


__all__ = ["DEFAULT_TOKEN", "DEFAULT_USER", "EarthdataEmulator", "Product", "netrc_text"]
