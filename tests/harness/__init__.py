"""Offline test harness: local HTTPS services that stand in for the real network.

The suite never talks to the internet. Instead, a session-wide HTTPS server on
127.0.0.1 (``server.LocalHTTPSServer``) hosts emulated services (``cmr.CMREmulator``
today; downloads, Earthdata login, orbit servers later), trusted through a throw-away
CA (``tls``). ``netguard`` turns any accidental non-loopback connection into a test
failure. Real recorded data is read in place from the shared fixtures folder.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parents[2]
"""Repository root, derived from this file so the suite runs from any checkout."""

SHARED_ENV_VAR = "DINSAR_SHARED"


def shared_dir() -> Path:
    """Folder holding recorded real data (``fixtures/``), kept outside the repo.

    Overridable with ``$DINSAR_SHARED`` because the data is large and must not be
    copied into the repository.
    """
    return Path(os.environ.get(SHARED_ENV_VAR, REPO_ROOT.parent / "shared"))


def fixtures_dir() -> Path:
    """The ``fixtures`` folder inside :func:`shared_dir` (see its ``SOURCES.md``)."""
    return shared_dir() / "fixtures"
