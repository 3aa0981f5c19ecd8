"""The SAML identity provider process of the sign-in tests (`saml_idp_serve.py`): a throwaway
RSA signing key and certificate made here, its own TLS certificate and free loopback port,
its metadata written where Mission Control's settings point, stopped by PID afterwards."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from cluster.dev.processes import free_port, start, wait_until
from contract.certs import write_dev_ca

SERVE = Path(__file__).with_name("saml_idp_serve.py")
MFA = "https://refeds.org/profile/mfa"
PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


@dataclass(frozen=True)
class IdentityProvider:
    base: str
    metadata: Path


def signing_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """A throwaway RSA key (0600) and its self-signed certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / f"{name}-key.pem", directory / f"{name}.pem"
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@contextmanager
def saml_idp(base: Path, people: dict[str, Any]) -> Iterator[IdentityProvider]:
    """`people`: user name -> ``{"attributes": {...}, "authn_context": CLASS}``."""
    base.mkdir(parents=True, exist_ok=True)
    tls = write_dev_ca(base / "tls", ["127.0.0.1"])
    key, cert = signing_pair(base, "idp-signing")
    people_file = base / "people.json"
    people_file.write_text(json.dumps(people))
    metadata = base / "idp-metadata.xml"
    port = free_port()
    argv = [sys.executable, str(SERVE), str(port), str(tls.server_cert), str(tls.server_key)]
    argv += [str(cert), str(key), str(people_file), str(metadata)]
    process = start("saml-idp", argv, base / "log")
    try:
        if not wait_until(metadata.exists, 30, 0.1):
            raise RuntimeError(f"the SAML provider did not start: {process.log_tail(20)}")
        yield IdentityProvider(f"https://127.0.0.1:{port}", metadata)
    finally:
        process.stop(timeout=10)
