"""The seed's entry points in the CLI: `dinsar run` (one line, or --config FILE) and the
first-run login at a terminal (`dinsar login`, and `dinsar run` before Snakemake starts).

The login runs against the Earthdata login emulation; the terminal is a real pseudo-terminal
(pty.fork), so getpass really turns echo off and the test sees what a user would see.
"""

from __future__ import annotations

import os
import pty
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness import environment
from readme_example import EXAMPLE, EXPECTED_DATES, write_example_search
from workflow_runner import REPO, SNAKEMAKE

DINSAR = str(Path(sys.executable).with_name("dinsar"))


def clean_env(home: Path) -> dict[str, str]:
    env = environment.clean()
    env["HOME"] = str(home)
    return env


def dinsar(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`dinsar ...` without a terminal (stdin is /dev/null, output captured)."""
    return subprocess.run([DINSAR, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


class Terminal:
    """A command on a pseudo-terminal: wait for a prompt, type an answer."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: the pty is its controlling terminal and its stdio
            os.chdir(cwd)
            os.execve(argv[0], argv, env)
        self.pid, self.fd, self.seen, self.consumed = pid, fd, "", 0

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not data:
            return False
        self.seen += data.decode(errors="replace")
        return True

    def expect(self, text: str, timeout: float = 120) -> None:
        """Wait for ``text`` after what earlier expects matched (no typing ahead)."""
        deadline = time.monotonic() + timeout
        while text not in self.seen[self.consumed :]:
            if time.monotonic() > deadline or not self._read(0.5):
                raise AssertionError(f"never saw {text!r}; the terminal shows:\n{self.seen}")
        self.consumed = self.seen.index(text, self.consumed) + len(text)

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def finish(self, timeout: float = 300) -> int:
        deadline = time.monotonic() + timeout
        while self._read(0.5) and time.monotonic() < deadline:
            pass
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


# --- dinsar run ------------------------------------------------------------------------------


def test_dinsar_run_plans_the_readme_example_from_a_saved_search_in_one_line(
    tmp_path: Path, shared_dir: Path
) -> None:
    saved = write_example_search(shared_dir, tmp_path / "saved_search.geojson")
    env = clean_env(tmp_path / "home")
    dates = EXAMPLE["dates"]
    looks = f"{EXAMPLE['isce']['azimuth_looks']}x{EXAMPLE['isce']['range_looks']}"
    result = dinsar(tmp_path, env, "run", "--roi", EXAMPLE["roi"], "--start", str(dates["start"]),
                    "--end", str(dates["end"]), "--looks", looks, "--dem-buffer",
                    str(EXAMPLE["dem"]["buffer"]), "--inventory", str(saved), "--plan-only")  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ws = tmp_path / "insar_workspace"
    pairs = (ws / "plan" / "pairs.csv").read_text().splitlines()
    assert pairs[1:] == [f"{EXPECTED_DATES[0]}_{EXPECTED_DATES[1]},13_DESC,"
                         f"{EXPECTED_DATES[0]},{EXPECTED_DATES[1]},12,"]  # fmt: skip
    assert (ws / "plan" / "network.png").is_file() and (ws / "plan" / "coverage.png").is_file()
    # the settings are recorded in the workspace, as config/roi.yaml's plus the saved search
    record = yaml.safe_load((ws / "dinsar_run.yaml").read_text())
    assert record == {**EXAMPLE, "dates": {k: str(v) for k, v in dates.items()},
                      "inventory": str(saved)}  # fmt: skip
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("plan: insar_workspace/plan") and "dinsar run --config" in last

    # the record runs again as it is: the same plan, nothing redone
    again = dinsar(tmp_path, env, "run", "--config", str(ws / "dinsar_run.yaml"), "--plan-only")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stdout + again.stderr


def test_dinsar_run_validates_as_the_workflow_does(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    bad = {"roi": "POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))",
           "dates": {"start": "2017-03-01", "end": "2016-09-01"}, "serach": {}}  # fmt: skip
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(bad))
    from_file = dinsar(tmp_path, env, "run", "--config", str(config))
    one_line = dinsar(tmp_path, env, "run", "--roi", bad["roi"], "--start", "2017-03-01",
                      "--end", "2016-09-01", "--plan-only")  # fmt: skip
    workflow = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-n", "--configfile",
                               str(config)], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300, check=False)  # fmt: skip
    expected = [line.strip() for line in workflow.stderr.splitlines() if line.startswith("  ")]
    assert any("serach: unknown key" in line for line in expected), workflow.stderr
    for result in (from_file, one_line):
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith("dinsar: error: invalid configuration:")
    got = [line.strip() for line in from_file.stderr.splitlines() if line.startswith("  ")]
    assert got == expected  # the same lines as the workflow's
    assert [x for x in expected if not x.startswith("serach")] == [
        line.strip() for line in one_line.stderr.splitlines() if line.startswith("  ")
    ]
    assert not (tmp_path / "insar_workspace").exists() and not (tmp_path / ".snakemake").exists()

    missing = dinsar(tmp_path, env, "run", "--config", "nowhere/my_area.yaml")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "config file nowhere/my_area.yaml not found" in missing.stderr


# --- first-run login -------------------------------------------------------------------------


@pytest.fixture
def login_config(tmp_path: Path, earthdata, ca_bundle: str) -> Path:
    """A config whose Earthdata Login and ASF login endpoint are the emulation's."""
    path = tmp_path / "login.yaml"
    path.write_text(yaml.safe_dump({
        "roi": EXAMPLE["roi"], "dates": {"start": "2025-12-20", "end": "2026-01-10"},
        "network": {"ca_bundle": ca_bundle},
        "download": {"edl_host": earthdata.edl_host, "asf_auth_host": earthdata.data_host},
    }))  # fmt: skip
    return path


def test_dinsar_login_asks_at_a_terminal_checks_and_saves_a_private_netrc(
    tmp_path: Path, earthdata, login_config: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text("machine example.org login someone password other\n")
    user, password = earthdata.user
    term = Terminal([DINSAR, "login", "--config", str(login_config)], tmp_path, clean_env(home))
    term.expect("Earthdata user name: ")
    term.type(user)
    term.expect("Earthdata password: ")
    term.type("wrong-" + password)
    term.expect("rejected the credentials (HTTP 401)")
    term.expect("Earthdata user name: ")
    term.type(user)
    term.expect("Earthdata password: ")
    term.type(password)
    term.expect("[y/N] ")
    term.type("y")
    assert term.finish() == 0, term.seen
    assert earthdata.logins == [(user, False), (user, True)]
    assert password not in term.seen  # typed with echo off, never printed
    netrc = home / ".netrc"
    assert stat.S_IMODE(netrc.stat().st_mode) == 0o600
    assert netrc.read_text() == ("machine example.org login someone password other\n"
                                 f"machine localhost\n  login {user}\n  password {password}\n")  # fmt: skip
    assert f"Earthdata Login accepts Earthdata user {user!r} from ~/.netrc" in term.seen
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p != netrc
                and password.encode() in p.read_bytes()]  # fmt: skip

    # the workflow now finds them, and `dinsar login` checks them without asking
    checked = dinsar(tmp_path, clean_env(home), "login", "--config", str(login_config))
    assert checked.returncode == 0 and "accepts Earthdata user" in checked.stdout
    assert password not in checked.stdout + checked.stderr


def test_without_a_terminal_the_one_line_error_stays(
    tmp_path: Path, earthdata, login_config: Path
) -> None:
    result = dinsar(tmp_path, clean_env(tmp_path / "home"), "login", "--config", str(login_config))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "no Earthdata credentials found" in result.stderr
    assert earthdata.logins == []


def test_dinsar_run_asks_before_snakemake_starts_and_a_no_keeps_nothing(
    tmp_path: Path, earthdata, login_config: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    user, password = earthdata.user
    term = Terminal([DINSAR, "run", "--config", str(login_config)], tmp_path, clean_env(home))
    term.expect("Earthdata user name: ")
    term.type(user)
    term.expect("Earthdata password: ")
    term.type(password)
    term.expect("[y/N] ")
    term.type("n")
    assert term.finish() == 1
    assert "the credentials were not saved" in term.seen and "Traceback" not in term.seen
    assert password not in term.seen
    assert not (home / ".netrc").exists()
    assert not (tmp_path / ".snakemake").exists()  # Snakemake never started
    assert earthdata.logins == [(user, True)]


def test_the_login_check_tells_a_wrong_password_from_an_unapproved_application(
    earthdata, ca_bundle: str
) -> None:
    from dinsar.credentials import CredentialsError, EarthdataCredentials, check_login

    user, password = earthdata.user

    def check(secret: str) -> None:
        creds = EarthdataCredentials("the terminal", username=user, password=secret)
        check_login(creds, earthdata.edl_host, earthdata.data_host, ca_bundle)

    check(password)
    with pytest.raises(CredentialsError, match=r"rejected the credentials \(HTTP 401\)") as bad:
        check("not-" + password)
    earthdata.unapproved.add(user)
    with pytest.raises(CredentialsError, match="has not approved ASF's application") as unapproved:
        check(password)
    for exc in (bad.value, unapproved.value):
        assert password not in str(exc) and "\n" not in str(exc)
    assert earthdata.logins == [(user, True), (user, False), (user, True)]


def test_write_netrc_keeps_other_machines_and_makes_the_file_private(tmp_path: Path) -> None:
    from dinsar.credentials import CredentialsError, find_credentials, write_netrc

    netrc = tmp_path / ".netrc"
    netrc.write_text("machine example.org login a password b")  # no final newline
    netrc.chmod(0o644)
    write_netrc(netrc, "urs.earthdata.nasa.gov", "me", "p4ss")
    assert stat.S_IMODE(netrc.stat().st_mode) == 0o600
    found = find_credentials("urs.earthdata.nasa.gov", {"NETRC": str(netrc)})
    assert (found.username, found.password) == ("me", "p4ss")
    assert netrc.read_text().startswith("machine example.org login a password b\n")
    with pytest.raises(CredentialsError, match="cannot be written to a .netrc") as spaced:
        write_netrc(netrc, "urs.earthdata.nasa.gov", "me", "with space")
    assert "with space" not in str(spaced.value)
    assert [p.name for p in tmp_path.iterdir()] == [".netrc"]  # no temporary file left


def test_a_malformed_netrc_or_no_answer_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    from dinsar.credentials import CredentialsError
    from dinsar.login import ensure_credentials

    asked: list[str] = []

    def no_answer(prompt: str) -> str:
        asked.append(prompt)
        raise EOFError

    netrc = tmp_path / ".netrc"
    env = {"NETRC": str(netrc)}
    with pytest.raises(CredentialsError, match="end of input"):
        ensure_credentials("urs.earthdata.nasa.gov", "cumulus.asf.alaska.edu", env=env,
                           interactive=True, ask=no_answer, ask_secret=no_answer)  # fmt: skip
    assert asked == ["Earthdata user name: "] and not netrc.exists()
    netrc.write_text("machine urs.earthdata.nasa.gov login\n")  # no password: the user's to fix
    with pytest.raises(CredentialsError, match="has no login or no password"):
        ensure_credentials("urs.earthdata.nasa.gov", "cumulus.asf.alaska.edu", env=env,
                           interactive=True, ask=no_answer, ask_secret=no_answer)  # fmt: skip
    assert len(asked) == 1  # not asked again: a broken .netrc is not appended to
