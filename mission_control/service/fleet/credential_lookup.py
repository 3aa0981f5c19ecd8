"""Which cluster a credential digest belongs to: concurrent lookups share one read.

At a fleet's cadence nearly every request needs the lookup (a cluster's heartbeat comes every
30 s, as long as the API's credential cache keeps an answer), and a read of its own per
request held a pooled connection for a round trip each: at 450 requests/s on two workers the
pool, not the CPU, set the pace. `lookup` hands the digest to its engine's `GroupCommit`, so
the lookups waiting while one read runs are answered by the next read, one query for all.

Guarantees: each caller gets the cluster id stored for its digest at the time of a read that
started after its call (None if none), exactly as a read of its own would; no linger delay
(a lone lookup reads at once); the read runs outside a transaction (one round trip, no BEGIN
and ROLLBACK) since it is a single statement.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from mission_control.db.engine import in_values
from mission_control.db.schema import clusters
from mission_control.service.exchange.batcher import GroupCommit, Outcome

MAX_BATCH = 256

_LOOKUPS: weakref.WeakKeyDictionary[AsyncEngine, GroupCommit[str, str | None]] = (
    weakref.WeakKeyDictionary()
)


def _same(digest: str) -> Hashable:
    return digest


def _reader(engine: AsyncEngine) -> GroupCommit[str, str | None]:
    statement = select(clusters.c.id, clusters.c.credential_hash).where(
        in_values(clusters.c.credential_hash, "digests", engine.dialect.name)
    )

    async def read(digests: Sequence[str]) -> Sequence[Outcome[str | None]]:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            rows = await conn.execute(statement, {"digests": list(digests)})
            found = {str(h): str(i) for i, h in rows}
        return [found.get(d) for d in digests]

    return GroupCommit(read, key=_same, max_batch=MAX_BATCH, max_concurrent=2)


async def lookup(engine: AsyncEngine, digest: str) -> str | None:
    """The id of the cluster whose credential has this digest, or None."""
    reader = _LOOKUPS.get(engine)
    if reader is None:
        reader = _LOOKUPS[engine] = _reader(engine)
    return await reader.submit(digest)
