"""The suite is hermetic to what a user's shell sets (harness.environment), as on many HPC and
corporate networks: proxies with an empty no_proxy, site CA bundles, a .netrc, credentials.

The proof runs, in a fresh pytest, a search, a download and a Snakemake staging run (search,
preflight, downloads, orbits, AUX_CAL, DEM) with every such variable hostile: the proxies are a
local port that drops every connection, the CA bundles trust another CA or do not exist, the
.netrc (``$NETRC`` and the one in ``$HOME``) and the Earthdata/CDSE variables hold wrong
credentials, Snakemake's default profile does not exist. They must pass, and nothing may have
connected to the proxy. The other tests show that these values do break the product when a
test sets them on purpose, and that the harness leaves such a test its values.
"""

from __future__ import annotations

import os
import re
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from dinsar.config import Download, Network
from dinsar.credentials import EarthdataCredentials, EarthdataSession
from dinsar.download import DownloadError, Target, download
from harness import REPO_ROOT, environment
from harness.earthdata import netrc_text
from harness.tls import make_tls

# a search, a download and a Snakemake staging run; none of them is in this file, so the
# pytest started here never runs the proof again
PROVED = (
    "tests/test_search.py::test_run_search_writes_inventory_and_dates",
    "tests/test_download.py::test_login_redirect_sets_a_cookie_and_the_file_is_verified",
    "tests/test_staging_workflow.py::test_stage_fetches_everything_once_and_nothing_twice",
)
GRANULE = "S1A_IW_SLC__1SDV_20161007T141928_20161007T141956_013385_0155BE_46C1"
ONCE = Network(retries=0, backoff=0.0, timeout=30)
CHUNKS = Download(chunk_mb=64 / 1024)


class _Drop(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.connections += 1  # type: ignore[attr-defined]
        # returning closes the connection: the client gets no answer at all


class DroppingProxy(socketserver.TCPServer):
    """A proxy on 127.0.0.1 that drops every connection, and counts them."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Drop)
        self.connections = 0
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()


@pytest.fixture
def proxy() -> Iterator[DroppingProxy]:
    server = DroppingProxy()
    yield server
    server.close()


def hostile_environment(proxy: DroppingProxy, folder: Path) -> dict[str, str]:
    """Every variable the harness controls, set as a hostile site or user would."""
    other_ca = str(make_tls(folder / "other_ca").ca_pem)  # trusts nothing the tests serve
    wrong = "".join(netrc_text(host, "intruder", "wrong-password")
                    for host in ("localhost", "127.0.0.1", "dataspace.copernicus.eu"))  # fmt: skip
    home = folder / "home"
    home.mkdir()
    for netrc in (folder / "netrc", home / ".netrc"):
        netrc.write_text(wrong)
        netrc.chmod(0o600)
    (folder / "empty_certs").mkdir()
    proxies = {name: proxy.url for name in ("http_proxy", "https_proxy", "all_proxy")}
    return {
        **proxies,
        **{name.upper(): url for name, url in proxies.items()},
        "no_proxy": "",
        "NO_PROXY": "",
        "GDAL_HTTP_PROXY": proxy.url.removeprefix("http://"),
        "GDAL_HTTPS_PROXY": proxy.url.removeprefix("http://"),
        "REQUESTS_CA_BUNDLE": other_ca,
        "SSL_CERT_FILE": other_ca,
        "SSL_CERT_DIR": str(folder / "empty_certs"),
        "CURL_CA_BUNDLE": str(folder / "missing" / "ca.pem"),
        "GDAL_CURL_CA_BUNDLE": str(folder / "missing" / "ca.pem"),
        "NETRC": str(folder / "netrc"),
        "HOME": str(home),
        "EARTHDATA_USERNAME": "intruder",
        "EARTHDATA_PASSWORD": "wrong-password",
        "EARTHDATA_TOKEN": "not-a-token",
        "CDSE_USERNAME": "intruder",
        "CDSE_PASSWORD": "wrong-password",
        "SNAKEMAKE_PROFILE": str(folder / "missing" / "profile"),
    }


@pytest.mark.shared  # its inner run is of tests that read the recorded data
def test_search_download_and_staging_pass_with_hostile_variables(proxy, tmp_path) -> None:
    hostile = hostile_environment(proxy, tmp_path / "hostile")
    # all of them controlled; HOME is replaced rather than removed
    assert environment.controlled_in(hostile) == sorted(set(hostile) - {"HOME"})
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           f"--basetemp={tmp_path / 'run'}", *PROVED]  # fmt: skip
    env = {**environment.clean(), **hostile}
    env.pop("PYTEST_ADDOPTS", None)  # the outer run's options could deselect the three
    # a guard against a hang, not a speed requirement
    result = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=3600, check=False)  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert re.search(rf"\b{len(PROVED)} passed\b", output), output[-3000:]
    assert proxy.connections == 0


def test_the_session_runs_without_them_in_a_private_home() -> None:
    import certifi
    import rasterio  # noqa: F401

    # but one: importing rasterio gives GDAL certifi's CAs when no bundle is set (the product
    # then passes network.ca_bundle to GDAL itself)
    left = {name: os.environ[name] for name in environment.controlled_in()}
    assert left in ({}, {"GDAL_CURL_CA_BUNDLE": certifi.where()})
    assert Path.home() == environment.session_home()
    assert not (Path.home() / ".netrc").exists()


def test_clean_drops_what_the_harness_controls_and_keeps_the_rest() -> None:
    given = {"HTTPS_PROXY": "x", "no_proxy": "", "socks_proxy": "x", "REQUESTS_CA_BUNDLE": "x",
             "NETRC": "x", "EARTHDATA_TOKEN": "x", "CDSE_PASSWORD": "x", "GDAL_HTTP_PROXY": "x",
             "DINSAR_DOUBLE_FAIL_AT": "x", "SNAKEMAKE_PROFILE": "x",
             "PATH": "/bin", "HOME": "/h", "XDG_CACHE_HOME": "/c", "GDAL_DATA": "/g",
             "DINSAR_SHARED": "/s", "DINSAR_ISCE2_ROOT": "/i"}  # fmt: skip
    kept = environment.clean(given)
    assert kept == {"PATH": "/bin", "HOME": "/h", "XDG_CACHE_HOME": "/c", "GDAL_DATA": "/g",
                    "DINSAR_SHARED": "/s", "DINSAR_ISCE2_ROOT": "/i"}  # fmt: skip


@pytest.fixture
def earthdata_download(earthdata, ca_bundle, tmp_path):
    """A product behind the login, and a call that downloads it once (no retry)."""
    product = earthdata.add_product(GRANULE, b"SAFE" * 4096)
    user, password = earthdata.user
    session = EarthdataSession(EarthdataCredentials("test", user, password), earthdata.edl_host,
                               ca_bundle)  # fmt: skip
    target = Target(product.url, tmp_path / "slc" / f"{GRANULE}.zip", product.size, product.md5,
                    GRANULE)  # fmt: skip
    return product, lambda: download(target, session, ONCE, CHUNKS)


def test_a_proxy_a_test_sets_is_honoured(proxy, monkeypatch, earthdata_download) -> None:
    """The product takes the site's proxy, even for 127.0.0.1 when no_proxy is empty: why the
    harness removes it, and why the proof's proxy is hostile."""
    _, fetch = earthdata_download
    monkeypatch.setenv("https_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", "")
    with pytest.raises(DownloadError, match="download failed"):
        fetch()
    assert proxy.connections >= 1  # counted before it drops the connection the client saw end


def test_the_configured_ca_wins_over_a_ca_bundle_a_test_sets(
    monkeypatch, tmp_path, ca_bundle, earthdata_download
) -> None:
    product, fetch = earthdata_download
    other_ca = str(make_tls(tmp_path / "other_ca").ca_pem)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", other_ca)
    monkeypatch.setenv("CURL_CA_BUNDLE", other_ca)
    # what the variable does to a session that does not pin network.ca_bundle
    plain = requests.Session()
    plain.verify = ca_bundle
    with pytest.raises(requests.exceptions.SSLError):
        plain.get(product.url, timeout=30)
    plain.close()
    assert fetch().path.read_bytes() == product.data
