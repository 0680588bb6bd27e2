"""One fault injector for every emulated service: the next N matching requests misbehave.

The emulators each have their own fault hooks, with different abilities (the CMR one cannot cut
a body short, the orbit bucket cannot reset its listing...). :class:`FaultInjector` sits in
front of any of them as the most recent route for a path pattern, so the same faults apply to
every remote the workflow talks to:

* ``reset``     the connection is cut with a TCP RST before any response;
* ``timeout``   no answer until the client has given up (``hang`` seconds, then a FIN);
* ``429``, ``500``, ``503``  that status with a small JSON error body (CMR's format);
* ``truncated`` the service's real answer, but only the first half of its body is sent
  (Content-Length still promises all of it), then the connection closes. A response without
  a body to cut (a redirect, a HEAD) passes through and the fault waits for the next one.

Requests without a pending fault go to the service underneath unchanged.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import replace

from .server import DropConnection, LocalHTTPSServer, Request, Response, Route

KINDS = ("reset", "timeout", "429", "500", "503", "truncated")


class FaultInjector:
    def __init__(self, server: LocalHTTPSServer, pattern: str | re.Pattern[str], hang: float = 5.0):
        self.server = server
        self.hang = hang
        self.injected: list[str] = []  # faults actually delivered, in order
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.route: Route = server.add_route("*", pattern, self._handle, name="fault-injector")

    def push(self, kind: str, times: int = 1) -> FaultInjector:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {KINDS}")
        with self._lock:
            self._queue.extend([kind] * times)
        return self

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def remove(self) -> None:
        """Unregister, forget pending faults and wake handlers hanging in a ``timeout``."""
        self.route.remove()
        with self._lock:
            self._queue.clear()
        self._release.set()

    # -- handling ---------------------------------------------------------------------------
    def _take(self) -> str | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _handle(self, request: Request) -> Response:
        kind = self._take()
        if kind is None:
            return self._forward(request)
        if kind == "truncated":
            return self._truncated(request)
        self.injected.append(kind)
        if kind == "reset":
            raise DropConnection(reset=True, reason="injected reset")
        if kind == "timeout":
            self._release.wait(self.hang)
            raise DropConnection(reset=False, reason="injected timeout")
        body = json.dumps({"errors": [f"injected HTTP {kind}"]}).encode()
        return Response(int(kind), body, [("Content-Type", "application/json")])

    def _truncated(self, request: Request) -> Response:
        response = self._forward(request)
        body = response.body
        data = body.encode() if isinstance(body, str) else body
        if not isinstance(data, (bytes, bytearray)):
            data = b"".join(data)  # a streamed body (bytes_response): small in tests
        if request.method == "HEAD" or response.status not in (200, 206) or len(data) < 2:
            with self._lock:
                self._queue.appendleft("truncated")  # nothing to cut: the next answer then
            return replace(response, body=bytes(data))
        self.injected.append("truncated")
        headers = [(k, v) for k, v in response.headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(data))))
        # the server closes the connection when fewer bytes than promised were sent
        return Response(response.status, iter([bytes(data[: len(data) // 2])]), headers)

    def _forward(self, request: Request) -> Response:
        """Hand the request to the route this injector shadows."""
        method = "GET" if request.method == "HEAD" else request.method
        with self.server._routes_lock:
            routes = [r for r in reversed(self.server._routes) if r is not self.route]
        for route in routes:
            matched, found = route.match(method, request.path)
            if matched:
                return route.handler(replace(request, match=found))
        return Response(404, b"no route under the fault injector\n")
