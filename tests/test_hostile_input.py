"""Hostile and bad input: names, URLs and paths that could run commands or write elsewhere, SLC
zips damaged in the cache, and saved searches edited by hand.

Config fuzzing (hypothesis) lives in test_config_fuzz.py. Here:

* a search reply whose granule name or download URL is hostile is refused with one message;
* an orbit-bucket listing with hostile keys: only well-formed keys are used;
* a workspace path full of shell syntax (spaces, quotes, ``$(...)``, backticks, ``;``) runs
  the plan, staging and topsApp.xml without executing anything or writing outside it, and
  topsApp.xml carries those paths so that ISCE's eval-based reader takes them as text;
* a zip truncated or corrupted in the cache after its verified download stops the ISCE target
  at topsApp.xml, naming the zip and the fix, before any topsApp step;
* a saved search (``inventory:``) with a missing field, or a wrong md5, fails with one line.
"""

from __future__ import annotations

import ast
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from shapely import wkt

from dinsar.config import Orbits, validate_config
from dinsar.net import pin_ca_bundle
from dinsar.orbits import OrbitRequest, find_orbit
from dinsar.safe import SafeError, read_safe
from dinsar.search import SearchError, run_search, search_asf
from fixture_scenes import TEST_ROI
from harness.pipeline import serve_window, user_setup
from harness.server import Response
from workflow_runner import REPO, executed_rules, output_of, snakemake, write_config

GRANULE = "S1A_IW_SLC__1SDV_20161007T141928_20161007T141956_013385_0155BE_46C1"
OTHER = "S1A_IW_SLC__1SDV_20161031T141928_20161031T141956_013735_0160AF_EEEE"
PAIR = "20161007_20161031"
START, END = "2016-10-07", "2016-10-31"  # 2 dates, 1 pair
SHELLY = "ws 'q' \"dq\" $(touch pwned) `touch pwned2`; touch pwned3 & x"
PWNED = ("pwned", "pwned2", "pwned3")


def pwned_anywhere(*roots: Path) -> list[Path]:
    found = []
    for root in roots:
        found += [p for name in PWNED for p in root.rglob(name)]
    return found


# --- search replies --------------------------------------------------------------------------

HOSTILE_NAMES = [
    f"{GRANULE}/../../../../tmp/evil",
    "S1A_IW_SLC__1SDV_$(touch pwned)",
    f"{GRANULE}; rm -rf ~",
    f"{GRANULE}\n",  # a regex with $ would let the newline through
    "S1A IW 'quoted' \"name\"",
]
HOSTILE_URLS = [
    f"http://127.0.0.1:9/SLC/SA/{GRANULE}.zip",  # plain http: a token would travel in clear
    f"https://user:secret@127.0.0.1:9/SLC/SA/{GRANULE}.zip",
    "file:///etc/passwd",
    "https://127.0.0.1:9/SLC/SA/../../../etc/passwd",
    f"https://127.0.0.1:9/SLC/SA/{OTHER}.zip",  # another product's file
    f"https://127.0.0.1:9/SLC/SA/{GRANULE}.zip; touch pwned",
]


def rewrite(field: str, value: str):
    def hook(item: dict) -> None:
        umm = item["umm"]
        ids = umm["DataGranule"]["Identifiers"]
        name = next(i["Identifier"] for i in ids if i["IdentifierType"] == "ProducerGranuleId")
        if name != GRANULE:
            return
        if field == "name":
            for ident in ids:
                if ident["IdentifierType"] == "ProducerGranuleId":
                    ident["Identifier"] = value
        else:
            for link in umm["RelatedUrls"]:
                if link.get("Type") == "GET DATA":
                    link["URL"] = value

    return hook


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", v) for v in HOSTILE_NAMES] + [("url", v) for v in HOSTILE_URLS],
    ids=[f"name{i}" for i in range(len(HOSTILE_NAMES))]
    + [f"url{i}" for i in range(len(HOSTILE_URLS))],
)
def test_a_hostile_record_in_a_search_reply_is_refused(field, value, cmr, ca_bundle, tmp_path):
    cmr.rewrite = rewrite(field, value)
    cfg = validate_config(
        {"workspace": str(tmp_path / "ws"), "roi": TEST_ROI,
         "dates": {"start": START, "end": END}, "search": {"host": cmr.host},
         "network": {"ca_bundle": ca_bundle, "retries": 0}}
    )  # fmt: skip
    inventory = tmp_path / "ws" / "inventory"
    with pytest.raises(SearchError) as info:
        run_search(cfg, inventory / "scenes.geojson", inventory / "dates.csv")
    message = str(info.value)
    assert message.startswith(f"ASF search at https://{cmr.host} returned a record that cannot")
    assert repr(value) in message and "refused" in message and "inventory:" in message
    assert list(tmp_path.rglob("*")) == []  # nothing written, nothing run
    assert pwned_anywhere(tmp_path, REPO) == []


def test_a_record_that_is_not_sentinel1_is_left_out(cmr, ca_bundle, tmp_path):
    cmr.rewrite = rewrite("name", f"../../{GRANULE}")
    cfg = validate_config(
        {"workspace": str(tmp_path / "ws"), "roi": TEST_ROI,
         "dates": {"start": START, "end": END}, "search": {"host": cmr.host},
         "network": {"ca_bundle": ca_bundle, "retries": 0}}
    )  # fmt: skip
    names = [s.granule for s in search_asf(cfg, wkt.loads(TEST_ROI), bursts=False)]
    assert names and GRANULE not in names and all(n.startswith("S1") for n in names)


# --- orbit listing -----------------------------------------------------------------------------


def test_hostile_keys_in_an_orbit_listing_are_ignored(
    orbit_bucket, https_server, ca_bundle, tmp_path
):
    import datetime as dt

    start = dt.datetime(2016, 10, 7, 14, 19, 28, tzinfo=dt.UTC)
    genuine = orbit_bucket.add_retimed("S1A", start, start + dt.timedelta(seconds=30))
    newest = "S1A_OPER_AUX_POEORB_OPOD_20991231T000000_V20161006T000000_20161009T000000.EOF"
    hostile = [
        f"AUX_POEORB/../../{newest}",  # the newest name, behind ../
        f"AUX_POEORB/sub/{newest}",
        f"AUX_POEORB/{newest}\n",
        "AUX_POEORB/S1A_OPER_AUX_POEORB_OPOD_$(touch pwned)_V20161006T000000_20161009T000000.EOF",
        "AUX_POEORB/../../../../etc/passwd",
    ]
    listing = orbit_bucket._list

    def poisoned(request):
        answer = listing(request)
        extra = "".join(
            f"<Contents><Key>{k}</Key><ETag>&quot;{'0' * 32}&quot;</ETag><Size>10</Size></Contents>"
            for k in hostile
        )
        body = answer.body.replace(b"</ListBucketResult>", extra.encode() + b"</ListBucketResult>")
        return Response(200, body, [("Content-Type", "application/xml")])

    route = https_server.add_route("GET", re.compile(r"/s1-orbits/?"), poisoned)
    try:
        request = OrbitRequest("20161007", "S1A", start, start + dt.timedelta(seconds=30), ("G",))
        entry = find_orbit(request, Orbits(asf_url=orbit_bucket.url), tmp_path / "orbits",
                           session=pin_ca_bundle(requests.Session(), ca_bundle))  # fmt: skip
    finally:
        route.remove()
    assert Path(entry.file).name == genuine
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == [f"orbits/{genuine}", f"orbits/{genuine}.lock", f"orbits/{genuine}.verified"]
    fetched = [e.path for e in orbit_bucket.requests() if "/AUX_" in e.path]
    assert fetched == [f"/s1-orbits/AUX_POEORB/{genuine}"]
    assert pwned_anywhere(tmp_path, REPO) == []


# --- member names inside a downloaded AUX_CAL bundle ------------------------------------------


def test_an_aux_cal_bundle_cannot_write_outside_its_folder(https_server, ca_bundle, tmp_path):
    import io
    import zipfile

    from dinsar.aux_cal import fetch_aux_cal
    from harness.server import bytes_response

    good = "S1A_AUX_CAL_V20140915T100000_G20151125T103928.SAFE"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"S1A/AUX_CAL/2014/09/15/{good}/manifest.safe", "<xfdu/>")
        for evil in (
            "../../evil.txt",
            "/tmp/evil_absolute.txt",
            f"S1A/AUX_CAL/{good}/../../../../evil.txt",
            "S1A/AUX_CAL/S1A_AUX_CAL_V1.SAFE/../../../../../evil.txt",
        ):
            archive.writestr(evil, "pwned")
    data = buffer.getvalue()
    route = https_server.add_route(
        "GET", re.compile(r"/hostile-aux/.+"), lambda request: bytes_response(request, data)
    )
    folder = tmp_path / "cache" / "aux_cal"
    try:
        session = pin_ca_bundle(requests.Session(), ca_bundle)
        fetch_aux_cal(["S1A"], folder, session, https_server.url + "/hostile-aux")
    finally:
        route.remove()
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [good]
    assert not list(tmp_path.rglob("evil*")) and not Path("/tmp/evil_absolute.txt").exists()


# --- a damaged zip ----------------------------------------------------------------------------


def test_a_zip_with_a_failing_crc_is_one_message(tmp_path, shared_dir):
    from harness.safe_factory import safe_zip_bytes

    data = bytearray(safe_zip_bytes(GRANULE, [-122.0, 54.0, -120.0, 55.5]))
    path = tmp_path / f"{GRANULE}.zip"
    path.write_bytes(data)
    safe = read_safe(path)
    member = safe.swaths[min(safe.swaths)].annotation
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF  # one flipped byte inside the annotation
    path.write_bytes(bytes(data))
    with pytest.raises(SafeError, match=rf"SLC {re.escape(str(path))} is damaged .*delete it"):
        read_safe(path)


# --- a workspace path made of shell syntax ----------------------------------------------------


@pytest.fixture
def services(cmr, earthdata, orbit_bucket, dem_tiles, https_server, shared_dir):
    return serve_window(START, END, cmr=cmr, earthdata=earthdata, orbit_bucket=orbit_bucket,
                        dem_tiles=dem_tiles, https_server=https_server, shared_dir=shared_dir)  # fmt: skip


def test_shell_syntax_in_the_workspace_path_runs_nothing(
    tmp_path, services, cmr, earthdata, orbit_bucket, dem_tiles, ca_bundle
):
    base = tmp_path / SHELLY
    base.mkdir()
    user = user_setup(base, START, END, services, cmr=cmr, earthdata=earthdata,
                      orbit_bucket=orbit_bucket, dem_tiles=dem_tiles, ca_bundle=ca_bundle)  # fmt: skip
    config = write_config(base, user.config)
    ws, slc = user.workspace, Path(user.config["cache"]["slc"])

    staged = snakemake(base, config, "plan", "stage", "--cores", "2", env=user.env)
    assert staged.returncode == 0, output_of(staged)[-4000:]
    assert (ws / "plan" / "pairs.csv").read_text().count(PAIR) == 1
    xml_path = ws / "work" / PAIR / "topsApp.xml"
    made = snakemake(base, config, str(xml_path), "--cores", "1", env=user.env)
    assert made.returncode == 0, output_of(made)[-4000:]
    assert pwned_anywhere(tmp_path, REPO, user.home) == []
    assert [p.name for p in tmp_path.iterdir()] == [SHELLY]  # everything stayed inside

    # ISCE evaluates property values (eval; a failure keeps the text): the zips go in a list
    # literal whose strings are escaped, every other path is a bare absolute path, which is
    # not Python at all, so it stays text
    values = {}
    for comp in ET.parse(xml_path).getroot().iter("component"):
        for prop in comp.findall("property"):
            values[f"{comp.get('name')}/{prop.get('name')}"] = prop.text or ""
    assert ast.literal_eval(values["reference/safe"]) == [str(slc / f"{GRANULE}.zip")]
    assert ast.literal_eval(values["secondary/safe"]) == [str(slc / f"{OTHER}.zip")]
    for key, text in values.items():
        if SHELLY in text and not key.endswith("/safe"):
            assert text.startswith("/"), key
            with pytest.raises(SyntaxError):
                compile(text, key, "eval")

    # a zip corrupted, then one truncated, in the cache after its verified download: refused at
    # topsApp.xml, before any topsApp step
    zip_path = slc / f"{GRANULE}.zip"
    good = zip_path.read_bytes()
    preprocess = ws / "work" / PAIR / "PICKLE" / "verifyDEM"
    for damage, expected in (
        (lambda b: b[:4096] + bytes(4096) + b[8192:], r"changed after its download was verified: its md5 is now"),
        (lambda b: b[: len(b) // 2], rf"has {len(good) // 2} bytes but had {len(good)}"),
    ):  # fmt: skip
        zip_path.write_bytes(damage(good))
        result = snakemake(base, config, str(preprocess), "--cores", "1", env=user.env)
        text = output_of(result)
        assert result.returncode != 0
        assert re.search(
            rf"error in rule topsapp_xml: SLC {re.escape(str(zip_path))} {expected}", text
        ), text[-3000:]
        assert "delete it and run again" in text and "Traceback" not in text
        assert not any(r.startswith("isce_") for r in executed_rules(result))
        assert not (ws / "work" / PAIR / "PICKLE").exists()
    assert pwned_anywhere(tmp_path, REPO, user.home) == []


def test_shell_syntax_in_the_config_is_a_validation_message(tmp_path):
    config = write_config(tmp_path, {"workspace": str(tmp_path / SHELLY),
                                     "roi": "POLYGON ((0 0, 1 0, 1 1, 0 0)) $(touch pwned)",
                                     "dates": {"start": START, "end": END}})  # fmt: skip
    result = snakemake(tmp_path, config, "-n")
    text = output_of(result)
    assert result.returncode != 0 and "invalid configuration" in text and "roi:" in text
    assert "Traceback" not in text
    assert pwned_anywhere(tmp_path, REPO) == [] and not (tmp_path / SHELLY).exists()


# --- saved searches edited by hand -------------------------------------------------------------


def saved_search(tmp_path: Path, cmr, ca_bundle: str) -> Path:
    """The inventory a search against the emulated CMR writes (our own format)."""
    cfg = validate_config(
        {"workspace": str(tmp_path / "searched"), "roi": TEST_ROI,
         "dates": {"start": START, "end": END}, "search": {"host": cmr.host},
         "network": {"ca_bundle": ca_bundle}}
    )  # fmt: skip
    folder = tmp_path / "searched"
    run_search(cfg, folder / "scenes.geojson", folder / "dates.csv")
    return folder / "scenes.geojson"


def edit(path: Path, granule: str, **changes) -> Path:
    data = json.loads(path.read_text())
    for feature in data["features"]:
        if feature["properties"]["granule"] == granule:
            for key, value in changes.items():
                if value is None:
                    feature["properties"].pop(key)
                else:
                    feature["properties"][key] = value
    out = path.with_name("edited.geojson")
    out.write_text(json.dumps(data))
    return out


def test_a_saved_search_without_a_field_stops_the_plan(
    tmp_path, services, cmr, earthdata, orbit_bucket, dem_tiles, ca_bundle
):
    edited = edit(saved_search(tmp_path, cmr, ca_bundle), GRANULE, url=None)
    user = user_setup(tmp_path, START, END, services, cmr=cmr, earthdata=earthdata,
                      orbit_bucket=orbit_bucket, dem_tiles=dem_tiles, ca_bundle=ca_bundle,
                      inventory=str(edited))  # fmt: skip
    result = snakemake(tmp_path, write_config(tmp_path, user.config), "plan", "--cores", "1",
                       env=user.env)  # fmt: skip
    text = output_of(result)
    assert result.returncode != 0
    assert re.search(
        rf"error in rule search: inventory edited.geojson feature \d+ \({GRANULE}\): field 'url' "
        "is missing; restore it or search again",
        text,
    ), text[-3000:]
    assert "Traceback" not in text and not (user.workspace / "plan").exists()


def test_a_wrong_md5_in_a_saved_search_fails_the_download_cleanly(
    tmp_path, services, cmr, earthdata, orbit_bucket, dem_tiles, ca_bundle
):
    wrong = "0123456789abcdef0123456789abcdef"
    edited = edit(saved_search(tmp_path, cmr, ca_bundle), GRANULE, md5=wrong)
    user = user_setup(tmp_path, START, END, services, cmr=cmr, earthdata=earthdata,
                      orbit_bucket=orbit_bucket, dem_tiles=dem_tiles, ca_bundle=ca_bundle,
                      inventory=str(edited))  # fmt: skip
    zip_path = Path(user.config["cache"]["slc"]) / f"{GRANULE}.zip"
    result = snakemake(tmp_path, write_config(tmp_path, user.config), str(zip_path), "--cores",
                       "1", env=user.env)  # fmt: skip
    text = output_of(result)
    assert result.returncode != 0
    real = earthdata.products[GRANULE].md5
    assert (
        f"error in rule download_slc: {GRANULE}: md5 of the downloaded file is {real} but the "
        f"inventory says {wrong}; the file was deleted" in text
    ), text[-3000:]
    assert "fix the saved search that `inventory:` names" in text and "Traceback" not in text
    assert not zip_path.exists() and not list(zip_path.parent.glob("*.part"))
    # no Snakemake retry (a retry would fetch the whole file again and fail the same way)
    assert executed_rules(result).count("download_slc") == 1
    assert earthdata.bytes_sent(GRANULE) == earthdata.products[GRANULE].size + 1  # + the probe
