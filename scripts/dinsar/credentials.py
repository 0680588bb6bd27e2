"""Earthdata Login credentials and the HTTP session that uses them.

Where the credentials come from, in this order (the log says which, never the secret):

1. ``~/.netrc`` (or ``$NETRC``) with ``machine <download.edl_host>``;
2. ``EARTHDATA_USERNAME`` + ``EARTHDATA_PASSWORD``;
3. ``EARTHDATA_TOKEN`` (a bearer token from the Earthdata profile page).

The session sends them only where they belong: a username/password only to the Earthdata
Login host (as HTTP Basic, when a download redirects there), a token only to the hosts we
asked for and to Earthdata Login. Redirect targets elsewhere (the signed CloudFront/S3 URLs
ASF redirects to) get no ``Authorization`` header at all: S3 rejects a second auth mechanism,
and a password must never reach a host that did not ask for it.
"""

from __future__ import annotations

import logging
import netrc
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from . import __version__
from .atomic import atomic_path
from .errors import DinsarError
from .net import pin_ca_bundle

log = logging.getLogger(__name__)

DEFAULT_EDL_HOST = "urs.earthdata.nasa.gov"
ENV_USER = "EARTHDATA_USERNAME"
ENV_PASSWORD = "EARTHDATA_PASSWORD"
ENV_TOKEN = "EARTHDATA_TOKEN"
TOKEN_PAGE = "https://urs.earthdata.nasa.gov/profile (Generate Token)"
# ASF's application at Earthdata Login (asf_search's EDL_CLIENT_ID): the login check asks
# for it, so an account that has not approved "ASF Data Access" is told so at once
ASF_EDL_CLIENT_ID = "BO_n7nTIlMljdvU6kRRB3g"


class CredentialsError(DinsarError):
    """No usable Earthdata credentials, or a malformed .netrc."""


class MissingCredentials(CredentialsError):
    """No Earthdata credentials anywhere (a first run): the CLI may ask for them."""


@dataclass(frozen=True)
class EarthdataCredentials:
    """A username/password or a token, plus where it came from. repr() shows no secret."""

    source: str  # e.g. "~/.netrc (machine urs.earthdata.nasa.gov)"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return "token" if self.token else "password"

    def describe(self) -> str:
        """For logs and messages: the source and the user name, never the secret."""
        if self.token:
            return f"an Earthdata token from {self.source}"
        return f"Earthdata user {self.username!r} from {self.source}"


def netrc_path(env: Mapping[str, str] | None = None) -> Path:
    """The .netrc that curl and requests read too: ``$NETRC`` or ``~/.netrc``."""
    env = os.environ if env is None else env
    explicit = env.get("NETRC")
    return Path(explicit).expanduser() if explicit else Path.home() / ".netrc"


def edl_hostname(edl_host: str) -> str:
    """The host name part of ``download.edl_host`` (a .netrc machine has no port)."""
    return (urlsplit(f"//{edl_host}").hostname or edl_host).lower()


def _netrc_entry(path: Path, machine: str) -> tuple[str, str] | None:
    try:
        # An explicit path skips the stdlib's own permission check (we warn instead of failing).
        parsed = netrc.netrc(str(path))
    except FileNotFoundError:
        return None
    except netrc.NetrcParseError as exc:
        # The parser's message can quote a token of the file (a password): give only the line.
        raise CredentialsError(
            f"{path} line {exc.lineno} is not valid .netrc syntax; write it as "
            f"'machine {machine} login <user> password <password>'"
        ) from None
    except OSError as exc:
        raise CredentialsError(
            f"{path} cannot be read ({exc.strerror}); fix its permissions (chmod 600)"
        ) from None
    entry = parsed.authenticators(machine)
    if entry is None:
        return None
    login, _account, password = entry
    if not login or not password:
        raise CredentialsError(
            f"{path}: machine {machine} has no login or no password; write "
            f"'machine {machine} login <user> password <password>'"
        )
    return login, password


def warn_if_exposed(path: Path) -> bool:
    """Warn (and return True) when group or others may read the .netrc."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    if mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
        log.warning(
            "%s is readable or writable by other users (mode %s): run 'chmod 600 %s'",
            path,
            oct(stat.S_IMODE(mode)),
            path,
        )
        return True
    return False


def find_credentials(
    edl_host: str = DEFAULT_EDL_HOST, env: Mapping[str, str] | None = None
) -> EarthdataCredentials:
    """The first credentials found (.netrc, then username/password, then token); logs the source."""
    env = os.environ if env is None else env
    machine = edl_hostname(edl_host)
    path = netrc_path(env)
    entry = _netrc_entry(path, machine)
    if entry is not None:
        warn_if_exposed(path)
        creds = EarthdataCredentials(
            source=f"{_home_relative(path)} (machine {machine})",
            username=entry[0],
            password=entry[1],
        )
    elif env.get(ENV_USER) and env.get(ENV_PASSWORD):
        creds = EarthdataCredentials(
            source=f"the environment ({ENV_USER}/{ENV_PASSWORD})",
            username=env[ENV_USER],
            password=env[ENV_PASSWORD],
        )
    elif env.get(ENV_TOKEN):
        creds = EarthdataCredentials(source=f"the environment ({ENV_TOKEN})", token=env[ENV_TOKEN])
    else:
        half = ENV_USER if env.get(ENV_USER) else ENV_PASSWORD if env.get(ENV_PASSWORD) else None
        hint = f" ({half} is set but not its partner)" if half else ""
        raise MissingCredentials(
            f"no Earthdata credentials found{hint}: add 'machine {machine} login <user> password "
            f"<password>' to {_home_relative(path)} (then chmod 600), or set {ENV_USER} and "
            f"{ENV_PASSWORD}, or {ENV_TOKEN}; a free account: https://urs.earthdata.nasa.gov"
        )
    log.info("Earthdata credentials: %s", creds.describe())
    return creds


def _home_relative(path: Path) -> str:
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def _host_port(url_or_host: str) -> tuple[str, int]:
    parts = urlsplit(url_or_host if "//" in url_or_host else f"//{url_or_host}")
    return (parts.hostname or "").lower(), parts.port or (80 if parts.scheme == "http" else 443)


class EarthdataAuth(AuthBase):
    """Per-request auth: Basic only to Earthdata Login, a token only to the hosts we asked for."""

    def __init__(self, credentials: EarthdataCredentials, edl_host: str) -> None:
        self.credentials = credentials
        self.edl = _host_port(edl_host)
        self.token_hosts: set[tuple[str, int]] = {self.edl}

    def allow_token_host(self, url: str) -> None:
        self.token_hosts.add(_host_port(url))

    def is_edl(self, url: str) -> bool:
        return _host_port(url) == self.edl

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        url = request.url or ""
        creds = self.credentials
        if creds.token:
            if _host_port(url) in self.token_hosts:
                request.headers["Authorization"] = f"Bearer {creds.token}"
        elif self.is_edl(url) and creds.username and creds.password:
            HTTPBasicAuth(creds.username, creds.password)(request)
        return request

    def __repr__(self) -> str:  # never the secret
        return f"EarthdataAuth({self.credentials.describe()})"


class EarthdataSession(requests.Session):
    """A requests session that logs in to Earthdata on redirect and keeps the cookies it sets.

    ``trust_env`` stays on (site proxies come from the environment); setting ``self.auth``
    keeps requests from adding .netrc credentials for other hosts by itself.
    """

    def __init__(
        self, credentials: EarthdataCredentials, edl_host: str, ca_bundle: str | None = None
    ) -> None:
        super().__init__()
        self.auth = EarthdataAuth(credentials, edl_host)
        self.headers["User-Agent"] = f"dinsar-toolkit/{__version__}"
        pin_ca_bundle(self, ca_bundle)

    @property
    def earthdata(self) -> EarthdataAuth:
        assert isinstance(self.auth, EarthdataAuth)
        return self.auth

    def request(self, method: str | bytes, url: str | bytes, *args, **kwargs):  # type: ignore[override]
        # The hosts we ask for ourselves (the product URLs) may get the token; redirect targets not.
        self.earthdata.allow_token_host(url.decode() if isinstance(url, bytes) else url)
        return super().request(method, url, *args, **kwargs)

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response) -> None:  # type: ignore[override]
        # requests would keep Authorization on same-host redirects and add .netrc entries on
        # others; decide afresh for every hop instead.
        self.earthdata(prepared_request)


def earthdata_session(
    edl_host: str = DEFAULT_EDL_HOST,
    ca_bundle: str | None = None,
    env: Mapping[str, str] | None = None,
) -> EarthdataSession:
    """Find the credentials (logging their source) and return a session that uses them."""
    return EarthdataSession(find_credentials(edl_host, env), edl_host, ca_bundle)


def check_login(
    credentials: EarthdataCredentials,
    edl_host: str = DEFAULT_EDL_HOST,
    asf_auth_host: str = "cumulus.asf.alaska.edu",
    ca_bundle: str | None = None,
    timeout: float = 60,
) -> None:
    """Log in to Earthdata for ASF's application, as asf_search does; raise a one-line
    :class:`CredentialsError` when the login is rejected or the application is not approved.

    Only the Earthdata Login host gets the user and password (:class:`EarthdataAuth`); the
    redirect back to ASF is not followed.
    """
    url = (
        f"https://{edl_host}/oauth/authorize?splash=false&client_id={ASF_EDL_CLIENT_ID}"
        f"&response_type=code&redirect_uri=https://{asf_auth_host}/login"
    )
    site = f"https://{edl_hostname(edl_host)}"
    with EarthdataSession(credentials, edl_host, ca_bundle) as session:
        try:
            response = session.get(url, allow_redirects=False, timeout=timeout)
        except requests.RequestException as exc:
            raise CredentialsError(
                f"Earthdata Login at {edl_host} could not be reached ({type(exc).__name__}); "
                "check the network (a site proxy needs network.ca_bundle) and try again"
            ) from None
        status = response.status_code
        if status in (301, 302, 303, 307):
            log.info("Earthdata Login accepted %s", credentials.describe())
            return
        if status == 401:
            raise CredentialsError(
                f"Earthdata Login rejected the credentials (HTTP 401) of {credentials.describe()}: "
                f"check the user name and password by logging in at {site}"
            )
        if status == 200 and "html" in response.headers.get("Content-Type", ""):
            raise CredentialsError(
                f"{credentials.describe()} logs in, but has not approved ASF's application: log "
                f"in at {site}, approve \"Alaska Satellite Facility Data Access\" "
                "(Applications > Authorized Apps) and accept its EULA"
            )
        raise CredentialsError(
            f"Earthdata Login at {edl_host} answered HTTP {status} to the login check; try "
            "again later"
        )


def write_netrc(path: Path, machine: str, username: str, password: str) -> Path:
    """Add ``machine <machine> login <user> password <password>`` to the .netrc at ``path``
    (created if needed); the file is mode 600 before the secret is in it. Returns ``path``."""
    for value, what in ((username, "user name"), (password, "password")):
        if not value or any(c.isspace() for c in value) or '"' in value:
            raise CredentialsError(
                f"the {what} cannot be written to a .netrc (empty, or it holds a space or a "
                f"quote); set {ENV_USER} and {ENV_PASSWORD} instead"
            )
    existing = path.read_text() if path.exists() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    with atomic_path(path, shared=True) as temporary:
        # created mode 600 (not chmod-ed after), so the secret is never in a readable file
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{existing}machine {machine}\n  login {username}\n  password {password}\n")
        os.chmod(temporary, 0o600)  # an existing leftover of that name keeps its mode otherwise
    log.info("wrote machine %s for Earthdata user %r to %s (mode 600)", machine, username, path)
    return path
