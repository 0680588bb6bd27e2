"""The CMR emulator answers the real asf_search client like CMR would.

Every expectation is computed here, independently, from the recorded fixture records
(shapely footprints, dates, attributes), so a filter the emulator ignored or got wrong
makes a test fail. asf_search runs unmodified against ``https://127.0.0.1:PORT``.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asf_search as asf
import pytest
import requests
import yaml
from shapely import wkt
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from harness import netguard
from harness.cmr import STACK_FIXTURE, CMREmulator
from harness.server import LocalHTTPSServer, bytes_response

# asf_search 14.1.0 calls the deprecated shapely.ops.transform on every AOI; not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore:The 'shapely.ops.transform:DeprecationWarning")

# Convex on purpose: asf_search replaces a concave AOI by its convex hull before sending.
NORTH_EDGE_TRIANGLE = "POLYGON((-121.0 55.5, -120.0 55.6, -120.6 55.95, -121.0 55.5))"
SOUTH_EDGE_BOX = "POLYGON((-121.5 52.9, -120.5 52.9, -120.5 53.3, -121.5 53.3, -121.5 52.9))"
FAR_AWAY = "POLYGON((10.0 45.0, 11.0 45.0, 10.5 46.0, 10.0 45.0))"
S1_IW_SLC: dict[str, Any] = {"platform": ["SENTINEL-1"], "processingLevel": "SLC", "beamMode": "IW"}
# A few records only: building asf_search products dominates the run time of a search.
SPRING_2018: dict[str, Any] = {
    **S1_IW_SLC,
    "start": "2018-03-01T00:00:00Z",
    "end": "2018-05-01T00:00:00Z",
}
GRANULE_PATH = "/search/granules.umm_json"


# ------------------------------------------------------------------ independent expectations


@pytest.fixture(scope="module")
def stack(shared_dir: Path) -> list[dict[str, Any]]:
    """The recorded path-13 stack, read with plain json (not through the harness)."""
    return json.loads((shared_dir / "fixtures" / "asf_search" / STACK_FIXTURE).read_text())


def footprint_of(record: dict[str, Any]) -> BaseGeometry:
    """Footprint polygon straight from the UMM-G GPolygons boundary points."""
    polygons = record["umm"]["SpatialExtent"]["HorizontalSpatialDomain"]["Geometry"]["GPolygons"]
    points = polygons[0]["Boundary"]["Points"]
    return Polygon([(p["Longitude"], p["Latitude"]) for p in points])


def attribute(record: dict[str, Any], name: str) -> str:
    """First value of a UMM-G additional attribute."""
    return next(a["Values"][0] for a in record["umm"]["AdditionalAttributes"] if a["Name"] == name)


def time_span(record: dict[str, Any]) -> tuple[datetime, datetime]:
    """Acquisition start/end of a record."""
    extent = record["umm"]["TemporalExtent"]["RangeDateTime"]
    return (
        datetime.fromisoformat(extent["BeginningDateTime"]),
        datetime.fromisoformat(extent["EndingDateTime"]),
    )


def granule_urs(records: list[dict[str, Any]]) -> set[str]:
    """GranuleUR set of fixture records."""
    return {r["umm"]["GranuleUR"] for r in records}


def found_urs(results: asf.ASFSearchResults) -> list[str]:
    """GranuleURs of asf_search products, duplicates kept."""
    return [product.umm["GranuleUR"] for product in results]


def run_search(cmr: CMREmulator, session: asf.ASFSession, **kwargs: Any) -> asf.ASFSearchResults:
    """asf_search against the emulator; host and session travel in ASFSearchOptions.

    (``asf.search`` has no ``host=`` keyword, and a ``session=`` keyword that differs from
    the default session only in ``verify`` is silently dropped by ASFSearchOptions.)
    """
    return asf.search(**kwargs, opts=asf.ASFSearchOptions(host=cmr.host, session=session))


def sent_param_names(cmr: CMREmulator) -> set[str]:
    """Parameter names of the last query the emulator received."""
    return {name for name, _ in cmr.received[-1].params}


# ------------------------------------------------------------------ spatial


def test_polygon_roi_returns_exactly_the_intersecting_footprints(
    cmr: CMREmulator, asf_session: asf.ASFSession, stack: list[dict[str, Any]]
) -> None:
    roi = wkt.loads(NORTH_EDGE_TRIANGLE)
    expected = granule_urs([r for r in stack if footprint_of(r).intersects(roi)])
    assert 0 < len(expected) < len(stack), "ROI must split the stack to be a real test"

    results = run_search(cmr, asf_session, intersectsWith=NORTH_EDGE_TRIANGLE, **S1_IW_SLC)

    assert "polygon" in sent_param_names(cmr)
    assert sorted(found_urs(results)) == sorted(expected)


def test_rectangle_roi_is_sent_as_bounding_box_and_filtered(
    cmr: CMREmulator, asf_session: asf.ASFSession, stack: list[dict[str, Any]]
) -> None:
    roi = wkt.loads(SOUTH_EDGE_BOX)
    expected = granule_urs([r for r in stack if footprint_of(r).intersects(roi)])
    assert 0 < len(expected) < len(stack)

    results = run_search(cmr, asf_session, intersectsWith=SOUTH_EDGE_BOX, **S1_IW_SLC)

    assert "bounding_box" in sent_param_names(cmr)
    assert sorted(found_urs(results)) == sorted(expected)


def test_far_away_roi_returns_nothing(cmr: CMREmulator, asf_session: asf.ASFSession) -> None:
    results = run_search(cmr, asf_session, intersectsWith=FAR_AWAY, **S1_IW_SLC)

    assert len(results) == 0
    assert cmr.received[-1].hits == 0


# ------------------------------------------------------------------ temporal / attributes


def test_two_month_window_returns_only_those_acquisitions(
    cmr: CMREmulator, asf_session: asf.ASFSession, stack: list[dict[str, Any]]
) -> None:
    start, end = datetime(2018, 3, 1, tzinfo=UTC), datetime(2018, 5, 1, tzinfo=UTC)
    expected = granule_urs(
        [r for r in stack if time_span(r)[0] <= end and time_span(r)[1] >= start]
    )
    assert 0 < len(expected) < len(stack)

    results = run_search(
        cmr, asf_session, start=start.isoformat(), end=end.isoformat(), **S1_IW_SLC
    )

    assert sorted(found_urs(results)) == sorted(expected)
    assert all(start <= datetime.fromisoformat(p.properties["startTime"]) <= end for p in results)


@pytest.mark.parametrize(
    ("path", "direction"), [(13, "DESCENDING"), (14, "DESCENDING"), (13, "ASCENDING")]
)
def test_relative_orbit_and_flight_direction_filter(
    cmr: CMREmulator,
    asf_session: asf.ASFSession,
    stack: list[dict[str, Any]],
    path: int,
    direction: str,
) -> None:
    expected = granule_urs(
        [
            r
            for r in stack
            if attribute(r, "PATH_NUMBER") == str(path)
            and attribute(r, "ASCENDING_DESCENDING") == direction
        ]
    )

    results = run_search(
        cmr, asf_session, relativeOrbit=[path], flightDirection=direction, **S1_IW_SLC
    )

    assert sorted(found_urs(results)) == sorted(expected)


@pytest.mark.parametrize(("low", "high"), [(10, 20), (14, 20)])
def test_relative_orbit_range_is_an_int_range(
    cmr: CMREmulator, asf_session: asf.ASFSession, stack: list[dict[str, Any]], low: int, high: int
) -> None:
    expected = granule_urs([r for r in stack if low <= int(attribute(r, "PATH_NUMBER")) <= high])

    results = run_search(cmr, asf_session, relativeOrbit=[(low, high)], **S1_IW_SLC)

    assert ("attribute[]", f"int,PATH_NUMBER,{low},{high}") in cmr.received[-1].params
    assert sorted(found_urs(results)) == sorted(expected)


# ------------------------------------------------------------------ paging


def test_asf_search_pages_through_more_than_one_cmr_page(
    cmr: CMREmulator, asf_session: asf.ASFSession, https_server: LocalHTTPSServer, shared_dir: Path
) -> None:
    # No patching: asf_search always asks for page_size=250 (translate.py binds CMR_PAGE_SIZE
    # at import, so patching INTERNAL.CMR_PAGE_SIZE would not change the request). Instead the
    # emulator is given more real records than one page: SLC stack + burst stack + Fairbanks.
    fixtures = shared_dir / "fixtures" / "asf_search"
    records = [
        *json.loads((fixtures / STACK_FIXTURE).read_text()),
        *yaml.load((fixtures / "SLC_BURST_stack.yml").read_text(), Loader=yaml.CSafeLoader),
        *yaml.load((fixtures / "Fairbanks_S1_stack.yml").read_text(), Loader=yaml.CSafeLoader),
    ]
    cmr.set_records(records)
    assert len(records) > 250

    results = run_search(cmr, asf_session, dataset=["SENTINEL-1", "SLC-BURST"])

    urs = found_urs(results)
    assert len(urs) == len(set(urs)) == len(records)
    assert set(urs) == granule_urs(records)
    first, second = https_server.requests(GRANULE_PATH)
    assert first.header("CMR-Search-After") is None
    assert second.header("CMR-Search-After") == first.response_header("CMR-Search-After")
    assert second.response_header("CMR-Search-After") is None
    assert [q.returned for q in cmr.received] == [250, len(records) - 250]


def test_raw_search_after_protocol(
    cmr: CMREmulator, ca_bundle: str, stack: list[dict[str, Any]]
) -> None:
    form = [
        ("shortName", "SENTINEL-1A_SLC"),
        ("shortName", "SENTINEL-1B_SLC"),
        ("page_size", "40"),
        ("sort_key[]", "-end_date"),
        ("sort_key[]", "granule_ur"),
        ("provider", "ASF"),
    ]
    pages: list[list[dict[str, Any]]] = []
    token: str | None = None
    with requests.Session() as http:
        http.verify, http.trust_env = ca_bundle, False
        for _ in range(len(stack)):  # bounded: a broken token must not loop forever
            headers = {"CMR-Search-After": token} if token else {}
            reply = http.post(cmr.url, data=form, headers=headers, timeout=10)
            assert reply.status_code == 200
            assert int(reply.headers["CMR-Hits"]) == reply.json()["hits"] == len(stack)
            pages.append(reply.json()["items"])
            token = reply.headers.get("CMR-Search-After")
            if token is None:
                break
        bad = http.post(cmr.url, data=form, headers={"CMR-Search-After": "[1]"}, timeout=10)

    assert [len(p) for p in pages] == [40, 40, 40, 40, len(stack) - 160]
    served = [item["umm"]["GranuleUR"] for page in pages for item in page]
    by_order = sorted(stack, key=lambda r: r["umm"]["GranuleUR"].lower())
    by_order.sort(key=lambda r: time_span(r)[1], reverse=True)
    assert served == [r["umm"]["GranuleUR"] for r in by_order]
    assert all(set(item) == {"umm", "meta"} for page in pages for item in page)
    assert bad.status_code == 400 and bad.json()["errors"]


def test_get_query_string_matches_post_form(cmr: CMREmulator, ca_bundle: str) -> None:
    query = [
        ("short_name[]", "SENTINEL-1B_SLC"),
        ("attribute[]", "int,FRAME_NUMBER,411"),
        ("page_size", "2000"),
    ]
    with requests.Session() as http:
        http.verify, http.trust_env = ca_bundle, False
        by_get = http.get(cmr.url, params=query, timeout=10).json()
        by_post = http.post(cmr.url, data=query, timeout=10).json()

    assert 0 < by_get["hits"] == by_post["hits"] < len(cmr.records)
    assert by_get["items"] == by_post["items"]
    assert {i["umm"]["CollectionReference"]["ShortName"] for i in by_get["items"]} == {
        "SENTINEL-1B_SLC"
    }


# ------------------------------------------------------------------ errors and faults


def test_unsupported_parameter_is_a_400(
    cmr: CMREmulator, asf_session: asf.ASFSession, ca_bundle: str
) -> None:
    reply = requests.post(
        cmr.url, data={"provider": "ASF", "cloud_cover": "0,10"}, verify=ca_bundle, timeout=10
    )
    assert reply.status_code == 400
    assert any("cloud_cover" in message for message in reply.json()["errors"])

    # asf_search passes cmr_keywords through verbatim; its 4xx handling must not phone home
    # (REPORT_ERRORS is off; netguard would fail this test otherwise).
    assert asf.REPORT_ERRORS is False
    with pytest.raises(asf.ASFSearch4xxError, match="not_a_cmr_param"):
        run_search(cmr, asf_session, cmr_keywords=[("not_a_cmr_param", "1")], **S1_IW_SLC)


def test_clockwise_polygon_is_rejected_like_cmr(cmr: CMREmulator, ca_bundle: str) -> None:
    clockwise = "-121,54,-121,55,-120,55,-120,54,-121,54"
    reply = requests.post(cmr.url, data={"polygon": clockwise}, verify=ca_bundle, timeout=10)

    assert reply.status_code == 400
    assert "counter-clockwise" in reply.json()["errors"][0]


def test_503_is_retried_by_asf_search(cmr: CMREmulator, asf_session: asf.ASFSession) -> None:
    # asf_search's get_page retries ASFSearch5xxError (tenacity: 3 attempts, first wait 3 s).
    expected = cmr.search([("temporal", "2018-03-01T00:00:00Z,2018-05-01T00:00:00Z")]).hits
    cmr.fail_next(503)

    results = run_search(cmr, asf_session, **SPRING_2018)

    assert len(results) == expected > 0
    assert [q.status for q in cmr.received] == [503, 200]


def test_dropped_connection_reaches_the_caller(
    cmr: CMREmulator, asf_session: asf.ASFSession, https_server: LocalHTTPSServer
) -> None:
    # asf_search does not retry connection errors: callers must.
    cmr.drop_next()
    with pytest.raises(requests.exceptions.ConnectionError):
        run_search(cmr, asf_session, **SPRING_2018)

    assert len(run_search(cmr, asf_session, **SPRING_2018)) > 0
    assert https_server.requests(GRANULE_PATH)[0].dropped


def test_delay_fault_makes_clients_time_out(cmr: CMREmulator, ca_bundle: str) -> None:
    cmr.delay_next(30)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(cmr.url, data={"provider": "ASF"}, verify=ca_bundle, timeout=0.5)
    cmr.reset()  # releases the hung handler at once


def test_rewrite_hook_changes_served_copies_only(
    cmr: CMREmulator, asf_session: asf.ASFSession, https_server: LocalHTTPSServer
) -> None:
    def to_local(item: dict[str, Any]) -> None:
        for link in item["umm"]["RelatedUrls"]:
            if link["Type"] == "GET DATA":
                link["URL"] = f"{https_server.url}/data/{item['umm']['GranuleUR']}.zip"

    originals = [json.dumps(r["umm"], sort_keys=True) for r in cmr.records]
    cmr.rewrite = to_local

    results = run_search(cmr, asf_session, **SPRING_2018)

    assert len(results) > 0
    assert {p.properties["url"] for p in results} == {
        f"{https_server.url}/data/{ur}.zip" for ur in found_urs(results)
    }
    assert [json.dumps(r["umm"], sort_keys=True) for r in cmr.records] == originals


# ------------------------------------------------------------------ TLS and isolation


def test_clients_without_our_ca_fail_verification(cmr: CMREmulator, ca_bundle: str) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(cmr.url, data={"provider": "ASF"}, timeout=10)
    with pytest.raises(requests.exceptions.SSLError):
        asf.search(opts=asf.ASFSearchOptions(host=cmr.host), **S1_IW_SLC)

    assert requests.post(cmr.url, data={"provider": "ASF"}, verify=ca_bundle, timeout=10).ok


def test_real_network_is_refused() -> None:
    with pytest.raises(netguard.BlockedNetworkError):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    with pytest.raises(netguard.BlockedNetworkError):
        socket.getaddrinfo("cmr.earthdata.nasa.gov", 443)

    assert len(netguard.take_blocked()) == 2  # consumed, so the autouse check stays green


def test_server_serves_ranges_and_can_cut_a_body_short(
    https_server: LocalHTTPSServer, ca_bundle: str
) -> None:
    payload = bytes(range(256)) * 1024
    whole = https_server.add_route("GET", "/test-blob", lambda r: bytes_response(r, payload))
    cut = https_server.add_route(
        "GET", "/test-cut", lambda r: bytes_response(r, payload, drop_after=5000, reset=False)
    )
    https_server.clear_log()
    try:
        with requests.Session() as http:
            http.verify, http.trust_env = ca_bundle, False
            part = http.get(f"{https_server.url}/test-blob", headers={"Range": "bytes=100-299"})
            with pytest.raises(requests.exceptions.ChunkedEncodingError):
                http.get(f"{https_server.url}/test-cut")
    finally:
        whole.remove()
        cut.remove()

    assert part.status_code == 206 and part.content == payload[100:300]
    assert part.headers["Content-Range"] == f"bytes 100-299/{len(payload)}"
    ranged, dropped = https_server.requests()
    assert (ranged.status, ranged.bytes_sent, ranged.dropped) == (206, 200, False)
    assert (dropped.status, dropped.bytes_sent, dropped.dropped) == (200, 5000, True)
