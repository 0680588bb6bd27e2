"""A threaded HTTPS server on 127.0.0.1 that hosts emulated services for the tests.

Why not a mock: the code under test (asf_search, requests, our download code, Snakemake
subprocesses) must go through real sockets, TLS, HTTP framing, keep-alive, Range and
broken connections. The server runs in a background thread of the pytest process, so it
keeps serving while a test waits for a ``snakemake`` subprocess.

Handler API
-----------
``server.add_route(method, path, handler)`` registers ``handler(request) -> Response``.
``path`` is a string prefix or a compiled regex (full match; groups in ``request.match``).
The most recently added matching route wins, so a test can shadow a service temporarily
and ``route.remove()`` it afterwards. HEAD falls back to the GET route (body not sent).

* ``Response.body`` may be ``bytes``/``str`` (sent with Content-Length) or any iterable of
  ``bytes`` chunks (streamed; chunked transfer encoding unless the handler sets
  Content-Length itself).
* Raise :class:`DropConnection` from the handler *or from inside the body iterable* to
  abort the connection at that point (RST by default, FIN with ``reset=False``). If the
  body ends before the declared Content-Length, the connection is closed too, so the
  client sees a truncated body.
* :func:`bytes_response` serves a byte string or file with ``Range`` support (206/416)
  and can drop the connection after N bytes.
* :class:`FaultQueue` / :class:`Fault` let an emulator inject "next N requests fail" faults
  (status, delay/hang, dropped connection).

Every request is logged (:class:`LogEntry`: method, path, headers, status, bytes sent,
dropped) - see :meth:`LocalHTTPSServer.requests` and :meth:`LocalHTTPSServer.clear_log`.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from requests.structures import CaseInsensitiveDict

Body = bytes | str | Iterable[bytes]
Headers = list[tuple[str, str]]
Handler = Callable[["Request"], "Response"]

_FORM_TYPE = "application/x-www-form-urlencoded"
_MAX_LOGGED_BODY = 64 * 1024


class DropConnection(Exception):
    """Abort the connection instead of (or in the middle of) a response.

    ``reset=True`` closes with a TCP RST (client: connection reset, and the kernel may
    discard bytes already sent but not yet read, so the client can see fewer than
    ``LogEntry.bytes_sent``); ``reset=False`` closes with a FIN (client: body truncated at
    exactly the bytes sent). No TLS close_notify is sent in either case, like a crashed or
    cut-off server.
    """

    def __init__(self, reset: bool = True, reason: str = "connection dropped by handler") -> None:
        super().__init__(reason)
        self.reset = reset


@dataclass(frozen=True)
class Request:
    """What a handler sees of one HTTP request."""

    method: str
    path: str
    query_string: str
    headers: CaseInsensitiveDict[str]
    body: bytes
    client: tuple[str, int]
    match: re.Match[str] | None = None

    def header(self, name: str, default: str | None = None) -> str | None:
        """Case-insensitive header lookup."""
        return self.headers.get(name, default)

    @property
    def query(self) -> dict[str, list[str]]:
        """Query-string parameters, values in order of appearance."""
        result: dict[str, list[str]] = {}
        for key, value in parse_qsl(self.query_string, keep_blank_values=True):
            result.setdefault(key, []).append(value)
        return result

    def params(self) -> list[tuple[str, str]]:
        """Query-string pairs followed by form-encoded body pairs (how CMR reads a POST)."""
        pairs = parse_qsl(self.query_string, keep_blank_values=True)
        content_type = (self.header("Content-Type") or "").split(";")[0].strip().lower()
        if self.body and content_type == _FORM_TYPE:
            pairs += parse_qsl(self.body.decode("utf-8"), keep_blank_values=True)
        return pairs

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


@dataclass
class Response:
    """A handler's answer. ``headers`` may be given as a dict or a list of pairs."""

    status: int = 200
    body: Body = b""
    headers: Headers = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.headers, Mapping):
            self.headers = list(self.headers.items())
        else:
            self.headers = list(self.headers)

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive)."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


def json_response(
    payload: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()
) -> Response:
    """JSON body with the matching content type."""
    body = json.dumps(payload).encode("utf-8")
    return Response(status, body, [("Content-Type", "application/json"), *headers])


def text_response(text: str, status: int = 200) -> Response:
    """Plain-text body (used for 404s and handler crashes)."""
    return Response(status, text.encode("utf-8"), [("Content-Type", "text/plain; charset=utf-8")])


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """Parse a single-range ``Range`` header against a resource of ``size`` bytes.

    Returns ``(first, last)`` (inclusive), ``None`` to serve the whole resource (no header,
    a multi-range or malformed header - which RFC 9110 allows a server to ignore), or
    ``"unsatisfiable"`` for a 416.
    """
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first_text, last_text = match.groups()
    if first_text == "":
        suffix = int(last_text)
        if suffix == 0:
            return "unsatisfiable"
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    last = size - 1 if last_text == "" else min(int(last_text), size - 1)
    if first >= size or last < first:
        return "unsatisfiable"
    return first, last


def bytes_response(
    request: Request,
    data: bytes | Path,
    *,
    content_type: str = "application/octet-stream",
    chunk_size: int = 64 * 1024,
    drop_after: int | None = None,
    reset: bool = True,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """Serve ``data`` (bytes, or a file read lazily) honouring a single ``Range`` request.

    ``drop_after=N`` aborts the connection after N body bytes of *this* response, which
    is how a download test simulates a connection lost mid-transfer.
    """
    size = data.stat().st_size if isinstance(data, Path) else len(data)
    extra = [("Accept-Ranges", "bytes"), ("Content-Type", content_type), *headers]
    wanted = parse_range(request.header("Range"), size)
    if wanted == "unsatisfiable":
        return Response(416, b"", [("Content-Range", f"bytes */{size}"), *extra])
    if wanted is None:
        status, first, last = 200, 0, size - 1
    else:
        assert isinstance(wanted, tuple)
        status, (first, last) = 206, wanted
        extra.append(("Content-Range", f"bytes {first}-{last}/{size}"))
    length = max(last - first + 1, 0)
    chunks = _iter_slice(data, first, length, chunk_size)
    if drop_after is not None:
        chunks = _drop_after(chunks, drop_after, reset)
    return Response(status, chunks, [("Content-Length", str(length)), *extra])


def _iter_slice(data: bytes | Path, first: int, length: int, chunk_size: int) -> Iterator[bytes]:
    if isinstance(data, Path):
        with data.open("rb") as handle:
            handle.seek(first)
            remaining = length
            while remaining > 0:
                chunk = handle.read(min(chunk_size, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk
        return
    for offset in range(first, first + length, chunk_size):
        yield data[offset : min(offset + chunk_size, first + length)]


def _drop_after(chunks: Iterable[bytes], limit: int, reset: bool) -> Iterator[bytes]:
    sent = 0
    for chunk in chunks:
        if sent + len(chunk) >= limit:
            if limit > sent:
                yield chunk[: limit - sent]
            raise DropConnection(reset=reset, reason=f"dropped after {limit} bytes")
        sent += len(chunk)
        yield chunk
    raise DropConnection(reset=reset, reason=f"dropped after {limit} bytes (end of body)")


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour for one request.

    Order of effects: wait ``delay`` seconds (cut short by :meth:`FaultQueue.clear`), then
    drop the connection if ``drop``, else answer ``status`` if set, else carry on normally
    (a delay-only fault is just a slow response).
    """

    status: int | None = None
    drop: bool = False
    reset: bool = True
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None


class FaultQueue:
    """Thread-safe FIFO of :class:`Fault` s, one consumed per request by an emulator."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()
        self._release = threading.Event()

    def push(self, fault: Fault, times: int = 1) -> None:
        """Make the next ``times`` requests (after those already queued) suffer ``fault``."""
        with self._lock:
            self._queue.extend([fault] * times)

    def pending(self) -> int:
        """Faults not yet consumed."""
        with self._lock:
            return len(self._queue)

    def clear(self) -> None:
        """Forget queued faults and wake requests currently sleeping in a ``delay``."""
        with self._lock:
            self._queue.clear()
            self._release.set()
            self._release = threading.Event()

    def next_response(self, error_response: Callable[[int], Response]) -> Response | None:
        """Consume one fault and act on it; ``None`` means "handle the request normally"."""
        with self._lock:
            fault = self._queue.popleft() if self._queue else None
            release = self._release
        if fault is None:
            return None
        if fault.delay > 0:
            release.wait(fault.delay)
        if fault.drop:
            raise DropConnection(reset=fault.reset, reason="injected fault")
        if fault.status is None:
            return None
        response = (
            error_response(fault.status)
            if fault.body is None
            else Response(fault.status, fault.body)
        )
        response.headers.extend(fault.headers)
        return response


@dataclass
class Route:
    """A registered handler; ``remove()`` unregisters it."""

    methods: frozenset[str] | None
    pattern: str | re.Pattern[str]
    handler: Handler
    name: str
    server: LocalHTTPSServer | None = field(default=None, repr=False)

    def match(self, method: str, path: str) -> tuple[bool, re.Match[str] | None]:
        """Whether this route serves ``method path`` (and the regex match, if any)."""
        if self.methods is not None and method not in self.methods:
            return False, None
        if isinstance(self.pattern, re.Pattern):
            found = self.pattern.fullmatch(path)
            return found is not None, found
        return path.startswith(self.pattern), None

    def remove(self) -> None:
        """Unregister from the server (idempotent)."""
        if self.server is not None:
            self.server.remove_route(self)


@dataclass
class LogEntry:
    """One request as seen by the server. ``status`` is None while in flight."""

    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes
    started: float
    route: str | None = None
    status: int | None = None
    response_headers: Headers = field(default_factory=list)
    bytes_sent: int = 0
    dropped: bool = False
    error: str | None = None
    duration: float | None = None

    def header(self, name: str) -> str | None:
        """Case-insensitive request header lookup."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def response_header(self, name: str) -> str | None:
        """Case-insensitive response header lookup."""
        lowered = name.lower()
        return next((v for k, v in self.response_headers if k.lower() == lowered), None)


class LocalHTTPSServer:
    """HTTPS server on 127.0.0.1 with an OS-chosen port, serving from a background thread."""

    def __init__(self, ssl_context: ssl.SSLContext, host: str = "127.0.0.1") -> None:
        self.ssl_context = ssl_context
        self._bind_host = host
        self._routes: list[Route] = []
        self._routes_lock = threading.Lock()
        self._log: list[LogEntry] = []
        self._log_cond = threading.Condition()
        self._in_flight = 0
        self._errors: list[str] = []
        self._connections: set[ssl.SSLSocket] = set()
        self._connections_lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _ThreadingTLSServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> LocalHTTPSServer:
        """Bind and start serving in a daemon thread."""
        if self._httpd is not None:
            return self
        self._httpd = _ThreadingTLSServer((self._bind_host, 0), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"https-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, wake sleeping handlers and cut open keep-alive connections."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> LocalHTTPSServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        """The bound port."""
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` - what asf_search and our config call a host."""
        return f"{self._bind_host}:{self.port}"

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``."""
        return f"https://{self.host}"

    def wait(self, seconds: float) -> bool:
        """Sleep inside a handler without blocking shutdown; True if the server is closing."""
        return self._stopping.wait(seconds)

    # -- routes ----------------------------------------------------------------------
    def add_route(
        self,
        method: str | Iterable[str],
        path: str | re.Pattern[str],
        handler: Handler,
        *,
        name: str | None = None,
    ) -> Route:
        """Register ``handler`` for ``method`` ("*" = any) on a path prefix or regex."""
        if isinstance(method, str):
            methods = None if method == "*" else frozenset({method.upper()})
        else:
            methods = frozenset(m.upper() for m in method)
        label = name or getattr(handler, "__qualname__", repr(handler))
        route = Route(methods, path, handler, label, server=self)
        with self._routes_lock:
            self._routes.append(route)
        return route

    def remove_route(self, route: Route) -> None:
        """Unregister ``route`` if present."""
        with self._routes_lock:
            if route in self._routes:
                self._routes.remove(route)

    def _find_route(self, method: str, path: str) -> tuple[Route | None, re.Match[str] | None]:
        with self._routes_lock:
            routes = list(reversed(self._routes))
        for wanted in (method, "GET") if method == "HEAD" else (method,):
            for route in routes:
                ok, found = route.match(wanted, path)
                if ok:
                    return route, found
        return None, None

    # -- request log -----------------------------------------------------------------
    def requests(self, path_prefix: str | None = None, *, settle: float = 2.0) -> list[LogEntry]:
        """Snapshot of the log (optionally only paths starting with ``path_prefix``).

        Waits up to ``settle`` seconds for in-flight requests to finish first, because a
        client can return before the server thread has finished its bookkeeping.
        """
        with self._log_cond:
            self._log_cond.wait_for(lambda: self._in_flight == 0, timeout=settle)
            entries = [replace(entry) for entry in self._log]
        if path_prefix is None:
            return entries
        return [entry for entry in entries if entry.path.startswith(path_prefix)]

    def clear_log(self) -> None:
        """Forget logged requests (in-flight ones are still completed in their entry)."""
        with self._log_cond:
            self._log.clear()

    def take_errors(self) -> list[str]:
        """Return and forget tracebacks of handler crashes (each also answered with a 500)."""
        with self._log_cond:
            errors = list(self._errors)
            self._errors.clear()
        return errors

    def _log_start(self, request: Request) -> LogEntry:
        entry = LogEntry(
            method=request.method,
            path=request.path,
            query_string=request.query_string,
            headers=dict(request.headers.items()),
            body=request.body[:_MAX_LOGGED_BODY],
            started=time.time(),
        )
        with self._log_cond:
            self._log.append(entry)
            self._in_flight += 1
        return entry

    def _log_finish(self, entry: LogEntry) -> None:
        with self._log_cond:
            entry.duration = time.time() - entry.started
            self._in_flight -= 1
            self._log_cond.notify_all()

    def _record_error(self, text: str) -> None:
        with self._log_cond:
            self._errors.append(text)

    def _track(self, connection: ssl.SSLSocket, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


class _ThreadingTLSServer(ThreadingHTTPServer):
    """Accepts plain TCP; each worker thread does its own TLS handshake.

    Handshaking in the worker (not the accept loop) keeps one stuck or failing client
    (e.g. the "no CA bundle" test) from blocking every other connection.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: LocalHTTPSServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore client-side TLS/connection failures; record anything else."""
        if not isinstance(sys.exc_info()[1], OSError):
            self.owner._record_error(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dinsar-test-https"
    sys_version = ""
    timeout = 30.0  # bounds idle keep-alive connections and stuck handshakes
    server: _ThreadingTLSServer

    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        self.request = self.server.owner.ssl_context.wrap_socket(self.request, server_side=True)
        self.server.owner._track(self.request, add=True)
        super().setup()

    def finish(self) -> None:
        self.server.owner._track(self.connection, add=False)
        try:
            super().finish()
        except (OSError, ValueError):
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence stderr access logs; the structured log is in LocalHTTPSServer."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        owner = self.server.owner
        split = urlsplit(self.path)
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        for key, value in self.headers.items():
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        request = Request(
            method=self.command,
            path=unquote(split.path),
            query_string=split.query,
            headers=headers,
            body=self._read_body(),
            client=self.client_address,
        )
        entry = owner._log_start(request)
        try:
            route, found = owner._find_route(request.method, request.path)
            if route is None:
                response = text_response(f"no route for {request.method} {request.path}\n", 404)
            else:
                entry.route = route.name
                response = route.handler(replace(request, match=found))
                if not isinstance(response, Response):
                    raise TypeError(f"handler {route.name} returned {type(response).__name__}")
            self._send(response, entry)
        except DropConnection as drop:
            entry.dropped = True
            entry.error = str(drop)
            self._abort(drop.reset)
        except OSError as exc:  # the client went away; not a handler bug
            entry.error = f"client connection error: {exc!r}"
            self.close_connection = True
        except Exception:
            details = traceback.format_exc()
            owner._record_error(details)
            entry.error = details
            if entry.status is None:
                self._send(text_response(f"handler crashed:\n{details}", 500), entry)
            else:
                entry.dropped = True
                self._abort(reset=True)
        finally:
            owner._log_finish(entry)

    def _send(self, response: Response, entry: LogEntry) -> None:
        status = response.status
        headers = list(response.headers)
        names = {key.lower() for key, _ in headers}
        head_only = self.command == "HEAD" or status in (204, 304) or status < 200
        body = response.body.encode("utf-8") if isinstance(response.body, str) else response.body
        chunked = False
        if isinstance(body, (bytes, bytearray, memoryview)):
            chunks: Iterable[bytes] = [bytes(body)]
            if "content-length" not in names and status not in (204, 304):
                headers.append(("Content-Length", str(len(body))))
        else:
            chunks = body
            chunked = "content-length" not in names and not head_only
            if chunked:
                headers.append(("Transfer-Encoding", "chunked"))
        declared = next((int(v) for k, v in headers if k.lower() == "content-length"), None)
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        entry.status = status
        entry.response_headers = headers
        try:
            if not head_only:
                self._write_body(chunks, chunked, entry)
        finally:
            close = getattr(chunks, "close", None)
            if callable(close):
                close()
        if not head_only and declared is not None and entry.bytes_sent != declared:
            self.close_connection = True  # framing is broken; EOF tells the client

    def _write_body(self, chunks: Iterable[bytes], chunked: bool, entry: LogEntry) -> None:
        for chunk in chunks:
            if not chunk:
                continue
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.wfile.write(chunk)
            entry.bytes_sent += len(chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _abort(self, reset: bool) -> None:
        """Close the TCP connection now: RST with ``reset``, else FIN; no TLS close_notify."""
        self.close_connection = True
        connection = self.connection
        try:
            if reset:
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        connection.close()
        self.rfile.close()  # drops the last makefile reference, so the fd really closes now
