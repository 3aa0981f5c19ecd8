"""TLS for the server: certificate, minimum protocol version, cipher list (TLS 1.2 suites)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def server_context(
    cert: Path, key: Path, *, min_version: Literal["1.2", "1.3"] = "1.2", ciphers: str = ""
) -> ssl.SSLContext:
    """A server SSLContext; raises ValueError for a cipher list OpenSSL selects nothing from,
    ssl.SSLError or OSError on unreadable or mismatched files."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = _VERSIONS[min_version]
    if ciphers:
        try:
            context.set_ciphers(ciphers)
        except ssl.SSLError:
            raise ValueError(
                f"invalid TLS cipher list {ciphers!r}: OpenSSL selects no cipher from it"
            ) from None
    context.load_cert_chain(certfile=cert, keyfile=key)
    return context
