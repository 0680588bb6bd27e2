"""Where Earthdata credentials come from, what the log says, and where they may be sent.

HOME points at a temporary directory (``netrc_home``), so the real ~/.netrc is never read.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import requests

from dinsar.credentials import (
    CredentialsError,
    EarthdataAuth,
    EarthdataCredentials,
    EarthdataSession,
    find_credentials,
)
from harness.earthdata import netrc_text

PASSWORD = "pa55-Word-that-must-not-leak"
TOKEN = "eyJ0eXAiOiJKV1Qi.token-that-must-not-leak"
EDL = "urs.earthdata.nasa.gov"


def write_netrc(
    home: Path, machine: str = EDL, mode: int = 0o600, password: str = PASSWORD
) -> Path:
    path = home / ".netrc"
    path.write_text(netrc_text(machine, "alice", password))
    path.chmod(mode)
    return path


def test_netrc_comes_first_and_the_log_names_it_without_the_secret(netrc_home, monkeypatch, caplog):
    write_netrc(netrc_home)
    monkeypatch.setenv("EARTHDATA_USERNAME", "bob")
    monkeypatch.setenv("EARTHDATA_PASSWORD", "other")
    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    with caplog.at_level(logging.INFO, logger="dinsar"):
        creds = find_credentials(EDL)
    assert (creds.username, creds.password, creds.token) == ("alice", PASSWORD, None)
    assert "Earthdata user 'alice' from ~/.netrc (machine urs.earthdata.nasa.gov)" in caplog.text
    assert PASSWORD not in caplog.text and TOKEN not in caplog.text
    assert PASSWORD not in repr(creds) and PASSWORD not in creds.describe()


def test_netrc_readable_by_others_gets_a_warning(netrc_home, caplog):
    path = write_netrc(netrc_home, mode=0o644)
    with caplog.at_level(logging.WARNING, logger="dinsar"):
        find_credentials(EDL)
    assert (
        f"{path} is readable or writable by other users (mode 0o644): run 'chmod 600" in caplog.text
    )
    caplog.clear()
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="dinsar"):
        find_credentials(EDL)
    assert "readable" not in caplog.text


def test_environment_username_password_then_token(netrc_home, monkeypatch, caplog):
    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    with caplog.at_level(logging.INFO, logger="dinsar"):
        creds = find_credentials(EDL)
        assert creds.token == TOKEN and creds.kind == "token"
        monkeypatch.setenv("EARTHDATA_USERNAME", "bob")
        monkeypatch.setenv("EARTHDATA_PASSWORD", PASSWORD)
        creds = find_credentials(EDL)
    assert (creds.username, creds.password, creds.kind) == ("bob", PASSWORD, "password")
    assert "an Earthdata token from the environment (EARTHDATA_TOKEN)" in caplog.text
    assert "user 'bob' from the environment (EARTHDATA_USERNAME/EARTHDATA_PASSWORD)" in caplog.text
    assert PASSWORD not in caplog.text and TOKEN not in caplog.text


def test_netrc_for_another_machine_is_not_used(netrc_home, monkeypatch):
    write_netrc(netrc_home, machine="example.org")
    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    assert find_credentials(EDL).token == TOKEN


def test_edl_host_with_a_port_matches_the_netrc_machine_name(netrc_home):
    write_netrc(netrc_home, machine="localhost")
    assert find_credentials("localhost:8443").username == "alice"


def test_netrc_env_variable_names_the_file(netrc_home, tmp_path, monkeypatch):
    other = tmp_path / "elsewhere.netrc"
    other.write_text(netrc_text(EDL, "carol", PASSWORD))
    other.chmod(0o600)
    monkeypatch.setenv("NETRC", str(other))
    assert find_credentials(EDL).username == "carol"


def test_no_credentials_says_the_three_ways(netrc_home, monkeypatch):
    monkeypatch.setenv("EARTHDATA_USERNAME", "bob")  # half a pair is not enough
    with pytest.raises(CredentialsError) as err:
        find_credentials(EDL)
    message = str(err.value)
    assert (
        "no Earthdata credentials found (EARTHDATA_USERNAME is set but not its partner)" in message
    )
    assert "machine urs.earthdata.nasa.gov login <user> password <password>" in message
    assert "~/.netrc" in message and "EARTHDATA_TOKEN" in message and "chmod 600" in message


def test_malformed_netrc_names_the_line_not_the_content(netrc_home):
    path = netrc_home / ".netrc"
    # a password with a space: the parser chokes on its second half and would quote it
    path.write_text(f"machine {EDL}\n  login alice\n  password pa55 secret-second-half\n")
    path.chmod(0o600)
    with pytest.raises(CredentialsError) as err:
        find_credentials(EDL)
    assert str(path) in str(err.value) and "is not valid .netrc syntax" in str(err.value)
    assert "secret-second-half" not in str(err.value)


def test_netrc_entry_without_password_is_an_error(netrc_home):
    path = netrc_home / ".netrc"
    path.write_text(f"machine {EDL} login alice\n")
    path.chmod(0o600)
    with pytest.raises(CredentialsError, match="has no login or no password"):
        find_credentials(EDL)


def prepared(url: str) -> requests.PreparedRequest:
    return requests.Request("GET", url).prepare()


def test_basic_auth_goes_only_to_the_login_host():
    auth = EarthdataAuth(EarthdataCredentials("t", "alice", PASSWORD), "localhost:8443")
    assert (
        auth(prepared("https://localhost:8443/oauth/authorize"))
        .headers["Authorization"]
        .startswith("Basic ")
    )
    for url in (
        "https://127.0.0.1:8443/SLC/SA/x.zip",
        "https://localhost:9999/",
        "https://cdn.example/x",
    ):
        assert "Authorization" not in auth(prepared(url)).headers


def test_a_token_goes_to_requested_hosts_and_the_login_host_only():
    auth = EarthdataAuth(EarthdataCredentials("t", token=TOKEN), EDL)
    auth.allow_token_host("https://datapool.example/SLC/SA/x.zip")
    for url in ("https://datapool.example/other.zip", f"https://{EDL}/oauth/authorize"):
        assert auth(prepared(url)).headers["Authorization"] == f"Bearer {TOKEN}"
    signed = prepared("https://bucket.s3.example/x.zip?X-Amz-Signature=abc")
    signed.headers["Authorization"] = "Bearer stale"
    assert "Authorization" not in auth(signed).headers  # S3 refuses a second auth mechanism


def test_session_repr_and_auth_repr_hide_the_secret(ca_bundle):
    session = EarthdataSession(EarthdataCredentials("t", "alice", PASSWORD), EDL, ca_bundle)
    assert PASSWORD not in repr(session.auth) and PASSWORD not in repr(
        session.earthdata.credentials
    )
    assert os.environ.get("EARTHDATA_PASSWORD") != PASSWORD
