"""Which release Mission Control offers to which cluster.

`offer` is the one way an offer is made: `mission-control releases offer V --cluster NAME`
calls it, and so will a fleet rollout, wave by wave. A cluster reads its own offer
(`offer_for`, `GET /api/v1/clusters/{id}/releases/offer`); its leader fetches and verifies the
release itself, and installs it only inside the operator's maintenance window.

Guarantees: an offer names a published release (the caller passes the versions the signed
repository holds) of a known cluster, or nothing is written; each cluster has at most one
offer (a new one replaces it), recorded with a `release.offered` audit entry in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select

from contract.audit.events import Actor, AuditEvent
from contract.messages import ReleaseOffer
from mission_control.db.engine import insert_or_ignore
from mission_control.db.schema import release_offers
from mission_control.errors import NotFound
from mission_control.service.accounts import audit_log
from mission_control.service.context import ServiceContext
from mission_control.service.fleet.admin import find_cluster_id


async def offer(
    ctx: ServiceContext, cluster: str, version: str, published: Collection[str], by: Actor
) -> ReleaseOffer:
    """Offer release `version` to `cluster` (name or id). NotFound, with nothing written, when
    the version is not among `published` or the cluster is unknown."""
    if version not in published:
        raise NotFound(
            f"release {version[:64]} is not published (see `mission-control releases list`)"
        )
    now = ctx.clock()
    async with ctx.engine.begin() as conn:
        cluster_id = await find_cluster_id(conn, cluster)
        values = {"version": version, "offered_at": now, "offered_by": by.name[:256]}
        inserted = await conn.execute(
            insert_or_ignore(conn.dialect.name, release_offers, ("cluster_id",)),
            {"cluster_id": cluster_id, **values},
        )
        if inserted.rowcount != 1:
            await conn.execute(
                release_offers.update()
                .where(release_offers.c.cluster_id == cluster_id)
                .values(**values)
            )
        event = AuditEvent(now, by, "release.offered", cluster_id, version, {"version": version})
        await audit_log.record(conn, ctx, [event])
    return ReleaseOffer(version=version, offered_at=now)


async def offer_for(ctx: ServiceContext, cluster_id: str) -> ReleaseOffer:
    """The release offered to the cluster (an empty offer when none is)."""
    async with ctx.engine.connect() as conn:
        row = (
            await conn.execute(
                select(release_offers.c.version, release_offers.c.offered_at).where(
                    release_offers.c.cluster_id == cluster_id
                )
            )
        ).first()
    if row is None:
        return ReleaseOffer()
    return ReleaseOffer(version=row.version, offered_at=row.offered_at)
