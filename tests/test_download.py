"""Resumable, verified downloads through the emulated Earthdata login: faults and their messages.

Real requests/urllib3/TLS against the local server; every transfer is checked in the server's
request log (status, Range, bytes actually sent).
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
import threading
from pathlib import Path

import pytest

from dinsar.config import Download, Network
from dinsar.credentials import (
    CredentialsError,
    EarthdataCredentials,
    EarthdataSession,
    find_credentials,
)
from dinsar.disk import DiskSpaceError, check_free_space, remaining_bytes
from dinsar.download import (
    AuthError,
    ChecksumError,
    DownloadError,
    MiB,
    Target,
    download,
    missing_downloads,
    preflight,
    probe,
)

GRANULE = "S1A_IW_SLC__1SDV_20161007T141928_20161007T141956_013385_0155BE_46C1"
SIZE = 1_000_003  # not a multiple of the chunk size
CHUNK = 64 * 1024
FAST = Network(retries=3, backoff=0.01, timeout=10)
CHUNKS = Download(chunk_mb=CHUNK / MiB)


def payload(size: int = SIZE, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def product(earthdata):
    return earthdata.add_product(GRANULE, payload())


def password_session(earthdata, ca_bundle: str, password: str | None = None) -> EarthdataSession:
    user, real = earthdata.user
    creds = EarthdataCredentials("test .netrc", user, password or real)
    return EarthdataSession(creds, earthdata.edl_host, ca_bundle)


def token_session(earthdata, ca_bundle: str, token: str | None = None) -> EarthdataSession:
    creds = EarthdataCredentials("test env", token=token or earthdata.token)
    return EarthdataSession(creds, earthdata.edl_host, ca_bundle)


def target(product, tmp_path: Path, **changes) -> Target:
    values = {"url": product.url, "dest": tmp_path / "slc" / f"{GRANULE}.zip", "size": product.size,
              "md5": product.md5, "label": GRANULE, **changes}  # fmt: skip
    return Target(**values)


def not_downloaded(tmp_path: Path) -> bool:
    return not list((tmp_path / "slc").glob("*.zip")) and not list(
        (tmp_path / "slc").glob("*.part")
    )


def product_log(earthdata):
    return [e for e in earthdata.product_requests() if e.status in (200, 206)]


def test_login_redirect_sets_a_cookie_and_the_file_is_verified(
    earthdata, product, ca_bundle, tmp_path
):
    outcome = download(target(product, tmp_path), password_session(earthdata, ca_bundle), FAST, CHUNKS)
    dest = tmp_path / "slc" / f"{GRANULE}.zip"
    assert dest.read_bytes() == payload()
    assert not dest.with_name(dest.name + ".part").exists()
    assert outcome.requests == 1 and outcome.transferred == SIZE and not outcome.skipped
    assert earthdata.logins == [(earthdata.user[0], True)]
    log = earthdata.server.requests()
    hops = [(e.path.split("?")[0], e.status, e.header("Host")) for e in log]
    assert hops == [
        (f"/SLC/SA/{GRANULE}.zip", 302, earthdata.data_host),
        ("/oauth/authorize", 302, earthdata.edl_host),
        ("/login", 302, earthdata.data_host),
        (f"/SLC/SA/{GRANULE}.zip", 200, earthdata.data_host),
    ]
    # the password goes to the login host only; the data host sees only the session cookie
    assert (
        log[1]
        .header(
            "Authorization",
        )
        .startswith("Basic ")
    )
    assert all(
        e.header("Authorization") is None for e in log if e.header("Host") == earthdata.data_host
    )
    assert "asf-urs=" in (log[3].header("Cookie") or "")


def test_a_token_goes_to_the_data_host_as_bearer_without_login(
    earthdata, product, ca_bundle, tmp_path
):
    download(target(product, tmp_path), token_session(earthdata, ca_bundle), FAST, CHUNKS)
    log = earthdata.server.requests()
    assert [(e.status, e.header("Authorization")) for e in log] == [
        (200, f"Bearer {earthdata.token}")
    ]
    assert earthdata.logins == []


def test_a_dropped_connection_resumes_from_the_offset(earthdata, product, ca_bundle, tmp_path):
    earthdata.drop_after(400_000)  # FIN after 400 kB: the client sees a truncated body
    sleeps: list[float] = []
    outcome = download(
        target(product, tmp_path), password_session(earthdata, ca_bundle), FAST, CHUNKS, sleep=sleeps.append
    )
    assert (tmp_path / "slc" / f"{GRANULE}.zip").read_bytes() == payload()
    first, second = product_log(earthdata)
    assert first.status == 200 and first.dropped and first.bytes_sent == 400_000
    offset = int(second.header("Range").removeprefix("bytes=").removesuffix("-"))
    assert second.status == 206 and offset == outcome.offsets[1]
    assert offset % CHUNK == 0 and 400_000 - CHUNK < offset <= 400_000  # only whole chunks kept
    resent = first.bytes_sent + second.bytes_sent - SIZE
    assert 0 <= resent <= CHUNK  # at most the chunk being read when the connection broke
    assert second.bytes_sent == SIZE - offset
    assert outcome.retries == 1 and sleeps == [0.01]


def test_a_reset_connection_also_resumes(earthdata, product, ca_bundle, tmp_path):
    # RST: the kernel throws away what the client had not read yet, so the server log cannot
    # tell what the client lost; the client resumes after its last whole chunk
    earthdata.drop_after(700_000, reset=True)
    outcome = download(
        target(product, tmp_path),
        password_session(earthdata, ca_bundle),
        FAST, CHUNKS,
        sleep=lambda s: None,
    )
    first, second = product_log(earthdata)
    assert first.dropped and second.status == 206
    assert (
        second.header("Range") == f"bytes={outcome.offsets[1]}-" and outcome.offsets[1] % CHUNK == 0
    )
    assert (
        hashlib.md5((tmp_path / "slc" / f"{GRANULE}.zip").read_bytes()).hexdigest() == product.md5
    )  # noqa: S324


def test_503_then_success(earthdata, product, ca_bundle, tmp_path):
    earthdata.fail_next(503, times=2)
    sleeps: list[float] = []
    outcome = download(
        target(product, tmp_path), password_session(earthdata, ca_bundle), FAST, CHUNKS, sleep=sleeps.append
    )
    assert [e.status for e in earthdata.product_requests()][-3:] == [503, 503, 200]
    assert outcome.retries == 2 and sleeps == [0.01, 0.02]  # exponential backoff
    assert (tmp_path / "slc" / f"{GRANULE}.zip").stat().st_size == SIZE


def test_retries_used_up_keeps_the_part_and_says_run_again(earthdata, product, ca_bundle, tmp_path):
    earthdata.drop_after(200_000)

    def sleep(seconds: float) -> None:  # after the drop, the server only answers 503
        if not earthdata.faults.pending():
            earthdata.fail_next(503, times=10)

    with pytest.raises(DownloadError) as err:
        download(
            target(product, tmp_path), password_session(earthdata, ca_bundle), FAST, CHUNKS, sleep=sleep
        )
    message = str(err.value)
    assert "failed 4 times in a row (HTTP 503" in message and "run again to resume" in message
    part = tmp_path / "slc" / f"{GRANULE}.zip.part"
    assert part.stat().st_size == 3 * CHUNK  # the whole chunks of the dropped transfer are kept
    assert not (tmp_path / "slc" / f"{GRANULE}.zip").exists()


def test_wrong_password_gives_a_credentials_message(earthdata, product, ca_bundle, tmp_path):
    session = password_session(earthdata, ca_bundle, password="wrong")
    with pytest.raises(AuthError) as err:
        download(target(product, tmp_path), session, FAST, CHUNKS)
    message = str(err.value)
    assert "Earthdata Login rejected the credentials (HTTP 401" in message
    assert f"user '{earthdata.user[0]}' from test .netrc" in message
    assert "wrong" not in message
    assert not_downloaded(tmp_path)
    assert earthdata.logins == [(earthdata.user[0], False)]


def test_expired_token_gives_a_token_message(earthdata, product, ca_bundle, tmp_path):
    with pytest.raises(AuthError, match="token was rejected .*create a new one"):
        download(target(product, tmp_path), token_session(earthdata, ca_bundle, "expired"), FAST, CHUNKS)


def test_pending_eula_gives_a_eula_message(earthdata, product, ca_bundle, tmp_path):
    earthdata.eula_pending.add(earthdata.user[0])
    with pytest.raises(AuthError) as err:
        download(target(product, tmp_path), password_session(earthdata, ca_bundle), FAST, CHUNKS)
    assert "HTTP 403" in str(err.value) and "accept its EULA" in str(err.value)
    assert "rejected the credentials" not in str(err.value)


def test_unapproved_application_page_is_not_taken_for_the_file(
    earthdata, product, ca_bundle, tmp_path
):
    earthdata.unapproved.add(earthdata.user[0])
    with pytest.raises(AuthError, match="approve the application"):
        download(target(product, tmp_path), password_session(earthdata, ca_bundle), FAST, CHUNKS)
    assert not_downloaded(tmp_path)


def test_md5_mismatch_deletes_the_file_and_reports(earthdata, product, ca_bundle, tmp_path):
    bad = "0" * 32
    with pytest.raises(ChecksumError) as err:
        download(target(product, tmp_path, md5=bad), password_session(earthdata, ca_bundle), FAST, CHUNKS)
    assert f"md5 of the downloaded file is {product.md5} but the inventory says {bad}" in str(
        err.value
    )
    assert "deleted" in str(err.value)
    assert not_downloaded(tmp_path)


def test_existing_complete_file_makes_no_request(earthdata, product, ca_bundle, tmp_path):
    dest = tmp_path / "slc" / f"{GRANULE}.zip"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(payload())
    earthdata.server.clear_log()
    outcome = download(target(product, tmp_path), password_session(earthdata, ca_bundle), FAST, CHUNKS)
    assert outcome.skipped and outcome.requests == 0
    assert earthdata.server.requests() == []


def test_existing_file_with_wrong_content_is_fetched_again(earthdata, product, ca_bundle, tmp_path):
    dest = tmp_path / "slc" / f"{GRANULE}.zip"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(payload(seed=99))  # same size, other bytes
    outcome = download(target(product, tmp_path), password_session(earthdata, ca_bundle), FAST, CHUNKS)
    assert not outcome.skipped and dest.read_bytes() == payload()


def test_existing_part_resumes_with_a_range_request(earthdata, product, ca_bundle, tmp_path):
    part = tmp_path / "slc" / f"{GRANULE}.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(payload()[:400_000])
    outcome = download(target(product, tmp_path), password_session(earthdata, ca_bundle), FAST, CHUNKS)
    (entry,) = product_log(earthdata)
    assert entry.status == 206 and entry.header("Range") == "bytes=400000-"
    assert entry.bytes_sent == SIZE - 400_000 and outcome.resumed_from == 400_000
    assert (tmp_path / "slc" / f"{GRANULE}.zip").read_bytes() == payload()


def test_two_processes_on_one_cache_download_once(earthdata, product, ca_bundle, tmp_path):
    earthdata.drop_after(600_000)  # slow the first one down with a resume
    results = []

    def run() -> None:
        results.append(
            download(target(product, tmp_path), password_session(earthdata, ca_bundle), FAST, CHUNKS)
        )

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.skipped for r in results) == [False, True]
    assert earthdata.bytes_sent() - SIZE <= CHUNK  # one transfer (plus one resumed chunk)
    assert (tmp_path / "slc" / f"{GRANULE}.zip").read_bytes() == payload()


def test_missing_product_says_search_again(earthdata, ca_bundle, tmp_path):
    url = earthdata.url(GRANULE)
    with pytest.raises(DownloadError, match="not found .*HTTP 404.*search again"):
        download(
            Target(url, tmp_path / "x.zip", 10, None, GRANULE),
            password_session(earthdata, ca_bundle),
            FAST, CHUNKS,
        )


def test_inventory_size_disagreeing_with_the_server_stops_early(
    earthdata, product, ca_bundle, tmp_path
):
    with pytest.raises(DownloadError, match=f"offers {SIZE} bytes but the inventory says 5"):
        download(target(product, tmp_path, size=5), password_session(earthdata, ca_bundle), FAST, CHUNKS)
    assert not_downloaded(tmp_path)  # nothing was written


def test_untrusted_certificate_is_not_retried(earthdata, product, tmp_path):
    creds = EarthdataCredentials("test", *earthdata.user)
    session = EarthdataSession(creds, earthdata.edl_host, ca_bundle=None)
    session.trust_env = False
    session.verify = True  # the system CAs do not know the test CA
    with pytest.raises(DownloadError, match="not trusted.*network.ca_bundle"):
        download(target(product, tmp_path), session, FAST, CHUNKS, sleep=lambda s: pytest.fail("retried"))


def test_progress_goes_to_the_log_as_a_few_lines(earthdata, product, ca_bundle, tmp_path):
    log = io.StringIO()
    download(target(product, tmp_path), password_session(earthdata, ca_bundle), FAST, CHUNKS, progress=log)
    lines = log.getvalue().splitlines()
    assert 1 <= len(lines) <= 3  # start and end, not one line per 64 kB chunk (16 of them)
    assert GRANULE in lines[-1] and "100%" in lines[-1] and "\r" not in log.getvalue()


def test_probe_checks_login_and_eula_for_one_byte(earthdata, product, ca_bundle, tmp_path):
    assert probe(target(product, tmp_path), password_session(earthdata, ca_bundle), FAST) == 206
    assert earthdata.bytes_sent() == 1
    earthdata.eula_pending.add(earthdata.user[0])
    with pytest.raises(AuthError, match="EULA"):
        probe(target(product, tmp_path), password_session(earthdata, ca_bundle), FAST)


def test_remaining_bytes_counts_parts_and_skips_complete_files(tmp_path):
    (tmp_path / "a.zip").write_bytes(b"x" * 10)
    (tmp_path / "b.zip.part").write_bytes(b"x" * 4)
    todo = remaining_bytes(
        [(tmp_path / "a.zip", 10), (tmp_path / "b.zip", 10), (tmp_path / "c.zip", 7)]
    )
    assert (todo.files, todo.bytes) == (2, 6 + 7)


def test_disk_check_names_the_numbers(tmp_path):
    with pytest.raises(DiskSpaceError) as err:
        check_free_space(tmp_path, 10**18, 5 * 10**9, "3 SLC file(s)")
    message = str(err.value)
    assert "1000000.0 TB still to download + 5.0 GB margin (download.disk_margin_gb)" in message
    assert "GB free" in message or "TB free" in message
    assert check_free_space(tmp_path, 1, 0, "x") > 0


def test_preflight_checks_the_disk_before_the_credentials(earthdata, product, tmp_path):
    def no_login():
        raise AssertionError("the login must not be tried when the disk is too small")

    with pytest.raises(DiskSpaceError, match="for 1 of 1 SLC file"):
        preflight([target(product, tmp_path)], tmp_path, 10**18, no_login, FAST)
    assert earthdata.server.requests() == []


def test_preflight_logs_in_once_for_one_byte(earthdata, product, ca_bundle, tmp_path):
    other = target(product, tmp_path, dest=tmp_path / "slc" / "done.zip", label="done")
    other.dest.parent.mkdir(parents=True)
    other.dest.write_bytes(payload())  # complete: not counted, not probed
    report = preflight(
        [other, target(product, tmp_path)],
        tmp_path,
        0,
        lambda: password_session(earthdata, ca_bundle),
        FAST,
    )
    assert (report["files_to_download"], report["bytes_to_download"]) == (1, SIZE)
    assert report["checked_with"] == GRANULE and report["credentials"] == "test .netrc"
    assert earthdata.logins == [(earthdata.user[0], True)] and earthdata.bytes_sent() == 1


def test_preflight_without_credentials_says_how_to_add_them(
    earthdata, product, netrc_home, tmp_path
):
    with pytest.raises(CredentialsError, match="no Earthdata credentials found"):
        preflight(
            [target(product, tmp_path)], tmp_path, 0, lambda: find_credentials("localhost"), FAST
        )
    assert earthdata.server.requests() == []


def test_preflight_with_nothing_missing_needs_no_network(tmp_path):
    dest = tmp_path / "a.zip"
    dest.write_bytes(b"x")
    report = preflight([Target("https://127.0.0.1:9/a.zip", dest, 1)], tmp_path, 0, lambda: 1 / 0)
    assert report["files_to_download"] == 0 and "credentials" not in report


def test_missing_downloads_are_the_zips_not_yet_in_the_cache(tmp_path):
    files = [tmp_path / "b.zip", tmp_path / "a.zip"]
    assert missing_downloads(files) == ["a.zip", "b.zip"]
    files[0].write_bytes(b"x")
    assert missing_downloads(files) == ["a.zip"]
    files[1].write_bytes(b"x")
    assert missing_downloads(files) == []


def test_a_web_page_instead_of_the_file_is_not_saved(https_server, earthdata, ca_bundle, tmp_path):
    from harness.server import Response

    route = https_server.add_route(
        "GET",
        "/portal/x.zip",
        lambda r: Response(
            200, b"<html>log in to the wifi</html>", [("Content-Type", "text/html")]
        ),
    )
    try:
        url = f"https://{earthdata.data_host}/portal/x.zip"
        with pytest.raises(DownloadError, match="answered with a web page instead of the file"):
            download(
                Target(url, tmp_path / "x.zip", None, None, "x"),
                password_session(earthdata, ca_bundle),
                FAST, CHUNKS,
            )
    finally:
        route.remove()
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "x.zip.part").exists()


def test_a_server_ignoring_range_makes_a_clean_restart(
    https_server, earthdata, ca_bundle, tmp_path, caplog
):
    from harness.server import Response

    data = payload()
    route = https_server.add_route("GET", "/norange/x.zip", lambda r: Response(200, data))
    part = tmp_path / "x.zip.part"
    part.write_bytes(payload(seed=3)[:300_000])  # a stale partial file
    try:
        url = f"https://{earthdata.data_host}/norange/x.zip"
        with caplog.at_level(logging.WARNING, logger="dinsar"):
            download(Target(url, tmp_path / "x.zip", SIZE, hashlib.md5(data).hexdigest(), "x"),  # noqa: S324
                     password_session(earthdata, ca_bundle), FAST, CHUNKS)  # fmt: skip
    finally:
        route.remove()
    assert (tmp_path / "x.zip").read_bytes() == data
    assert "the server ignored the resume request; downloading from the start" in caplog.text
