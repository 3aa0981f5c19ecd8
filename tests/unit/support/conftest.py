"""Shared fixtures for the remote-support unit tests: a fixed clock, keys, a cheap hasher."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def t0() -> datetime:
    return T0


@pytest.fixture
def cluster_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def cheap_hasher() -> PasswordHasher:
    # Same algorithm (argon2id), tiny cost: keeps the unit tests fast.
    return PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
