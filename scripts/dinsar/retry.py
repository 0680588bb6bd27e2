"""Retry with exponential backoff for calls to remote services."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_WAIT_S = 60.0


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
