"""Bearer secrets: generated with 256 bits of entropy, stored only as SHA-256 digests.

A slow password hash (argon2) protects low-entropy passwords; these secrets are random, so a
plain SHA-256 digest cannot be brute-forced and allows an indexed lookup per request.
"""

from __future__ import annotations

import hashlib
import secrets


def new_secret(prefix: str) -> str:
    return f"{prefix}.{secrets.token_urlsafe(32)}"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
