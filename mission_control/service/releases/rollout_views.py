"""Fleet rollouts as read: each rollout with its waves and each cluster's version and state
(`rollouts show|list`, the console's Rollouts page). Nothing here writes.

A cluster's state in a rollout: `waiting` (its wave has not started), `offered`, `finished`
(all its nodes reported the version, healthy) or `failed` (why, in `failure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from mission_control.db.schema import clusters, rollout_clusters, rollouts
from mission_control.errors import NotFound
from mission_control.service.context import ServiceContext
from mission_control.service.fleet.node_health import from_stored
from mission_control.service.rules.rollouts import RolloutState


@dataclass(frozen=True)
class RolloutCluster:
    id: str
    name: str
    wave: int  # 1-based
    state: str  # waiting, offered, finished, failed
    versions: tuple[str, ...]
    health: str | None
    offered_at: datetime | None
    failure: str | None


@dataclass(frozen=True)
class Rollout:
    id: int
    version: str
    selector: str
    waves: str
    sizes: tuple[int, ...]
    state: RolloutState
    wave: int  # 1-based current wave
    reason: str
    created_at: datetime
    created_by: str
    clusters: tuple[RolloutCluster, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "selector": self.selector,
            "waves": self.waves,
            "sizes": list(self.sizes),
            "state": self.state.value,
            "wave": self.wave,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "clusters": [
                {
                    "name": c.name,
                    "wave": c.wave,
                    "state": c.state,
                    "versions": list(c.versions),
                    "health": c.health,
                    "failure": c.failure,
                }
                for c in self.clusters
            ],
        }


def _wave_of(position: int, sizes: tuple[int, ...]) -> int:
    return next(i for i, size in enumerate(sizes) if position < size)


def rollout_id_of(rollout: str | int) -> int:
    text = str(rollout)
    if not text.isdigit() or not 0 < int(text) < 2**31:
        raise NotFound(f"no rollout {text[:32]}: see `mission-control rollouts list`")
    return int(text)


#: A rollout's clusters in wave order, with their last health check (add the rollout's id).
MEMBERS = (
    select(rollout_clusters, clusters.c.name, clusters.c.last_health, clusters.c.health_status)
    .join(clusters, clusters.c.id == rollout_clusters.c.cluster_id)
    .order_by(rollout_clusters.c.position)
)


def versions_of(last_health: object) -> tuple[str, ...]:
    """The nodes' versions in a stored health check (none when there is none)."""
    return tuple(n.version for n in from_stored(last_health) or [])


async def read_rollout(conn: AsyncConnection, rollout_id: int) -> Rollout:
    row = (await conn.execute(select(rollouts).where(rollouts.c.id == rollout_id))).first()
    if row is None:
        raise NotFound(f"no rollout {rollout_id}: see `mission-control rollouts list`")
    sizes = tuple(int(s) for s in row.sizes)
    members = await conn.execute(MEMBERS.where(rollout_clusters.c.rollout_id == rollout_id))
    found = []
    for m in members:
        if m.failed_at is not None:
            state = "failed"
        elif m.finished_at is not None:
            state = "finished"
        elif m.offered_at is not None:
            state = "offered"
        else:
            state = "waiting"
        found.append(
            RolloutCluster(
                id=m.cluster_id,
                name=m.name,
                wave=_wave_of(m.position, sizes) + 1,
                state=state,
                versions=versions_of(m.last_health),
                health=m.health_status,
                offered_at=m.offered_at,
                failure=m.failure,
            )
        )
    return Rollout(
        id=row.id,
        version=row.version,
        selector=row.selector,
        waves=row.waves,
        sizes=sizes,
        state=RolloutState(row.state),
        wave=row.wave + 1,
        reason=row.reason,
        created_at=row.created_at,
        created_by=row.created_by,
        clusters=tuple(found),
    )


async def show(ctx: ServiceContext, rollout: str | int) -> Rollout:
    async with ctx.engine.connect() as conn:
        return await read_rollout(conn, rollout_id_of(rollout))


async def list_rollouts(ctx: ServiceContext) -> list[Rollout]:
    """Every rollout, newest first."""
    async with ctx.engine.connect() as conn:
        ids = (await conn.scalars(select(rollouts.c.id).order_by(rollouts.c.id.desc()))).all()
        return [await read_rollout(conn, i) for i in ids]
