"""One cluster in full: nodes, sizing advice, license, alerts, backups and history.

Nodes come from the last health report (`clusters.last_health`, read back as
`contract.messages.NodeHealth` by `node_health.from_stored`), with each node's datacenter and
whether it leads; the advice and the reasons are recomputed from it with the same pure
functions the health reply used, so the page and the reply cannot disagree. A report from a
cluster too old to send datacenter and leader shows them as unknown.

Backups: the last success and the last failure the cluster reported (`backup_outcomes`, kept by
the event ingest), and whether backups are failing now (the open `backup_failed` alert).
Restore drills: the last RECENT_DRILLS the cluster reported (`restore_drills`), newest first,
with the last one's RTO and RPO and the RTO trend over them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.drills import rto_trend
from contract.messages import Alert, AlertKind, DatacenterHealth, NodeHealth
from mission_control.db.schema import (
    ALERT_OPEN_WHERE,
    alerts,
    backup_outcomes,
    clusters,
    licenses,
    restore_drills,
)
from mission_control.service.context import ServiceContext
from mission_control.service.fleet.history import (
    HourlyConsumption,
    ResourcePoint,
    latest_sample,
    load_consumption,
    resource_history,
)
from mission_control.service.fleet.node_health import from_stored, sites_from_stored
from mission_control.service.fleet.overview import SILENT_IDS, FleetStatus, fleet_status
from mission_control.service.rules.licensing import License, LicenseEvaluation, evaluate_license
from mission_control.service.rules.resources import HealthSample, MemoryDiskShares
from mission_control.service.rules.sizing import HealthAssessment, assess

RECENT_ALERTS = 20
RECENT_DRILLS = 12


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
class BackupOutcome:
    """One backup event as received: when, the backup it names, what the cluster said."""

    at: datetime
    backup_id: str | None
    detail: str


@dataclass(frozen=True)
class BackupState:
    last_success: BackupOutcome | None
    last_failure: BackupOutcome | None
    failing_since: datetime | None  # the open backup_failed alert, if any

    @property
    def failed_last(self) -> bool:
        """The newest report is a failure."""
        if self.last_failure is None:
            return False
        return self.last_success is None or self.last_failure.at >= self.last_success.at


@dataclass(frozen=True)
class DrillRow:
    """One restore drill as the cluster reported it."""

    drill_id: str
    at: datetime
    ok: bool
    backup_id: str | None
    rto_seconds: float | None
    rpo_seconds: float | None
    bytes: int
    files: int
    decrypted: bool
    detail: str


@dataclass(frozen=True)
class DrillState:
    recent: Sequence[DrillRow]  # newest first

    @property
    def last(self) -> DrillRow | None:
        return self.recent[0] if self.recent else None

    @property
    def rto_points(self) -> list[float]:
        """The RTOs of the successful drills shown, oldest first (the trend line)."""
        return [d.rto_seconds for d in reversed(self.recent) if d.ok and d.rto_seconds is not None]

    @property
    def trend(self) -> str:
        """The newest successful drill's RTO against the median of the ones before it."""
        return rto_trend(self.rto_points)


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
    drills: DrillState
    window: tuple[datetime, datetime]
    history: Sequence[ResourcePoint]
    latest: HealthSample | None
    consumption: Sequence[HourlyConsumption]
    #: Data centers and the witness as the last health report gave them (none: not declared).
    datacenters: Sequence[DatacenterHealth] = ()
    quorum_rule: str | None = None


def node_row(node: NodeHealth) -> NodeRow:
    """One node of a health report, as the nodes table shows it."""
    return NodeRow(
        node=node.node,
        datacenter=node.datacenter,
        state=node.state,
        leader=node.leader,
        version=node.version,
        cpu_cores=node.cpu_cores,
        cpu_fraction=node.cpu_percent / 100,
        memory_used_bytes=node.memory_used_bytes,
        memory_total_bytes=node.memory_total_bytes,
        disk_used_bytes=node.disk_used_bytes,
        disk_total_bytes=node.disk_total_bytes,
    )


def capacity(nodes: Sequence[NodeHealth] | None, ctx: ServiceContext) -> Capacity | None:
    """Capacity and advice from a health report; None without one."""
    if not nodes:
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


async def _backups(conn: AsyncConnection, cluster_id: str, shown: list[Alert]) -> BackupState:
    """The last outcomes; `failing_since` from the open backup_failed alert among `shown`."""
    found: dict[str, BackupOutcome] = {}
    for row in await conn.execute(
        select(backup_outcomes).where(backup_outcomes.c.cluster_id == cluster_id)
    ):
        found[row.outcome] = BackupOutcome(row.at, row.backup_id, row.detail)
    failing_since = next(
        (a.raised_at for a in shown if a.kind is AlertKind.BACKUP_FAILED and a.cleared_at is None),
        None,
    )
    return BackupState(found.get("succeeded"), found.get("failed"), failing_since)


async def _drills(conn: AsyncConnection, cluster_id: str) -> DrillState:
    query = (
        select(restore_drills)
        .where(restore_drills.c.cluster_id == cluster_id)
        .order_by(restore_drills.c.at.desc(), restore_drills.c.drill_id.desc())
        .limit(RECENT_DRILLS)
    )
    rows = (await conn.execute(query)).mappings().all()
    fields = DrillRow.__dataclass_fields__
    return DrillState([DrillRow(**{k: v for k, v in row.items() if k in fields}) for row in rows])


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
    shown = await _alerts(conn, row.id, row.name)
    nodes = from_stored(row.last_health)
    sites, quorum_rule = sites_from_stored(row.last_datacenters)
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
        nodes=[node_row(n) for n in nodes or []],
        capacity=capacity(nodes, ctx),
        license=evaluate_license(
            lic, row.host_units_in_use, now.date(), ctx.alerts.license_expiring_days
        ),
        alerts=shown,
        backups=await _backups(conn, row.id, shown),
        drills=await _drills(conn, row.id),
        window=(start, end),
        history=await resource_history(conn, row.id, start, end, buckets),
        latest=await latest_sample(conn, row.id),
        consumption=await load_consumption(conn, row.id, start),
        datacenters=sites,
        quorum_rule=quorum_rule,
    )


async def cluster_page(
    ctx: ServiceContext, cluster: str, history: timedelta, buckets: int = 360
) -> ClusterView | None:
    """`load_cluster` on a connection of its own, as of now (`ctx.clock`)."""
    async with ctx.engine.connect() as conn:
        return await load_cluster(conn, ctx, cluster, ctx.clock(), history, buckets)
