"""Bearer secrets (`contract.credentials`, at least 178 random bits) are stored only as SHA-256
digests.

A slow password hash (argon2) protects low-entropy passwords; these secrets are random, so a
plain SHA-256 digest cannot be brute-forced and allows an indexed lookup per request.
"""

from __future__ import annotations

import hashlib


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
