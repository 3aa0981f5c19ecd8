"""The customer's key files as the CLI handles them: generate, read, and passphrases.

Guarantees: a generated private key is written with mode 0600 next to its public half
(`FILE.pub`), never over an existing file; a passphrase comes from `MANAGED_BACKUP_PASSPHRASE`
or, at a terminal, a hidden prompt, and is never taken from the command line (where other users
could read it from the process list).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from backup.keys import (
    ENVELOPE_PEM_LABEL,
    KeyAlgorithm,
    RecipientPrivateKey,
    generate_private_key,
    read_private_key,
    write_key_pair,
)
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


def generate(path: Path, algorithm: KeyAlgorithm, protect: bool) -> tuple[str, Path]:
    """Write a new key pair; returns its key id and the public key's path."""
    secret = passphrase(confirm=True) if protect else None
    key = generate_private_key(algorithm)
    pub = public_path(path)
    return write_key_pair(key, path, pub, secret), pub


def load_private(path: Path) -> RecipientPrivateKey:
    """Read a private key file, asking for its passphrase only if it is protected."""
    try:
        protected = f"-----BEGIN {ENVELOPE_PEM_LABEL}-----".encode() in path.read_bytes()
    except OSError as exc:
        raise BackupConfigError(f"cannot read key file {path}: {exc.strerror}") from exc
    return read_private_key(path, passphrase(confirm=False) if protected else None)
