"""A throwaway development CA and a server certificate signed by it (never for production).

`write_dev_ca(directory, hosts)` writes ``ca.pem`` (the CA certificate clients trust),
``server.pem`` (server certificate followed by the CA, a full chain) and ``server-key.pem``
(mode 0600). The CA's private key is never written: the CA can sign nothing else.
Guarantees: files appear complete or not at all (temp file + rename); existing files are not
replaced unless `overwrite` is true. IP addresses in `hosts` become IP SANs, others DNS SANs.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ["127.0.0.1", "localhost"]


@dataclass(frozen=True)
class DevCA:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Mission Control development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Write `data` beside `path` with `mode`, fsync, rename over: a reader sees the old file
    or the new one, never half of either."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_dev_ca(
    directory: Path,
    hosts: list[str],
    *,
    overwrite: bool = False,
    valid_days: int = 365,
    now: datetime | None = None,
) -> DevCA:
    """Write a new CA and a server certificate for `hosts` into `directory`."""
    if not hosts:
        raise ValueError("at least one host name or IP address is needed")
    sans = [_san(h) for h in hosts]
    paths = DevCA(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    existing = [p for p in (paths.ca_cert, paths.server_cert, paths.server_key) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists already (use --force to replace it)")
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)
    end = start + timedelta(days=valid_days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Mission Control development CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(paths.ca_cert, ca_cert.public_bytes(pem), 0o644)
    atomic_write(
        paths.server_key,
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        0o600,
    )
    atomic_write(
        paths.server_cert, server_cert.public_bytes(pem) + ca_cert.public_bytes(pem), 0o644
    )
    return paths
