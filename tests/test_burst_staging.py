"""Burst mode's staging: bursts through our downloader from the emulated burst extractor, the
completeness checks, and one SAFE per date assembled with burst2safe's local route.

The extractor (harness.burst_extractor) cuts bursts from the shared real stack's SLC zips
(harness.real_stack: IW1 VV, two bursts) behind the Earthdata emulator's login.
"""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dinsar.burst_staging import (
    BurstStagingError,
    assemble_safe,
    burst_targets,
    download_burst,
    metadata_problem,
    tiff_problem,
)
from dinsar.config import Download, Network
from dinsar.credentials import EarthdataCredentials, EarthdataSession
from dinsar.download import DownloadError, MiB
from dinsar.inventory import Acquisition, Burst, burst_from_properties, group_acquisitions
from dinsar.safe import read_safe

FAST = Network(retries=3, backoff=0.01, timeout=30)
CHUNKS = Download(chunk_mb=1)


@pytest.fixture
def stack(real_stack):
    """The shared real stack (built once per session)."""
    return real_stack


@pytest.fixture
def extractor(earthdata, stack):
    from harness.burst_extractor import BurstExtractor, stack_calibration

    service = BurstExtractor(earthdata)
    for index, scene in enumerate(stack.scenes[:2]):
        calibration, noise = stack_calibration(stack, index)
        service.add_slice(scene.zip_path, calibration, noise)
    yield service
    service.close()


def bursts_of(stack, extractor, date_index: int) -> list[Burst]:
    from harness.burst_extractor import burst_records

    slice_ = extractor.slices[stack.scenes[date_index].granule]
    return [
        burst_from_properties(r["properties"], r["geometry"], None, "emulated record")
        for r in burst_records(stack, extractor, slice_)
    ]


def session(earthdata, ca_bundle: str) -> EarthdataSession:
    user, password = earthdata.user
    return EarthdataSession(EarthdataCredentials("test .netrc", user, password),
                            earthdata.edl_host, ca_bundle)  # fmt: skip


def fetch_all(bursts: list[Burst], folder: Path, earthdata, ca_bundle: str) -> None:
    """Every file of these bursts into ``folder``."""
    with session(earthdata, ca_bundle) as http:
        for burst in bursts:
            download_burst(burst, folder, http, FAST, CHUNKS)


def pixels(zip_path: Path) -> np.ndarray:
    """The complex pixels of a SAFE zip's one measurement TIFF, read by GDAL as ISCE reads them."""
    from osgeo import gdal

    with zipfile.ZipFile(zip_path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".tiff"))
    return np.asarray(gdal.Open(f"/vsizip/{zip_path}/{name}").ReadAsArray())


def test_emulated_records_have_the_real_form(stack, extractor) -> None:
    bursts = bursts_of(stack, extractor, 0)
    assert len(bursts) == 2
    assert {b.swath for b in bursts} == {"IW1"} and [b.burst_index for b in bursts] == [0, 1]
    assert bursts[0].full_burst_id.startswith("168_") and bursts[0].track == "168_DESC"
    assert bursts[0].source == stack.scenes[0].granule
    # consecutive burst IDs along the pass, the same IDs on the next date
    ids = [int(b.full_burst_id.split("_")[1]) for b in bursts]
    assert ids[1] == ids[0] + 1
    assert [b.key for b in bursts_of(stack, extractor, 1)] == [b.key for b in bursts]


def test_bursts_download_whole_and_once(stack, extractor, earthdata, ca_bundle, tmp_path) -> None:
    bursts = bursts_of(stack, extractor, 0)
    cache = tmp_path / "cache" / "bursts"
    with session(earthdata, ca_bundle) as http:
        skipped = [[o.skipped for o in download_burst(b, cache, http, FAST, CHUNKS)]
                   for b in bursts]  # fmt: skip
        # each TIFF once; the slice's metadata once for both bursts
        assert skipped == [[False, False], [False, True]]
        for burst in bursts:
            assert tiff_problem(cache / burst.filename, burst.bytes) is None
            assert metadata_problem(cache / burst.xml_filename) is None
        sent = extractor.bytes_sent()
        own = sum(b.bytes for b in bursts)
        tiffs = sum((cache / b.filename).stat().st_size for b in bursts)
        xml = (cache / bursts[0].xml_filename).stat().st_size
        assert sent == tiffs + xml  # every byte sent once, and kept
        # the stack's bursts are small (5.7 MB each); the XML is the real annotation of a
        # whole swath, so its share here is far larger than for a 147 MB burst
        assert tiffs - own == 2 * 146  # a TIFF header per burst
        # a second run downloads nothing
        for burst in bursts:
            assert all(o.skipped for o in download_burst(burst, cache, http, FAST, CHUNKS))
    assert extractor.bytes_sent() == sent


def test_a_dropped_burst_download_resumes(stack, extractor, earthdata, ca_bundle, tmp_path) -> None:
    burst = bursts_of(stack, extractor, 0)[0]
    tiff, _ = burst_targets(burst, tmp_path)
    earthdata.drop_after(3 * MiB)
    with session(earthdata, ca_bundle) as http:
        outcomes = download_burst(burst, tmp_path, http, FAST, CHUNKS)
    assert outcomes[0].requests == 2 and outcomes[0].offsets[1] > 0
    assert tiff_problem(tiff.dest, burst.bytes) is None
    assert not tiff.part.exists()


def test_a_truncated_tiff_is_never_renamed_into_place(tmp_path, stack, extractor) -> None:
    burst = bursts_of(stack, extractor, 0)[0]
    whole = extractor._tiff(extractor.slices[burst.source], "IW1", "VV", 0)
    path = tmp_path / burst.filename
    path.write_bytes(whole)
    assert tiff_problem(path, burst.bytes) is None
    assert "record says" in tiff_problem(path, burst.bytes + 4)
    path.write_bytes(whole[: len(whole) - 1000])
    assert "strips end at byte" in tiff_problem(path, burst.bytes)
    path.write_bytes(b"<html>login</html>")
    assert "not a readable TIFF" in tiff_problem(path, burst.bytes)
    (tmp_path / "m.xml").write_bytes(b"<burst><metadata>")
    assert "not readable XML" in metadata_problem(tmp_path / "m.xml")


def test_server_sending_a_short_tiff_fails_with_one_line(
    stack, extractor, earthdata, ca_bundle, tmp_path, monkeypatch
) -> None:
    """A reply that ends early without saying so (no Content-Length to tell) must not become
    the cached TIFF: the content check stops it before the rename."""
    burst = bursts_of(stack, extractor, 0)[0]
    found = extractor.slices[burst.source]
    short = extractor._tiff(found, "IW1", "VV", 0)[:-4096]
    extractor._cache[(burst.source, "IW1", "VV", 0, "tiff")] = short
    with session(earthdata, ca_bundle) as http, pytest.raises(DownloadError) as err:
        download_burst(burst, tmp_path, http, FAST, CHUNKS)
    message = str(err.value)
    assert "is not whole" in message and "strips end at byte" in message and "\n" not in message
    assert not (tmp_path / burst.filename).exists()


@pytest.mark.parametrize("path, message", [
    ("IW1/VV/7.tiff", "burst index 7 is out of range"),
    ("IW1/VH/0.tiff", "holds no IW1 VH"),
    ("IW3/VV/0.xml", "holds no IW3 VV"),
])  # fmt: skip
def test_a_wrong_burst_is_an_error_not_an_empty_file(
    stack, extractor, earthdata, ca_bundle, path: str, message: str
) -> None:
    url = f"{extractor.base_url}/{stack.scenes[0].granule}/{path}"
    with session(earthdata, ca_bundle) as http:
        reply = http.get(url, timeout=30)
    assert reply.status_code == 404 and message in reply.text


def test_one_safe_per_date_from_local_bursts(stack, extractor, earthdata, ca_bundle, tmp_path) -> None:
    bursts = bursts_of(stack, extractor, 0)
    cache = tmp_path / "cache"
    fetch_all(bursts, cache, earthdata, ca_bundle)
    (name,) = Acquisition("168_DESC", "20210401", bursts).safe_names
    assert name.startswith("168_DESC_20210401_168_IW1_") and name.endswith("_VV")
    dest = tmp_path / "ws" / "safe" / f"{name}.zip"
    requests_before = len(extractor.requests())
    assemble_safe(bursts, cache, dest)
    assert len(extractor.requests()) == requests_before  # the local route: no download
    # the shared cache keeps its bursts (burst2safe deletes its inputs unless told not to)
    for burst in bursts:
        assert tiff_problem(cache / burst.filename, burst.bytes) is None
        assert metadata_problem(cache / burst.xml_filename) is None
    assert not [p for p in dest.parent.iterdir() if p != dest]  # no work files left
    assembled = read_safe(dest, "vv")
    original = read_safe(stack.scenes[0].zip_path, "vv")
    (swath,) = assembled.swaths.values()
    (source,) = original.swaths.values()
    assert len(swath.bursts) == len(source.bursts) == 2
    assert [b.azimuth_time for b in swath.bursts] == [b.azimuth_time for b in source.bursts]
    # the pixels are the slice's own
    with zipfile.ZipFile(dest) as archive:
        tiff = next(n for n in archive.namelist() if n.endswith(".tiff"))
        import tifffile

        page = tifffile.TiffFile(io.BytesIO(archive.read(tiff))).pages.first
        assert (page.imagelength, page.imagewidth) == (2 * swath.lines_per_burst, swath.samples_per_burst)


def test_assembly_without_the_bursts_says_what_to_do(stack, extractor, tmp_path) -> None:
    bursts = bursts_of(stack, extractor, 0)
    with pytest.raises(BurstStagingError) as err:
        assemble_safe(bursts, tmp_path / "empty", tmp_path / "x.zip")
    assert "is missing from the burst cache" in str(err.value) and "\n" not in str(err.value)


def test_netrc_untouched_and_nothing_secret_printed(
    stack, extractor, earthdata, ca_bundle, tmp_path, netrc_home, caplog, capfd
) -> None:
    """Credentials come from our module; burst2safe's auth (which appends to ~/.netrc) is
    never called, and neither the password nor the token reaches a log or the terminal."""
    netrc = netrc_home / ".netrc"
    user, password = earthdata.user
    netrc.write_text(f"machine {earthdata.edl_host.split(':')[0]} login {user} password {password}\n")
    netrc.chmod(0o600)
    before = netrc.read_bytes()
    bursts = bursts_of(stack, extractor, 0)
    caplog.set_level(logging.DEBUG)
    with session(earthdata, ca_bundle) as http:
        for burst in bursts:
            download_burst(burst, tmp_path / "cache", http, FAST, CHUNKS, io.StringIO())
    assemble_safe(bursts, tmp_path / "cache", tmp_path / "safe.zip")
    assert netrc.read_bytes() == before
    out, err = capfd.readouterr()
    for text in (caplog.text, out, err):
        assert password not in text and earthdata.token not in text


def test_pixels_of_the_assembled_safe_equal_the_slice(stack, extractor, earthdata, ca_bundle,
                                                     tmp_path) -> None:  # fmt: skip
    bursts = bursts_of(stack, extractor, 1)
    fetch_all(bursts, tmp_path, earthdata, ca_bundle)
    dest = assemble_safe(bursts, tmp_path, tmp_path / "out" / "safe.zip")
    assert np.array_equal(pixels(dest), pixels(stack.scenes[1].zip_path))


@pytest.mark.parametrize("roi", [None, (11.60, 46.45, 11.70, 46.50)])
def test_the_burst_set_is_what_isce_keeps_from_the_annotation(stack, extractor, roi) -> None:
    """The set chosen from the records' footprints (dinsar.bursts.isce_box) holds the bursts
    ISCE's crop keeps, computed from the annotation's geolocation grid (isce_keeps): the
    stack's area needs both bursts (their footprints meet only one), a northern one the first."""
    import shapely

    from dinsar.burst_set import choose_burst_set
    from dinsar.bursts import isce_keeps

    box = roi or stack.spec.roi
    (swath,) = read_safe(stack.scenes[0].zip_path, "vv").swaths.values()
    kept = [i for i, b in enumerate(swath.bursts) if isce_keeps(b.geometry, swath.grid, box)]
    bursts = bursts_of(stack, extractor, 0)
    choice = choose_burst_set("168_DESC", [Acquisition("168_DESC", "20210401", bursts)],
                              shapely.box(*box))  # fmt: skip
    assert [b.burst_index for b in bursts if b.key in choice.keys] == kept
    assert kept == ([0, 1] if roi is None else [0])


def test_a_kill_leaves_a_part_that_the_next_run_resumes(stack, extractor, earthdata, ca_bundle,
                                                        tmp_path) -> None:  # fmt: skip
    """What a SIGKILL mid-transfer leaves is a `.part` (never the final name): the next
    download asks only for the rest."""
    burst = bursts_of(stack, extractor, 0)[0]
    tiff, _ = burst_targets(burst, tmp_path)
    whole = extractor._tiff(extractor.slices[burst.source], "IW1", "VV", 0)
    tiff.part.write_bytes(whole[: len(whole) // 3])
    with session(earthdata, ca_bundle) as http:
        outcome = download_burst(burst, tmp_path, http, FAST, CHUNKS)[0]
    assert outcome.resumed_from == len(whole) // 3 and outcome.offsets == [len(whole) // 3]
    assert tiff.dest.read_bytes() == whole and not tiff.part.exists()


def test_a_burst_damaged_in_the_cache_stops_the_assembly(stack, extractor, earthdata, ca_bundle,
                                                        tmp_path) -> None:  # fmt: skip
    bursts = bursts_of(stack, extractor, 0)
    fetch_all(bursts, tmp_path, earthdata, ca_bundle)
    damaged = tmp_path / bursts[1].filename
    damaged.write_bytes(damaged.read_bytes()[:-10_000])
    with pytest.raises(BurstStagingError) as err:
        assemble_safe(bursts, tmp_path, tmp_path / "out" / "x.zip")
    message = str(err.value)
    assert "is damaged" in message and str(damaged) in message and "\n" not in message
    assert not (tmp_path / "out" / "x.zip").exists()
    # the next download finds it incomplete and fetches it again
    with session(earthdata, ca_bundle) as http:
        outcome = download_burst(bursts[1], tmp_path, http, FAST, CHUNKS)[0]
    assert not outcome.skipped and tiff_problem(damaged, bursts[1].bytes) is None


def test_a_date_split_into_two_slices_makes_one_safe(stack, extractor, earthdata, ca_bundle,
                                                     tmp_path) -> None:  # fmt: skip
    """A date of the stack cut into two slices of one burst each (different granules, as a
    pass's slices are): its two bursts still make one date and one SAFE, the same bursts and
    pixels as the whole slice."""
    from harness.burst_extractor import burst_records, split_slice

    whole = extractor.slices[stack.scenes[0].granule]
    first = whole.name[:-4] + "AAAA"
    second = whole.name.replace("T052635_", "T052638_", 1)[:-4] + "BBBB"
    parts = split_slice(whole, first, second)
    records = []
    for part in parts:
        extractor.slices[part.name] = part
        records += burst_records(stack, extractor, part)
    bursts = [burst_from_properties(r["properties"], r["geometry"]) for r in records]
    assert [b.source for b in bursts] == [first, second]
    assert [b.key for b in bursts] == [b.key for b in bursts_of(stack, extractor, 0)]
    (acquisition,) = group_acquisitions(bursts)
    assert acquisition.slices == [first, second] and len(acquisition.safe_names) == 1
    fetch_all(bursts, tmp_path, earthdata, ca_bundle)
    dest = assemble_safe(bursts, tmp_path, tmp_path / "out" / f"{acquisition.safe_names[0]}.zip")
    (swath,) = read_safe(dest, "vv").swaths.values()
    (source,) = read_safe(stack.scenes[0].zip_path, "vv").swaths.values()
    assert [b.azimuth_time for b in swath.bursts] == [b.azimuth_time for b in source.bursts]
    assert np.array_equal(pixels(dest), pixels(stack.scenes[0].zip_path))
