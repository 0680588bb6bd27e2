"""Throw-away certificate authority for the local HTTPS services.

Real TLS (not plain HTTP) is used so that the code under test exercises its
certificate handling exactly as against the real endpoints; it only has to be
pointed at our CA bundle (``network.ca_bundle`` in the workflow config,
``session.verify`` for requests/asf_search).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class TLSMaterial:
    """Files and contexts derived from one CA + one server certificate."""

    ca_pem: Path
    """CA certificate (PEM) - the bundle clients and subprocesses must trust."""
    server_pem: Path
    """Server private key + certificate chain (PEM), for servers run in other processes."""
    server_context: ssl.SSLContext
    """Server-side context with the certificate loaded, for in-process servers."""

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only our CA."""
        return ssl.create_default_context(cafile=str(self.ca_pem))


def make_tls(directory: Path, hosts: tuple[str, ...] = DEFAULT_HOSTS) -> TLSMaterial:
    """Create a CA and a server certificate for ``hosts``; write the PEMs into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert(*hosts)
    ca_pem = directory / "ca.pem"
    server_pem = directory / "server.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    cert.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return TLSMaterial(ca_pem=ca_pem, server_pem=server_pem, server_context=context)
