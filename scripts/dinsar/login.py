"""First-run Earthdata login at a terminal: ask, check, and (with the user's yes) save.

Only the CLI calls this (``dinsar login``, and ``dinsar run`` before it starts Snakemake),
never a Snakemake job: jobs have no terminal and keep the one-line "no Earthdata credentials
found" error. The password is read with :func:`getpass.getpass` (not echoed), sent only to
Earthdata Login, written only to the .netrc (mode 600), and never printed or logged.
"""

from __future__ import annotations

import getpass
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import TextIO

from .credentials import (
    CredentialsError,
    EarthdataCredentials,
    MissingCredentials,
    _home_relative,
    check_login,
    edl_hostname,
    find_credentials,
    netrc_path,
    write_netrc,
)

log = logging.getLogger(__name__)

ATTEMPTS = 3


def has_terminal() -> bool:
    """True when a person can answer: stdin and stderr are terminals."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def ensure_credentials(
    edl_host: str,
    asf_auth_host: str,
    ca_bundle: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    interactive: bool | None = None,
    ask: Callable[[str], str] = input,
    ask_secret: Callable[[str], str] = getpass.getpass,
    out: TextIO | None = None,
) -> EarthdataCredentials:
    """The credentials the workflow will find; at a terminal, ask for them when there are none.

    Without a terminal (``interactive`` False) a missing login raises the usual one-line
    :class:`CredentialsError`. Asked credentials are checked against Earthdata Login and, with
    the user's yes, added to the .netrc; a no stops with a one-line error (nothing is kept).
    """
    env = os.environ if env is None else env
    try:
        return find_credentials(edl_host, env)
    except MissingCredentials:  # a malformed .netrc is the user's to fix, not to append to
        if not (has_terminal() if interactive is None else interactive):
            raise
    try:
        return _ask(edl_host, asf_auth_host, ca_bundle, env, ask, ask_secret, out or sys.stderr)
    except EOFError:
        raise CredentialsError(
            "no answer (end of input): nothing was saved; run `dinsar login` at a terminal"
        ) from None


def _ask(
    edl_host: str,
    asf_auth_host: str,
    ca_bundle: str | None,
    env: Mapping[str, str],
    ask: Callable[[str], str],
    ask_secret: Callable[[str], str],
    out: TextIO,
) -> EarthdataCredentials:
    machine = edl_hostname(edl_host)
    path = netrc_path(env)
    print(f"No Earthdata credentials found. Log in with your Earthdata account "
          f"(free: https://{machine}/users/new); the password is not shown.", file=out)  # fmt: skip
    for attempt in range(1, ATTEMPTS + 1):
        user = ask("Earthdata user name: ").strip()
        password = ask_secret("Earthdata password: ")
        candidate = EarthdataCredentials(source="the terminal", username=user, password=password)
        try:
            check_login(candidate, edl_host, asf_auth_host, ca_bundle)
            break
        except CredentialsError as exc:
            if attempt == ATTEMPTS:
                raise
            print(f"{exc}; try again ({ATTEMPTS - attempt} left)", file=out)
    print(f"Earthdata Login accepted user {user!r}.", file=out)
    answer = ask(f"Save them to {path} (mode 600) for the workflow? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise CredentialsError(
            f"the credentials were not saved, so the downloads cannot use them: run `dinsar "
            f"login` again and answer y, or add 'machine {machine} login <user> password "
            f"<password>' to {path} yourself (chmod 600)"
        )
    write_netrc(path, machine, user, password)
    print(f"Saved to {path} (mode 600).", file=out)
    return EarthdataCredentials(
        source=f"{_home_relative(path)} (machine {machine})", username=user, password=password
    )


def login_command(
    edl_host: str, asf_auth_host: str, ca_bundle: str | None, env: Mapping[str, str] | None = None
) -> str:
    """``dinsar login``: check what the workflow would use, or ask at a terminal. Returns the
    line to print (never the secret)."""
    try:
        found = find_credentials(edl_host, os.environ if env is None else env)
    except MissingCredentials:
        found = None
    if found is not None:
        check_login(found, edl_host, asf_auth_host, ca_bundle)
        return f"Earthdata Login accepts {found.describe()}"
    saved = ensure_credentials(edl_host, asf_auth_host, ca_bundle, env=env)
    return f"Earthdata Login accepts {saved.describe()}"
