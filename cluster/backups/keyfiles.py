"""The customer's key files as the CLI handles them: generate, read, and passphrases.

Guarantees: a generated private key is written with mode 0600 next to its public half
(`FILE.pub`) and the signers file (`FILE.signers`: the fingerprint of the cluster key that signs
the manifests, which `restore` trusts), never over an existing file; a passphrase comes from
`MANAGED_BACKUP_PASSPHRASE` or, at a terminal, a hidden prompt, and is never taken from the
command line (where other users could read it from the process list).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from backup.atomic import write_atomically
from backup.keys import (
    ENVELOPE_PEM_LABEL,
    KeyAlgorithm,
    RecipientPrivateKey,
    generate_private_key,
    read_private_key,
    write_key_pair,
)
from backup.manifest import check_fingerprint, fingerprints
from cluster.backups.errors import BackupConfigError

PASSPHRASE_ENV = "MANAGED_BACKUP_PASSPHRASE"


def passphrase(confirm: bool) -> bytes:
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env:
        return from_env.encode()
    if not sys.stdin.isatty():
        raise BackupConfigError(f"a passphrase is needed: set {PASSPHRASE_ENV} or use a terminal")
    text: str = click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    return text.encode()


def public_path(private: Path) -> Path:
    return private.with_name(private.name + ".pub")


def signers_path(private: Path) -> Path:
    return private.with_name(private.name + ".signers")


def check_free(path: Path) -> None:
    """Refuse if the key file, its public half or its signers file already exists."""
    for existing in (path, public_path(path), signers_path(path)):
        if existing.exists():
            raise BackupConfigError(f"{existing} already exists; not overwriting a key file")


def generate(
    path: Path, algorithm: KeyAlgorithm, protect: bool, signer: str | None = None
) -> tuple[str, Path]:
    """Write a new key pair (and, given the cluster's signer fingerprint, the signers file);
    returns its key id and the public key's path. Nothing is written if any file exists."""
    check_free(path)
    pub = public_path(path)
    secret = passphrase(confirm=True) if protect else None
    key = generate_private_key(algorithm)
    kid = write_key_pair(key, path, pub, secret)
    if signer is not None:
        write_signers(signers_path(path), signer, f"written by keygen with key {kid[:16]}")
    return kid, pub


def write_signers(path: Path, signer: str, note: str) -> None:
    """The signers file: one trusted fingerprint per line, `#` starts a comment."""
    body = f"{check_fingerprint(signer)}  # {note}\n".encode()
    try:
        write_atomically(path, body, mode=0o644, overwrite=False)
    except FileExistsError as exc:
        raise BackupConfigError(f"{path} already exists; not overwriting it") from exc
    except OSError as exc:
        raise BackupConfigError(f"cannot write {path}: {exc.strerror}") from exc


def read_signers(path: Path) -> frozenset[str]:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise BackupConfigError(f"cannot read signers file {path}: {exc.strerror}") from exc
    found = fingerprints(line.split("#", 1)[0] for line in lines if line.split("#", 1)[0].strip())
    if not found:
        raise BackupConfigError(f"signers file {path} names no signer")
    return found


def trusted_signers(key: Path, given: tuple[str, ...]) -> frozenset[str]:
    """The signers a restore trusts: `--signer` values, else the signers file next to `key`."""
    if given:
        return fingerprints(given)
    beside = signers_path(key)
    if beside.exists():
        return read_signers(beside)
    raise BackupConfigError(
        "say whose backups you trust: --signer FINGERPRINT (the cluster's signing key, as "
        f"`managed backup show` prints it), or keep {beside.name} (written by keygen) next to "
        "the key"
    )


def load_private(path: Path) -> RecipientPrivateKey:
    """Read a private key file, asking for its passphrase only if it is protected."""
    try:
        protected = f"-----BEGIN {ENVELOPE_PEM_LABEL}-----".encode() in path.read_bytes()
    except OSError as exc:
        raise BackupConfigError(f"cannot read key file {path}: {exc.strerror}") from exc
    return read_private_key(path, passphrase(confirm=False) if protected else None)
