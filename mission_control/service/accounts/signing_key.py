"""Mission Control's Ed25519 key, which signs the checkpoints of its audit log.

The key is generated on first use and kept in the `settings` table (PEM). Two servers generating
it at the same moment agree on one: the insert is INSERT .. ON CONFLICT DO NOTHING and both read
back the stored key. Whoever can read the database can read the key: the checkpoints prove the
log was not rewritten by someone without database access, not by a database administrator.
"""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from mission_control.db.engine import insert_or_ignore
from mission_control.db.schema import settings

AUDIT_KEY = "audit_signing_key"


def _pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _load(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"setting {AUDIT_KEY} does not hold an Ed25519 key")
    return key


async def stored_key(conn: AsyncConnection) -> Ed25519PrivateKey | None:
    """The audit key if one was generated, else None (never creates one)."""
    pem = await conn.scalar(select(settings.c.value).where(settings.c.name == AUDIT_KEY))
    return None if pem is None else _load(pem)


async def audit_key(conn: AsyncConnection, now: datetime) -> Ed25519PrivateKey:
    """The audit key, generated and stored on first use."""
    key = await stored_key(conn)
    if key is not None:
        return key
    await conn.execute(
        insert_or_ignore(conn.dialect.name, settings, ("name",)),
        {"name": AUDIT_KEY, "value": _pem(Ed25519PrivateKey.generate()), "created_at": now},
    )
    key = await stored_key(conn)
    assert key is not None
    return key
