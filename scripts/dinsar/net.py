"""HTTP sessions that honour ``network.ca_bundle``.

requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment override a session's
``verify`` (many clusters set them), which would silently ignore the CA the user configured.
Passing the bundle with every request makes the configured one win.
"""

from __future__ import annotations

from typing import Any, TypeVar

import requests

SessionT = TypeVar("SessionT", bound=requests.Session)


def pin_ca_bundle(session: SessionT, ca_bundle: str | None) -> SessionT:
    """Make every request of ``session`` verify TLS against ``ca_bundle`` (if one is given)."""
    if not ca_bundle:
        return session
    session.verify = ca_bundle
    original = session.request

    def request(method: str, url: str, **kwargs: Any) -> requests.Response:
        if kwargs.get("verify") in (None, True):
            kwargs["verify"] = ca_bundle
        return original(method, url, **kwargs)

    session.request = request  # type: ignore[method-assign]
    return session
