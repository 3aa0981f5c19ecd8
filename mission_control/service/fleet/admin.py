"""Operator actions on records: find and list clusters, set a cluster's license."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.audit.canonical import JsonValue
from contract.audit.events import Actor, AuditEvent
from contract.messages import ClusterSummary, LicenseSummary
from mission_control.db.engine import insert_or_ignore
from mission_control.db.schema import clusters, licenses
from mission_control.errors import NotFound
from mission_control.service.accounts import audit_log
from mission_control.service.context import ServiceContext
from mission_control.service.exchange.alert_store import apply_alert_changes
from mission_control.service.refusals import InvalidInput
from mission_control.service.rules.alerts import license_alerts
from mission_control.service.rules.licensing import License, evaluate_license

#: The most host units a license may grant (as many as a cluster may report in use).
MAX_HOST_UNITS = 1e9


async def find_cluster_id(conn: AsyncConnection, cluster: str) -> str:
    """The id of the cluster named `cluster` (or with that id); NotFound otherwise."""
    found = await conn.scalar(
        select(clusters.c.id).where(or_(clusters.c.name == cluster, clusters.c.id == cluster))
    )
    if found is None:
        raise NotFound(f"no cluster named {cluster!r}")
    return str(found)


async def cluster_id_or_scope(ctx: ServiceContext, cluster: str) -> str:
    """The id of the cluster named `cluster` (or with that id); else `cluster` as written, for
    audit scopes that are not clusters (``mission-control``)."""
    async with ctx.engine.connect() as conn:
        try:
            return await find_cluster_id(conn, cluster)
        except NotFound:
            return cluster


async def cluster_names(ctx: ServiceContext, ids: Iterable[str]) -> dict[str, str]:
    """The name of each cluster among `ids` (ids of no cluster are left out)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    async with ctx.engine.connect() as conn:
        rows = await conn.execute(
            select(clusters.c.id, clusters.c.name).where(clusters.c.id.in_(wanted))
        )
        return {row.id: row.name for row in rows}


async def list_clusters(ctx: ServiceContext) -> list[ClusterSummary]:
    query = (
        select(clusters, licenses.c.host_units, licenses.c.expires)
        .outerjoin(licenses, licenses.c.cluster_id == clusters.c.id)
        .order_by(clusters.c.name)
    )
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        ClusterSummary(
            id=row.id,
            name=row.name,
            geography=row.geography,
            created_at=row.created_at,
            enrolled_at=row.enrolled_at,
            last_epoch=row.last_epoch,
            last_health_at=row.last_health_at,
            health_status=row.health_status,
            license=(
                None
                if row.expires is None
                else LicenseSummary(host_units=row.host_units, expires=row.expires)
            ),
        )
        for row in rows
    ]


def license_event(
    now: datetime, by: Actor, cluster_id: str, old: License | None, new: License
) -> AuditEvent:
    """The `license.set` audit entry: who, and the license before and after (host units as
    text: the audit log's canonical JSON has no floats)."""
    detail: dict[str, JsonValue] = {
        "host_units": f"{new.host_units:g}",
        "expires": new.expires.isoformat(),
        "previous_host_units": None if old is None else f"{old.host_units:g}",
        "previous_expires": None if old is None else old.expires.isoformat(),
    }
    return AuditEvent(now, by, "license.set", cluster_id, cluster_id, detail)


async def set_license(
    ctx: ServiceContext,
    cluster: str,
    host_units: float,
    expires: date,
    *,
    by: Actor | None = None,
) -> License:
    """Create or replace the license of `cluster` (name or id) and re-evaluate its alerts;
    with `by`, a `license.set` audit entry (`license_event`) in the same transaction."""
    if not 0 <= host_units <= MAX_HOST_UNITS:  # also refuses NaN
        raise InvalidInput(f"host units must be a number from 0 to {MAX_HOST_UNITS:g}")
    now = ctx.clock()
    async with ctx.engine.begin() as conn:
        cluster_id = await find_cluster_id(conn, cluster)
        previous = None
        if by is not None:
            old = (
                await conn.execute(
                    select(licenses.c.host_units, licenses.c.expires)
                    .where(licenses.c.cluster_id == cluster_id)
                    .with_for_update()
                )
            ).first()
            previous = None if old is None else License(old.host_units, old.expires)
        values = {"host_units": host_units, "expires": expires, "updated_at": now}
        inserted = await conn.execute(
            insert_or_ignore(conn.dialect.name, licenses, ("cluster_id",)),
            {"cluster_id": cluster_id, **values},
        )
        if inserted.rowcount != 1:
            await conn.execute(
                licenses.update().where(licenses.c.cluster_id == cluster_id).values(**values)
            )
        in_use = await conn.scalar(
            select(clusters.c.host_units_in_use).where(clusters.c.id == cluster_id)
        )
        lic = License(host_units=host_units, expires=expires)
        evaluation = evaluate_license(lic, in_use, now.date(), ctx.alerts.license_expiring_days)
        await apply_alert_changes(conn, cluster_id, license_alerts(evaluation), now)
        if by is not None:
            await audit_log.record(conn, ctx, [license_event(now, by, cluster_id, previous, lic)])
    return lic
