"""Secrets sealed at rest: AES-256-GCM with the secrets key, bound to what they belong to.

`SecretBox(key).seal(plaintext, context)` returns ``sealed:v1:<base64url(nonce || ciphertext)>``;
`open(stored, context)` returns the plaintext. `context` (e.g. ``totp:<user name>``) is the
associated data: a sealed value copied to another row does not open there. A value without the
``sealed:`` prefix is a plaintext written before sealing existed: `open` returns it as is and
`is_sealed` says it should be sealed. A sealed value that does not open (another key, altered)
raises `SealedSecretUnreadable`.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sealed:v1:"
KEY_BYTES = 32
_NONCE_BYTES = 12


class SealedSecretUnreadable(ValueError):
    """A sealed value that does not open with this key and context."""


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode("ascii")


def decode_key(text: str) -> bytes:
    """The key written as base64url (44 characters); ValueError naming what is wrong."""
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValueError("a secrets key is 32 random bytes in base64url (44 characters)") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"a secrets key is {KEY_BYTES} bytes, this one has {len(key)}")
    return key


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a secrets key is {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, stored: str, context: str) -> str:
        if not is_sealed(stored):
            return stored
        try:
            raw = base64.urlsafe_b64decode(stored.removeprefix(PREFIX).encode("ascii"))
            nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            return self._aead.decrypt(nonce, sealed, context.encode()).decode()
        except (InvalidTag, ValueError, binascii.Error) as error:
            raise SealedSecretUnreadable(
                "a sealed secret does not open with this secrets key (another key, or altered)"
            ) from error
