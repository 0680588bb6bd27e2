"""Refuse real network access from inside the pytest process.

Installed for the whole session by ``tests/conftest.py``. Any name lookup or socket
connect to something other than loopback raises :class:`BlockedNetworkError` (not an
``OSError``, so retry loops and ``except OSError`` in libraries do not swallow it) and is
recorded; the conftest fails the current test if anything was recorded, so even a
swallowed attempt is a failure. This holds on machines that do have internet.
Subprocesses (e.g. ``snakemake`` runs) are not covered; they get our CA bundle and
local URLs through their config instead.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable
from typing import Any

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class BlockedNetworkError(RuntimeError):
    """Raised instead of reaching a non-loopback host."""


_lock = threading.Lock()
_blocked: list[str] = []
_originals: dict[str, Any] = {}


def is_loopback(host: object) -> bool:
    """True for loopback names/addresses (and the unspecified address, which means local)."""
    if host is None or host in ("", b""):
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").split("%", 1)[0].lower()
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _refuse(what: str) -> None:
    message = f"real network access blocked in tests: {what}"
    with _lock:
        _blocked.append(message)
    raise BlockedNetworkError(message)


def _address_host(address: object) -> object:
    """Host part of a socket address; AF_UNIX paths are local and map to None."""
    if isinstance(address, tuple) and address:
        return address[0]
    return None


def _guard_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(
            _address_host(address)
        ):
            _refuse(f"connect to {address!r}")
        return original(self, address)

    return connect


def _guard_lookup(original: Callable[..., Any]) -> Callable[..., Any]:
    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_loopback(host):
            _refuse(f"name lookup of {host!r}")
        return original(host, *args, **kwargs)

    return lookup


def install() -> None:
    """Patch socket connect and name resolution process-wide (idempotent)."""
    if _originals:
        return
    _originals["connect"] = socket.socket.connect
    _originals["connect_ex"] = socket.socket.connect_ex
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
        _originals[name] = getattr(socket, name)
    socket.socket.connect = _guard_connect(_originals["connect"])  # type: ignore[method-assign]
    socket.socket.connect_ex = _guard_connect(_originals["connect_ex"])  # type: ignore[method-assign]
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
        setattr(socket, name, _guard_lookup(_originals[name]))


def uninstall() -> None:
    """Restore the original socket functions."""
    if not _originals:
        return
    socket.socket.connect = _originals.pop("connect")  # type: ignore[method-assign]
    socket.socket.connect_ex = _originals.pop("connect_ex")  # type: ignore[method-assign]
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
        setattr(socket, name, _originals.pop(name))


def take_blocked() -> list[str]:
    """Return and forget the attempts recorded so far (tests that provoke one must call it)."""
    with _lock:
        attempts = list(_blocked)
        _blocked.clear()
    return attempts
