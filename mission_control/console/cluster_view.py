"""The cluster page's data: nodes, sizing advice, license, alerts, backups and history.

Nodes come from the last health report (`clusters.last_health`); the advice and the reasons
are recomputed from it with the same pure functions the health reply used, so the page and the
reply cannot disagree. Fields an older cluster does not send (datacenter, leader) show as unknown.

Backups: Mission Control records backup events only as the `backup_failed` alert, so the page
shows the last failure (the newest such alert) and the last recovery (when a success cleared
it); a backup that never failed shows no date.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mission_control.console.fleet import SILENT_IDS, FleetStatus, fleet_status
from mission_control.console.history import (
    HealthSample,
    HourlyConsumption,
    ResourcePoint,
    latest_sample,
    load_consumption,
    resource_history,
)
from mission_control.console.units import MemoryDiskShares
from mission_control.db.schema import ALERT_OPEN_WHERE, alerts, clusters, licenses
from mission_control.protocol import Alert, AlertKind, NodeHealth
from mission_control.service.context import ServiceContext
from mission_control.service.licensing import License, LicenseEvaluation, evaluate_license
from mission_control.service.sizing import HealthAssessment, assess

RECENT_ALERTS = 20


@dataclass(frozen=True)
class NodeRow(MemoryDiskShares):
    node: str
    datacenter: str | None
    state: str
    leader: bool | None
    version: str
    cpu_cores: int
    cpu_fraction: float
    memory_used_bytes: int
    memory_total_bytes: int
    disk_used_bytes: int
    disk_total_bytes: int


@dataclass(frozen=True)
class Capacity:
    """What the cluster has (nodes up, their cores and memory) against the advice."""

    nodes: int
    cores: int
    memory_bytes: int
    assessment: HealthAssessment


@dataclass(frozen=True)
class BackupState:
    failing_since: datetime | None
    last_failure_at: datetime | None
    last_failure_detail: str | None
    last_recovery_at: datetime | None


@dataclass(frozen=True)
class ClusterView:
    id: str
    name: str
    geography: str
    created_at: datetime
    enrolled_at: datetime | None
    last_epoch: int
    last_health_at: datetime | None
    last_heartbeat_at: datetime | None
    status: FleetStatus
    nodes: Sequence[NodeRow]
    capacity: Capacity | None
    license: LicenseEvaluation
    alerts: Sequence[Alert]
    backups: BackupState
    window: tuple[datetime, datetime]
    history: Sequence[ResourcePoint]
    latest: HealthSample | None
    consumption: Sequence[HourlyConsumption]


def node_row(raw: Mapping[str, Any]) -> NodeRow:
    """One node of a stored health report (tolerant of fields added later)."""
    leader = raw.get("leader")
    return NodeRow(
        node=str(raw.get("node", "?")),
        datacenter=raw.get("datacenter"),
        state=str(raw.get("state", "unknown")),
        leader=leader if isinstance(leader, bool) else None,
        version=str(raw.get("version", "")),
        cpu_cores=int(raw.get("cpu_cores", 0)),
        cpu_fraction=float(raw.get("cpu_percent", 0.0)) / 100,
        memory_used_bytes=int(raw.get("memory_used_bytes", 0)),
        memory_total_bytes=int(raw.get("memory_total_bytes", 0)),
        disk_used_bytes=int(raw.get("disk_used_bytes", 0)),
        disk_total_bytes=int(raw.get("disk_total_bytes", 0)),
    )


def capacity(last_health: Any, ctx: ServiceContext) -> Capacity | None:
    """Capacity and advice from a stored report; None when there is none (or it is unreadable)."""
    if not isinstance(last_health, list) or not last_health:
        return None
    fields = NodeHealth.model_fields
    try:
        nodes = [
            NodeHealth.model_validate({k: v for k, v in n.items() if k in fields})
            for n in last_health
        ]
    except (ValueError, AttributeError):
        return None
    up = [n for n in nodes if n.state != "down"]
    return Capacity(
        nodes=len(up),
        cores=sum(n.cpu_cores for n in up),
        memory_bytes=sum(n.memory_total_bytes for n in up),
        assessment=assess(nodes, ctx.sizing, ctx.alerts),
    )


async def _alerts(conn: AsyncConnection, cluster_id: str, name: str) -> list[Alert]:
    """Open alerts, then the most recent cleared ones, newest first."""
    query = (
        select(alerts)
        .where(alerts.c.cluster_id == cluster_id)
        .order_by(alerts.c.raised_at.desc(), alerts.c.id.desc())
    )
    opened = (await conn.execute(query.where(ALERT_OPEN_WHERE))).mappings().all()
    cleared = query.where(alerts.c.cleared_at.is_not(None)).limit(RECENT_ALERTS)
    recent = (await conn.execute(cleared)).mappings().all()
    return [Alert.model_validate({**row, "cluster_name": name}) for row in [*opened, *recent]]


async def _backups(conn: AsyncConnection, cluster_id: str) -> BackupState:
    failed = and_(alerts.c.cluster_id == cluster_id, alerts.c.kind == AlertKind.BACKUP_FAILED.value)
    newest = (
        await conn.execute(
            select(alerts.c.raised_at, alerts.c.cleared_at, alerts.c.detail)
            .where(failed)
            .order_by(alerts.c.raised_at.desc(), alerts.c.id.desc())
            .limit(1)
        )
    ).first()
    recovered = await conn.scalar(select(func.max(alerts.c.cleared_at)).where(failed))
    return BackupState(
        failing_since=newest.raised_at if newest and newest.cleared_at is None else None,
        last_failure_at=newest.raised_at if newest else None,
        last_failure_detail=newest.detail if newest else None,
        last_recovery_at=recovered,
    )


async def load_cluster(
    conn: AsyncConnection,
    ctx: ServiceContext,
    cluster: str,
    now: datetime,
    history: timedelta,
    buckets: int = 360,
) -> ClusterView | None:
    """Everything the cluster page shows; `cluster` is an id or a name. The resource history
    covers `history` back from `now` in at most `buckets` averaged points."""
    row = (
        await conn.execute(
            select(
                clusters,
                licenses.c.host_units,
                licenses.c.expires,
                clusters.c.id.in_(SILENT_IDS).label("silent"),
            )
            .outerjoin(licenses, licenses.c.cluster_id == clusters.c.id)
            .where(or_(clusters.c.id == cluster, clusters.c.name == cluster))
        )
    ).first()
    if row is None:
        return None
    lic = None if row.expires is None else License(row.host_units, row.expires)
    # Whole hours, so the hourly consumption bars line up with the frame.
    start = (now - history).replace(minute=0, second=0, microsecond=0)
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return ClusterView(
        id=row.id,
        name=row.name,
        geography=row.geography,
        created_at=row.created_at,
        enrolled_at=row.enrolled_at,
        last_epoch=row.last_epoch,
        last_health_at=row.last_health_at,
        last_heartbeat_at=row.last_heartbeat_at,
        status=fleet_status(row.enrolled_at is not None, row.health_status, bool(row.silent)),
        nodes=[node_row(n) for n in row.last_health or [] if isinstance(n, dict)],
        capacity=capacity(row.last_health, ctx),
        license=evaluate_license(
            lic, row.host_units_in_use, now.date(), ctx.alerts.license_expiring_days
        ),
        alerts=await _alerts(conn, row.id, row.name),
        backups=await _backups(conn, row.id),
        window=(start, end),
        history=await resource_history(conn, row.id, start, end, buckets),
        latest=await latest_sample(conn, row.id),
        consumption=await load_consumption(conn, row.id, start),
    )
