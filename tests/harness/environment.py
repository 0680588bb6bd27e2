"""The environment variables the suite controls, and the clean environment it runs in.

The product honours what a user's shell sets, as it must on HPC and corporate networks:
proxies (requests and urllib take every ``*_proxy`` in either case, GDAL's curl too), CA
bundles (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, OpenSSL's ``SSL_CERT_FILE``/``_DIR``,
GDAL's options), the .netrc (``$NETRC``, ``~/.netrc``), the Earthdata and CDSE credentials,
and Snakemake a default ``$SNAKEMAKE_PROFILE``. The tests reach local emulations on 127.0.0.1
with their own CA and test accounts, so a user's values would divert or break them: a proxy
with an empty ``no_proxy`` takes 127.0.0.1 too.

* :func:`enter_session` (``conftest.pytest_configure``) removes these variables from
  ``os.environ`` for the whole run and gives it a private, empty HOME; :func:`exit_session`
  restores both.
* :func:`clean` is what every subprocess environment starts from; a test that wants one of
  these variables in a subprocess adds it on top (``env=``), and one that sets it in-process
  on purpose (``monkeypatch.setenv``) keeps it.

Kept as they are: ``XDG_CACHE_HOME`` (where the project's ISCE2 build and the cached real
stack are found; set to the user's cache before HOME changes) and the harness's own
``DINSAR_ISCE2_ROOT``, ``DINSAR_TEST_CACHE``, ``DINSAR_SHARED``, ``DINSAR_REQUIRE_ISCE``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

CONTROLLED_NAMES = frozenset({
    # whom to trust: requests, curl (GDAL), OpenSSL (the ssl module)
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR",
    # who we are: the .netrc the product (and requests) reads, the product's credentials
    "NETRC", "EARTHDATA_USERNAME", "EARTHDATA_PASSWORD", "EARTHDATA_TOKEN",
    "CDSE_USERNAME", "CDSE_PASSWORD", "CDSE_TOTP",
    # a site's default profile (executor, resources) would change how the tests' runs execute
    "SNAKEMAKE_PROFILE",
})  # fmt: skip
"""Variables the suite removes (proxies are matched by :func:`is_controlled`)."""

CONTROLLED_PREFIXES = (
    # GDAL's HTTP options (proxy, auth, .netrc, headers, CA bundle, certificate checks)
    "GDAL_HTTP_", "GDAL_HTTPS_", "GDAL_PROXY", "GDAL_CURL_", "CPL_CURL_", "CPL_VSIL_CURL_",
    # the topsApp test double's knobs: only the tests that want one set it, for one run
    "DINSAR_DOUBLE_",
)  # fmt: skip


def is_controlled(name: str) -> bool:
    """True for a variable the suite controls."""
    # urllib's getproxies(), which requests uses, takes every <scheme>_proxy and no_proxy
    return (
        name.lower().endswith("_proxy")
        or name in CONTROLLED_NAMES
        or name.startswith(CONTROLLED_PREFIXES)
    )


def controlled_in(environ: Mapping[str, str] | None = None) -> list[str]:
    """The controlled variables set in ``environ`` (default: ``os.environ``), sorted."""
    source = os.environ if environ is None else environ
    return sorted(name for name in source if is_controlled(name))


def clean(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default: ``os.environ``) without the controlled variables."""
    source = os.environ if environ is None else environ
    return {name: value for name, value in source.items() if not is_controlled(name)}


_saved: dict[str, str] | None = None
_home: Path | None = None


def enter_session() -> Path:
    """Remove the controlled variables from ``os.environ``; HOME becomes a private, empty
    folder (so no ~/.netrc, ~/.config of the user's). Returns that HOME."""
    global _saved, _home
    if _home is not None:
        return _home
    _saved = dict(os.environ)
    os.environ.setdefault("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    for name in controlled_in():
        del os.environ[name]
    _home = Path(tempfile.mkdtemp(prefix="dinsar-tests-home-"))
    os.environ["HOME"] = str(_home)
    return _home


def exit_session() -> None:
    """Give ``os.environ`` back as it was before :func:`enter_session`; remove the HOME."""
    global _saved, _home
    if _saved is None or _home is None:
        return
    os.environ.clear()
    os.environ.update(_saved)
    shutil.rmtree(_home, ignore_errors=True)
    _saved, _home = None, None


def session_home() -> Path | None:
    """The private HOME of the session (None outside one)."""
    return _home
