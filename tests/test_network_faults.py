"""Network faults on every remote the workflow uses, through the library entry points the rules
call: the ASF search (CMR), Earthdata Login, the SLC data host (download and the preflight's
one-byte probe), the orbit bucket (listing and files), DEM tiles, the geoid (read by GDAL) and
the AUX_CAL bundle.

Each (service, fault) pair runs twice: a *transient* fault (the first request fails, the retry
succeeds: the file arrives complete and verified) and a *persistent* one (every request fails:
one DinsarError that names the service and says what to do; nothing is left under the final
file name). Faults come from harness.faults.FaultInjector, in front of the emulated services.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from shapely import wkt

from dinsar.aux_cal import fetch_aux_cal
from dinsar.config import Download, Network, Orbits, validate_config
from dinsar.credentials import EarthdataCredentials, EarthdataSession
from dinsar.dem import fetch_tiles, stitch
from dinsar.download import Target, download, probe
from dinsar.errors import DinsarError
from dinsar.net import pin_ca_bundle
from dinsar.orbits import OrbitRequest, find_orbit
from dinsar.search import search_asf
from fixture_scenes import TEST_ROI
from harness.faults import FaultInjector
from harness.orbit_server import serve_aux_cal
from harness.server import LocalHTTPSServer

TIMEOUT = 0.5  # seconds: a "timeout" fault hangs longer than this
RETRIES = 2
POLICY = Network(retries=RETRIES, backoff=0.01, timeout=TIMEOUT)
CHUNKS = Download(chunk_mb=16 / 1024)  # 16 KiB reads: a fault lands mid-file
GRANULE = "S1A_IW_SLC__1SDV_20161007T141928_20161007T141956_013385_0155BE_46C1"
TILE_BOUNDS = (6.1, 0.1, 6.2, 0.2)  # one synthetic GLO-30 tile
ORBIT_START = dt.datetime(2016, 10, 7, 14, 19, 28, tzinfo=dt.UTC)
FAULTS = ("reset", "timeout", "429", "500", "503", "truncated")


@dataclass
class Case:
    """One remote: where its requests go, how to call it, what a failure must say."""

    pattern: str | re.Pattern[str]  # request paths the faults apply to
    call: Callable[[], Any]  # the library entry point; returns what to check
    check: Callable[[Any], None]  # on success: the result is complete and right
    message: str  # regex a persistent failure's message must match
    leftovers: Callable[[], list[Path]] = lambda: []  # files that must not exist after failure


def files(folder: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if p.is_file()) if folder.is_dir() else []


# --- the services ----------------------------------------------------------------------------


def search_case(env: dict[str, Any]) -> Case:
    cmr, tmp = env["cmr"], env["tmp"]
    cfg = validate_config(
        {
            "workspace": str(tmp / "ws"), "roi": TEST_ROI,
            "dates": {"start": "2016-10-01", "end": "2016-10-31"},
            "search": {"host": cmr.host},
            "network": {"ca_bundle": env["ca_bundle"], "retries": env["retries"],
                        "backoff": 0.01, "timeout": TIMEOUT},
        }
    )  # fmt: skip

    def check(scenes: list) -> None:
        assert len(scenes) >= 2 and all(s.md5 and s.bytes > 0 for s in scenes)

    return Case(
        pattern=re.compile(r"/search/granules.*"),
        call=lambda: search_asf(cfg, wkt.loads(TEST_ROI), bursts=False),
        check=check,
        message=rf"ASF search at https://{re.escape(cmr.host)} .*(inventory:|network\.timeout)",
    )


def earthdata_session(env: dict[str, Any]) -> EarthdataSession:
    earthdata = env["earthdata"]
    user, password = earthdata.user
    creds = EarthdataCredentials("the test .netrc", user, password)
    return EarthdataSession(creds, earthdata.edl_host, env["ca_bundle"])


def slc_case(env: dict[str, Any], path: str) -> Case:
    earthdata, tmp = env["earthdata"], env["tmp"]
    product = earthdata.add_product(GRANULE, bytes(range(256)) * 400)  # 100 kB
    dest = tmp / "slc" / f"{GRANULE}.zip"
    target = Target(product.url, dest, product.size, product.md5, GRANULE)

    def check(outcome: Any) -> None:
        assert dest.read_bytes() == product.data and not files(dest.parent, "*.part")

    return Case(
        pattern=path,
        call=lambda: download(target, earthdata_session(env), POLICY, CHUNKS),
        check=check,
        message=rf"{GRANULE}: .*(run again|Earthdata|network\.retries)",
        leftovers=lambda: [dest] if dest.exists() else [],
    )


def probe_case(env: dict[str, Any]) -> Case:
    earthdata = env["earthdata"]
    product = earthdata.add_product(GRANULE, bytes(range(256)) * 400)
    target = Target(product.url, env["tmp"] / "slc" / f"{GRANULE}.zip", product.size,
                    product.md5, GRANULE)  # fmt: skip

    def check(status: int) -> None:
        assert status == 206 and not target.dest.exists()

    return Case(
        pattern="/SLC/",
        call=lambda: probe(target, earthdata_session(env), POLICY),
        check=check,
        message=rf"{GRANULE}: download failed \d+ times in a row .* from {re.escape(earthdata.data_host)}",
    )


def orbit_case(env: dict[str, Any], listing: bool) -> Case:
    bucket, tmp = env["orbit_bucket"], env["tmp"]
    name = bucket.add_retimed("S1A", ORBIT_START, ORBIT_START + dt.timedelta(seconds=30))
    request = OrbitRequest("20161007", "S1A", ORBIT_START,
                           ORBIT_START + dt.timedelta(seconds=30), ("G",))  # fmt: skip
    settings = {"settings": Orbits(asf_url=bucket.url), "cache_dir": tmp / "orbits",
                "network": POLICY}  # fmt: skip
    session = pin_ca_bundle(requests.Session(), env["ca_bundle"])

    def check(entry) -> None:
        path = Path(entry.file)
        assert path.name == name and entry.type == "POEORB"
        assert hashlib.md5(path.read_bytes()).hexdigest() == bucket.md5(name)  # noqa: S324

    return Case(
        pattern=re.compile(r"/s1-orbits/?") if listing else re.compile(r"/s1-orbits/AUX_.+"),
        call=lambda: find_orbit(request, **settings, session=session),
        check=check,
        message=rf"orbit for S1A .* could not be fetched from {re.escape(bucket.url)}.*network",
        leftovers=lambda: files(tmp / "orbits", "*.EOF"),
    )


def tile_case(env: dict[str, Any]) -> Case:
    dem_tiles, tmp = env["dem_tiles"], env["tmp"]
    tile = "Copernicus_DSM_COG_10_N00_00_E006_00_DEM"
    session = pin_ca_bundle(requests.Session(), env["ca_bundle"])
    folder = tmp / "tiles"

    def check(paths: list[Path]) -> None:
        from harness.dem_tiles import synthetic_tile

        assert [p.name for p in paths] == [f"{tile}.tif"]
        assert paths[0].read_bytes() == synthetic_tile(tile)
        assert not files(folder, "*.part")

    return Case(
        pattern=re.compile(r"/dem/Copernicus_[^/]+/[^/]+\.tif"),
        call=lambda: fetch_tiles(TILE_BOUNDS, "glo_30", folder, session, POLICY, dem_tiles.url),
        check=check,
        message=rf"DEM tile {tile}\.tif: .*(run again|network\.retries)",
        leftovers=lambda: files(folder, "*.tif"),
    )


def geoid_case(env: dict[str, Any]) -> Case:
    """The geoid is read by GDAL over HTTP (ranged GETs) while the DEM is stitched."""
    dem_tiles, tmp = env["dem_tiles"], env["tmp"]
    from harness.dem_tiles import synthetic_geoid, write_tile

    folder = tmp / "tiles"
    folder.mkdir()
    write_tile(folder / "Copernicus_DSM_COG_10_N00_00_E006_00_DEM.tif",
               "Copernicus_DSM_COG_10_N00_00_E006_00_DEM")  # fmt: skip
    # a name of its own: GDAL caches what it read of a URL for the life of the process
    geoid = dem_tiles.add_synthetic_geoid(f"geoid_{env['name']}.tif")
    local = tmp / "geoid.tif"
    local.write_bytes(synthetic_geoid())
    expected = stitch(TILE_BOUNDS, "glo_30", folder, str(local))[0]

    def check(result: tuple) -> None:
        values, _profile = result
        assert values.shape == expected.shape
        assert abs(values - expected).max() < 1e-3

    return Case(
        pattern=re.compile(r"/dem/geoid/.+"),
        call=lambda: stitch(TILE_BOUNDS, "glo_30", folder, geoid,
                            POLICY.model_copy(update={"ca_bundle": env["ca_bundle"]})),
        check=check,
        message=r"geoid .*(dem\.geoid|run again)",
    )


def aux_cal_case(env: dict[str, Any]) -> Case:
    tmp = env["tmp"]
    base = serve_aux_cal(env["https_server"])
    session = pin_ca_bundle(requests.Session(), env["ca_bundle"])
    folder = tmp / "aux_cal"

    def check(directory: Path) -> None:
        assert sorted(p.name for p in directory.glob("S1A_AUX_CAL_*.SAFE"))
        assert not list(directory.rglob("*.part"))

    return Case(
        pattern=re.compile(r"/aux-cal/.+"),
        call=lambda: fetch_aux_cal(["S1A"], folder, session, base, POLICY),
        check=check,
        message=r"S1A_AUX_CAL_\d+\.zip: .*run again",
        leftovers=lambda: list(folder.glob("S1A_AUX_CAL_*.SAFE")) if folder.is_dir() else [],
    )


SERVICES: dict[str, Callable[[dict[str, Any]], Case]] = {
    "search": search_case,
    "earthdata_login": lambda env: slc_case(env, "/oauth/authorize"),
    "slc_download": lambda env: slc_case(env, "/SLC/"),
    "preflight_probe": probe_case,
    "orbit_listing": lambda env: orbit_case(env, listing=True),
    "orbit_file": lambda env: orbit_case(env, listing=False),
    "dem_tile": tile_case,
    "geoid": geoid_case,
    "aux_cal": aux_cal_case,
}
# A redirect or a one-byte answer has no body to cut short.
NO_BODY = {("earthdata_login", "truncated"), ("preflight_probe", "truncated")}
MATRIX = [
    pytest.param(service, fault, id=f"{service}-{fault}")
    for service, fault in itertools.product(SERVICES, FAULTS)
    if (service, fault) not in NO_BODY
]


@pytest.fixture
def env(request, tmp_path, cmr, earthdata, orbit_bucket, dem_tiles, https_server, ca_bundle):
    return {
        "tmp": tmp_path, "cmr": cmr, "earthdata": earthdata, "orbit_bucket": orbit_bucket,
        "dem_tiles": dem_tiles, "https_server": https_server, "ca_bundle": ca_bundle,
        "retries": RETRIES, "name": re.sub(r"\W", "_", request.node.name),
    }  # fmt: skip


@pytest.fixture
def inject(https_server: LocalHTTPSServer) -> Iterator[Callable[..., FaultInjector]]:
    made: list[FaultInjector] = []

    def make(pattern: str | re.Pattern[str]) -> FaultInjector:
        made.append(FaultInjector(https_server, pattern, hang=TIMEOUT * 6))
        return made[-1]

    yield make
    for injector in made:
        injector.remove()


@pytest.mark.parametrize(("service", "fault"), MATRIX)
def test_a_transient_fault_is_retried(service, fault, env, inject) -> None:
    case = SERVICES[service](env)
    injector = inject(case.pattern).push(fault)
    result = case.call()
    assert injector.injected == [fault]  # the fault really happened, then the retry worked
    case.check(result)


@pytest.mark.parametrize(("service", "fault"), MATRIX)
def test_a_persistent_fault_is_one_clear_error(service, fault, env, inject) -> None:
    if service == "search" and fault in ("500", "503"):
        # asf_search itself tries a 5xx 3 times with 3-10 s waits (not configurable):
        # one attempt of ours is enough to see the message
        env["retries"] = 0
    case = SERVICES[service](env)
    injector = inject(case.pattern).push(fault, times=100)
    with pytest.raises(DinsarError) as info:
        case.call()
    message = str(info.value)
    assert re.search(case.message, message, re.S), message
    assert "Traceback" not in message and len(message.splitlines()) == 1, message
    assert len(injector.injected) >= 1
    assert case.leftovers() == [], "a partial file was kept under its final name"
