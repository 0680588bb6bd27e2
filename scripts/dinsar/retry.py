"""Retry with exponential backoff for calls to remote services.

Only what a retry can fix is retried (a dropped connection, a timeout, HTTP 5xx/429): a host
name that does not resolve, a certificate that is not trusted, a refused login fail the same
way the next time, so they stop at once with their cause.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable
from typing import TypeVar

import requests

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_WAIT_S = 60.0


_FAILED_TO_RESOLVE = re.compile(r"Failed to resolve '([^']+)'")


def unresolved_host(exc: BaseException) -> str | None:
    """The host name whose lookup failed (DNS), if that is why ``exc`` happened, else None.

    "" when the lookup failed but the error does not say for which name. requests wraps
    urllib3's NameResolutionError (a socket.gaierror underneath) in a ConnectionError.
    """
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        current = todo.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        match = _FAILED_TO_RESOLVE.search(str(current))
        if match:
            return match[1]
        if isinstance(current, socket.gaierror):
            return ""
        todo += [current.__cause__, current.__context__, getattr(current, "reason", None),
                 *current.args]  # fmt: skip
    return None


def is_transient_network_error(exc: BaseException) -> bool:
    """A failure of a request that another try may not meet: a dropped or refused connection,
    a timeout, a body cut short; not a name that does not resolve, not an untrusted certificate."""
    if unresolved_host(exc) is not None:
        return False
    if isinstance(exc, requests.exceptions.SSLError):
        # a certificate problem will not go away by retrying; a TLS stream cut mid-way will
        return "certificate" not in str(exc).lower()
    return isinstance(
        exc,
        (
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.Timeout,
            requests.exceptions.ContentDecodingError,
        ),
    )


def network_failure(exc: BaseException, where: str) -> str:
    """One line for a request that failed for good: the name that does not resolve, or the
    kind of failure (a requests exception's text is a repr of urllib3 internals)."""
    host = unresolved_host(exc)
    if host is not None:
        return (
            f"the host name {host or 'of ' + where} does not resolve (DNS); check {where} "
            "and this machine's network (a node without internet cannot reach it)"
        )
    return type(exc).__name__


def backoff_delays(retries: int, base: float) -> list[float]:
    """Waits before each retry: base, 2*base, 4*base ... capped at a minute."""
    return [min(MAX_WAIT_S, base * 2**i) for i in range(retries)]


def with_retries(
    call: Callable[[], T],
    is_transient: Callable[[BaseException], bool],
    retries: int,
    base_delay: float,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; on a transient error wait and try again, up to ``retries`` more times.

    The last error is re-raised when the retries are used up (callers turn it into a message
    naming the service and what to do).
    """
    delays = backoff_delays(retries, base_delay)
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            if attempt >= len(delays) or not is_transient(exc):
                raise
            log.warning(
                "%s failed (%s: %s); retry %d of %d in %.1f s",
                what,
                type(exc).__name__,
                str(exc)[:200],
                attempt + 1,
                len(delays),
                delays[attempt],
            )
            sleep(delays[attempt])
            attempt += 1
