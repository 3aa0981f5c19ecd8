"""Login throttle records in the database (`login_throttle`), shared by every server process.

Guarantees:
- `claim` counts an attempt as a failure of its (source, name) record and of its source's record
  BEFORE any secret is checked, under the rows' locks (an upsert that locks or creates each row;
  SQLite transactions are serial anyway, `BEGIN IMMEDIATE`), so concurrent
  attempts cannot all be evaluated before the first failure counts. An attempt while either
  record waits is refused, not counted, and checks nothing.
- `forget` (after a successful login) drops the (source, name) record and takes back the
  source's count for that attempt: the person who logs in is not held against their address.
- Nothing here reads the account: an unknown name is counted exactly as a known one.
- `prune` deletes records quiet for longer than the policy forgives.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import ReturningInsert

from mission_control.db.schema import login_throttle
from mission_control.service.context import ServiceContext
from mission_control.staff.throttle import AttemptRecord, Backoff, record_failure

#: The `username` of a source's own record.
ANY_NAME = ""


@dataclass(frozen=True)
class Claim:
    """`waits_until` is set when the attempt is refused without being evaluated."""

    waits_until: datetime | None


@functools.lru_cache(maxsize=4)
def _lock_or_create(dialect_name: str) -> ReturningInsert[Any]:
    """INSERT .. ON CONFLICT DO UPDATE (a no-op) RETURNING the record: creates it or locks the
    existing row in one statement, so a row deleted by a concurrent success is never missed."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    statement = insert(login_throttle)
    return statement.on_conflict_do_update(
        index_elements=["source", "username"], set_={"failures": login_throttle.c.failures}
    ).returning(
        login_throttle.c.failures, login_throttle.c.blocked_until, login_throttle.c.last_failure
    )


async def _locked_record(
    conn: AsyncConnection, source: str, username: str, now: datetime
) -> AttemptRecord:
    row = (
        await conn.execute(
            _lock_or_create(conn.dialect.name),
            {"source": source, "username": username, "failures": 0, "last_failure": now},
        )
    ).one()
    if row.failures == 0:
        return AttemptRecord()
    return AttemptRecord(row.failures, row.blocked_until, row.last_failure)


async def _store(
    conn: AsyncConnection, source: str, username: str, record: AttemptRecord, now: datetime
) -> None:
    await conn.execute(
        update(login_throttle)
        .where(login_throttle.c.source == source, login_throttle.c.username == username)
        .values(
            failures=record.failures,
            blocked_until=record.blocked_until,
            last_failure=record.last_failure or now,
        )
    )


async def claim(
    ctx: ServiceContext, conn: AsyncConnection, source: str, username: str, now: datetime
) -> Claim:
    """Count one attempt at `username` from `source` (see the module docstring)."""
    policy = ctx.support.throttle
    keys: list[tuple[str, Backoff]] = [(username, policy.per_name), (ANY_NAME, policy.per_source)]
    records = [
        (name, backoff, (await _locked_record(conn, source, name, now)).current(backoff, now))
        for name, backoff in keys
    ]
    waits = [r.blocked_until for _, _, r in records if r.blocked(now) and r.blocked_until]
    if waits:
        return Claim(max(waits))
    for name, backoff, record in records:
        await _store(conn, source, name, record_failure(record, backoff, now), now)
    return Claim(None)


async def forget(conn: AsyncConnection, source: str, username: str) -> None:
    """A successful login: see the module docstring."""
    await conn.execute(
        delete(login_throttle).where(
            login_throttle.c.source == source, login_throttle.c.username == username
        )
    )
    await conn.execute(
        update(login_throttle)
        .where(
            login_throttle.c.source == source,
            login_throttle.c.username == ANY_NAME,
            login_throttle.c.failures > 0,
        )
        .values(failures=login_throttle.c.failures - 1)
    )


async def prune(ctx: ServiceContext, now: datetime) -> int:
    """Delete records whose last failure is older than the policy forgives; how many."""
    policy = ctx.support.throttle
    oldest = now - max(policy.per_name.forgive_after, policy.per_source.forgive_after)
    async with ctx.engine.begin() as conn:
        result = await conn.execute(
            delete(login_throttle).where(login_throttle.c.last_failure < oldest)
        )
    return int(result.rowcount or 0)
