"""Suite-wide fixtures: fixture-data locations and offline HTTPS services.

Contract (other test modules rely on these names):

* ``repo_root``, ``shared_dir`` - paths; ``shared_dir`` fails clearly when the data is absent.
* ``ca_bundle`` - str path of the CA PEM that the local HTTPS server's certificate chains to
  (give it to subprocesses as ``network.ca_bundle``).
* ``https_server`` - session-wide :class:`harness.server.LocalHTTPSServer`
  (``.host``, ``.url``, ``.add_route``, ``.requests()``, ``.clear_log()``).
* ``cmr`` - :class:`harness.cmr.CMREmulator` on that server, reset before and after each
  test; the server log is cleared when a test takes it.
* ``asf_session`` - an ``asf_search.ASFSession`` that trusts ``ca_bundle`` (``trust_env`` off).

Also: real network is refused for the whole run (``harness.netguard``), children take Ctrl-C
even when the suite was started with SIGINT ignored (``interruptible_children``), the run is hermetic
to the user's proxies, CA bundles, .netrc, credentials and HOME (``harness.environment``), and
asf_search's automatic error reports to ASF are switched off.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness import REPO_ROOT, SHARED_ENV_VAR, environment, netguard
from harness import shared_dir as locate_shared_dir
from harness.cmr import STACK_FIXTURE, CMREmulator, load_records
from harness.server import LocalHTTPSServer
from harness.tls import TLSMaterial, make_tls

if TYPE_CHECKING:
    import asf_search


def interruptible_children() -> None:
    """Let the processes the tests start take Ctrl-C, however the suite itself was started.

    A shell starts a background job (`make test &`, nohup, some CI runners) with SIGINT
    ignored, and an ignored signal stays ignored across exec: the Ctrl-C tests' SIGINT would
    then reach nothing. A handled signal is reset to its default on exec, so handling it here
    gives every child the terminal's default (and Python's KeyboardInterrupt).
    """
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config: pytest.Config) -> None:
    """Block real network and scrub the environment before collection; silence asf_search's
    error reporting."""
    netguard.install()
    environment.enter_session()
    interruptible_children()
    try:
        import asf_search
    except ImportError:
        return
    # asf_search POSTs search failures to an ASF server unless this is off.
    asf_search.REPORT_ERRORS = False


# What reads the recorded real data in ../shared (or $DINSAR_SHARED): the fixtures below, and
# the harness modules and helpers that read it at import or call time.
SHARED_FIXTURES = frozenset({"shared_dir", "real_stack"})
SHARED_MODULES = frozenset(
    {"harness.safe_factory", "harness.real_stack", "harness.burst_extractor", "fixture_scenes"}
)


def uses_shared_data(item: pytest.Item) -> bool:
    """True when a test needs the shared fixture data: through a fixture, its module's imports
    or an import inside the test."""
    if SHARED_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    module = getattr(item, "module", None)
    if module is not None and any(
        getattr(value, "__name__", None) in SHARED_MODULES
        or getattr(value, "__module__", None) in SHARED_MODULES
        for value in vars(module).values()
    ):
        return True
    try:
        source = inspect.getsource(item.function)  # type: ignore[attr-defined]
    except (AttributeError, OSError, TypeError):
        return False
    return any(name.rpartition(".")[2] in source for name in SHARED_MODULES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `shared` every test that needs ../shared: a clone without it runs -m 'not shared'."""
    for item in items:
        if uses_shared_data(item):
            item.add_marker(pytest.mark.shared)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Restore the socket module and the environment."""
    environment.exit_session()
    netguard.uninstall()


@pytest.fixture(autouse=True)
def _no_real_network() -> Iterator[None]:
    """Fail the test if it tried to reach a non-loopback host, even if the error was swallowed."""
    yield
    attempts = netguard.take_blocked()
    if attempts:
        pytest.fail("test attempted real network access:\n" + "\n".join(attempts))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """Repository root."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """Shared folder with recorded real data (``fixtures/``), outside the repository."""
    path = locate_shared_dir()
    if not (path / "fixtures").is_dir():
        pytest.fail(
            f"shared fixture data not found at {path} (expected {path / 'fixtures'}); "
            f"set ${SHARED_ENV_VAR} to the folder that contains 'fixtures/'"
        )
    return path


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    """Session CA + server certificate for 127.0.0.1/localhost."""
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def ca_bundle(tls_material: TLSMaterial) -> str:
    """Path of the CA PEM to trust (``verify=`` / ``network.ca_bundle``)."""
    return str(tls_material.ca_pem)


@pytest.fixture(scope="session")
def https_server(tls_material: TLSMaterial) -> Iterator[LocalHTTPSServer]:
    """The one local HTTPS server all emulated services are mounted on."""
    with LocalHTTPSServer(tls_material.server_context) as server:
        yield server


@pytest.fixture(scope="session")
def _cmr_emulator(https_server: LocalHTTPSServer, shared_dir: Path) -> Iterator[CMREmulator]:
    records = load_records(shared_dir / "fixtures" / "asf_search" / STACK_FIXTURE)
    emulator = CMREmulator(https_server, records)
    yield emulator
    emulator.close()


@pytest.fixture
def cmr(_cmr_emulator: CMREmulator, https_server: LocalHTTPSServer) -> Iterator[CMREmulator]:
    """CMR emulator with the path-13 stack; faults/rewrite/records never leak between tests."""
    _cmr_emulator.reset()
    # session-wide: reset, not unregistered, after each test
    yield from _served(https_server, _cmr_emulator, finish=_cmr_emulator.reset)


@pytest.fixture
def asf_session(ca_bundle: str) -> Iterator[asf_search.ASFSession]:
    """ASFSession trusting the local CA; pass it inside ``ASFSearchOptions(host=..., session=...)``.

    ``trust_env`` is off because requests lets ``$REQUESTS_CA_BUNDLE``/``$CURL_CA_BUNDLE``
    override ``session.verify`` (and env proxies would divert 127.0.0.1 traffic).
    """
    import asf_search

    session = asf_search.ASFSession()
    session.verify = ca_bundle
    session.trust_env = False
    yield session
    session.close()


# --- staging services (product downloads + Earthdata login, orbit bucket, DEM tiles) ---------

if TYPE_CHECKING:
    from typing import Protocol

    from harness.dem_tiles import DemTileServer
    from harness.earthdata import EarthdataEmulator
    from harness.orbit_server import OrbitBucket

    class _Closable(Protocol):
        def close(self) -> None: ...


@pytest.fixture
def earthdata(https_server: LocalHTTPSServer) -> Iterator[EarthdataEmulator]:
    """Products on 127.0.0.1 behind an Earthdata-style login on localhost (fresh per test)."""
    from harness.earthdata import EarthdataEmulator

    emulator = EarthdataEmulator(https_server)
    yield from _served(https_server, emulator)


@pytest.fixture
def orbit_bucket(https_server: LocalHTTPSServer, shared_dir: Path) -> Iterator[OrbitBucket]:
    """The ASF orbit bucket, empty: tests add the real EOFs or re-timed copies (both made from
    the recorded EOFs in ``shared_dir``)."""
    from harness.orbit_server import OrbitBucket

    yield from _served(https_server, OrbitBucket(https_server))


@pytest.fixture
def dem_tiles(https_server: LocalHTTPSServer, shared_dir: Path) -> Iterator[DemTileServer]:
    """DEM tile mirror: the Los Angeles GLO-30 fixture tiles, synthetic tiles elsewhere."""
    from harness.dem_tiles import DemTileServer

    server = DemTileServer(https_server)
    server.add_los_angeles(shared_dir)
    yield from _served(https_server, server)


def _served(
    https_server: LocalHTTPSServer, service: _Closable, finish: Callable[[], None] | None = None
) -> Iterator[_Closable]:
    """Yield a service with a clean request log; fail on handler crashes; then ``finish`` it
    (default: ``close()``, which unregisters its routes)."""
    https_server.clear_log()
    https_server.take_errors()
    yield service
    (finish or service.close)()
    errors = https_server.take_errors()
    if errors:
        pytest.fail("local HTTPS handler crashed:\n" + "\n".join(errors))


@pytest.fixture
def netrc_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME of the test's own, for a .netrc (the session has no NETRC and no
    Earthdata variables: harness.environment)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


# --- the shared real stack and the real topsApp.py (tests marked `real`) ---------------------


@pytest.fixture(scope="session")
def real_topsapp():
    """The topsApp.py the workflow would use, if it is a real ISCE2 >= 2.6.5.

    Skips without one, unless DINSAR_REQUIRE_ISCE=1 (CI): then a missing ISCE2 fails.
    """
    import os

    from dinsar.topsapp import TopsAppNotFound, find_topsapp

    try:
        found = find_topsapp(None, os.environ)
        problem = None if found.recent and found.python else f"{found.describe()} is not usable"
    except TopsAppNotFound as exc:
        found, problem = None, str(exc)
    if problem:
        if os.environ.get("DINSAR_REQUIRE_ISCE") == "1":
            pytest.fail(f"DINSAR_REQUIRE_ISCE=1 but {problem}")
        pytest.skip(f"no real ISCE2 >= 2.6.5 ({problem}); `make isce2` builds it")
    return found


@pytest.fixture(scope="session")
def real_stack():
    """The shared real stack (harness.real_stack), built once and cached by content."""
    from harness.real_stack import build

    return build()


@pytest.fixture(scope="session")
def real_services(real_stack, tls_material):
    """The stack's products, login and orbits on their own local HTTPS server."""
    from harness.real_services import RealServices

    with LocalHTTPSServer(tls_material.server_context) as server:
        yield RealServices.start(real_stack, server, str(tls_material.ca_pem))
