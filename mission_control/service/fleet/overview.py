"""The fleet's overview: every cluster's status at a glance, searchable and paged.

Guarantees: one page costs five queries (the count, the page's ids, its rows with their last
backup outcomes, their open alerts, the status tallies); paging is LIMIT/OFFSET over the index
on ``clusters.name`` (ids first, full rows only for the page), and a page past the end shows
the last page. The offset is walked through the narrow covering index, so a deep page costs
more than the first, but only index entries (the last of 10,000 clusters is measured in
benchmarks/console.py). No per-row subquery: the few silent clusters are found through the
open-alert index. Search matches a substring of the name (case-insensitive, ``%`` and ``_``
taken literally) or an exact cluster id.

Status, worst first: ``pending`` (not enrolled yet), ``silent`` (a cluster_silent alert is
open), ``no-data`` (enrolled, no health check yet), else the last health check's status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, and_, case, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.messages import AlertKind, LicenseState, NodeHealth
from mission_control.db.schema import ALERT_OPEN_WHERE, alerts, backup_outcomes, clusters, licenses
from mission_control.service.context import ServiceContext
from mission_control.service.fleet.node_health import from_stored
from mission_control.service.rules.licensing import License, evaluate_license


class FleetStatus(StrEnum):
    HEALTHY = "healthy"
    UNDERSIZED = "undersized"
    DEGRADED = "degraded"
    SILENT = "silent"
    NO_DATA = "no-data"
    PENDING = "pending"


class FleetQuery(BaseModel):
    """The fleet page's query string; unknown parameters are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    q: str = Field(default="", max_length=128)
    geography: Literal["", "EU", "US", "AU"] = ""
    status: Literal["", "healthy", "undersized", "degraded", "silent", "no-data", "pending"] = ""
    page: int = Field(default=1, ge=1, le=1_000_000)


@dataclass(frozen=True)
class FleetRow:
    id: str
    name: str
    geography: str
    status: FleetStatus
    nodes_up: int | None
    nodes_total: int | None
    license_state: LicenseState
    license_days_left: int | None
    last_health_at: datetime | None
    open_alerts: int
    critical_alerts: int
    last_backup_at: datetime | None = None
    last_backup_failed: bool = False


@dataclass(frozen=True)
class FleetPage:
    rows: Sequence[FleetRow]
    matching: int
    page: int
    pages: int
    tallies: Mapping[FleetStatus, int]

    @property
    def fleet_size(self) -> int:
        return sum(self.tallies.values())


# Clusters with an open cluster_silent alert: few, found through the partial unique index.
SILENT_IDS = select(alerts.c.cluster_id).where(
    alerts.c.kind == AlertKind.CLUSTER_SILENT.value, ALERT_OPEN_WHERE
)
_ENROLLED = clusters.c.enrolled_at.is_not(None)


def fleet_status(enrolled: bool, health_status: str | None, silent: bool) -> FleetStatus:
    """A cluster's status on the console (see the module docstring for the order)."""
    if not enrolled:
        return FleetStatus.PENDING
    if silent:
        return FleetStatus.SILENT
    if health_status is None:
        return FleetStatus.NO_DATA
    return FleetStatus(health_status)


def status_filter(status: FleetStatus) -> ColumnElement[bool]:
    """The clusters whose `fleet_status` is `status`, as a WHERE clause."""
    if status is FleetStatus.PENDING:
        return clusters.c.enrolled_at.is_(None)
    if status is FleetStatus.SILENT:
        return and_(_ENROLLED, clusters.c.id.in_(SILENT_IDS))
    heard: ColumnElement[bool] = clusters.c.health_status.is_(None)
    if status is not FleetStatus.NO_DATA:
        heard = clusters.c.health_status == status.value
    return and_(_ENROLLED, heard, clusters.c.id.not_in(SILENT_IDS))


def _filters(query: FleetQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    text = query.q.strip()
    if text:
        where.append(
            or_(clusters.c.name.icontains(text, autoescape=True), clusters.c.id == text.lower())
        )
    if query.geography:
        where.append(clusters.c.geography == query.geography)
    if query.status:
        where.append(status_filter(FleetStatus(query.status)))
    return where


async def tallies(conn: AsyncConnection) -> dict[FleetStatus, int]:
    """How many clusters have each status: one pass over clusters, one over silent alerts."""
    found = {s: 0 for s in FleetStatus}
    pending = clusters.c.enrolled_at.is_(None).label("pending")
    for is_pending, health, count in await conn.execute(
        select(pending, clusters.c.health_status, func.count()).group_by(
            pending, clusters.c.health_status
        )
    ):
        found[fleet_status(not is_pending, health, False)] += int(count)
    for health, count in await conn.execute(
        select(clusters.c.health_status, func.count())
        .join(alerts, alerts.c.cluster_id == clusters.c.id)
        .where(_ENROLLED, alerts.c.kind == AlertKind.CLUSTER_SILENT.value, ALERT_OPEN_WHERE)
        .group_by(clusters.c.health_status)
    ):
        found[fleet_status(True, health, False)] -= int(count)
        found[FleetStatus.SILENT] += int(count)
    return found


_SUCCEEDED = backup_outcomes.alias("backup_ok")
_FAILED = backup_outcomes.alias("backup_failed")


def _backup_of(table: Any, outcome: str) -> ColumnElement[bool]:
    return and_(table.c.cluster_id == clusters.c.id, table.c.outcome == outcome)


def last_backup(
    succeeded_at: datetime | None, failed_at: datetime | None
) -> tuple[datetime | None, bool]:
    """The newest backup report of a cluster: (when, whether it was a failure)."""
    if failed_at is not None and (succeeded_at is None or failed_at >= succeeded_at):
        return failed_at, True
    return succeeded_at, False


def node_counts(nodes: Sequence[NodeHealth] | None) -> tuple[int | None, int | None]:
    """(nodes up, nodes reported) of a health report; (None, None) without one."""
    if nodes is None:
        return None, None
    return sum(1 for n in nodes if n.state != "down"), len(nodes)


async def load_fleet(
    conn: AsyncConnection, query: FleetQuery, *, today: date, expiring_days: int, page_size: int
) -> FleetPage:
    where = and_(true(), *_filters(query))
    matching = int(await conn.scalar(select(func.count()).select_from(clusters).where(where)) or 0)
    pages = max(1, -(-matching // page_size))
    page = min(query.page, pages)
    # The page's ids first (an index walk over names), then only those rows in full.
    page_ids = (
        select(clusters.c.id)
        .where(where)
        .order_by(clusters.c.name)
        .limit(page_size)
        .offset((page - 1) * page_size)
        .scalar_subquery()
    )
    rows = (
        await conn.execute(
            select(
                clusters.c.id,
                clusters.c.name,
                clusters.c.geography,
                clusters.c.enrolled_at,
                clusters.c.health_status,
                clusters.c.last_health_at,
                clusters.c.last_health,
                clusters.c.host_units_in_use,
                licenses.c.host_units,
                licenses.c.expires,
                _SUCCEEDED.c.at.label("backup_ok_at"),
                _FAILED.c.at.label("backup_failed_at"),
            )
            .outerjoin(licenses, licenses.c.cluster_id == clusters.c.id)
            .outerjoin(_SUCCEEDED, _backup_of(_SUCCEEDED, "succeeded"))
            .outerjoin(_FAILED, _backup_of(_FAILED, "failed"))
            .where(clusters.c.id.in_(page_ids))
            .order_by(clusters.c.name)
        )
    ).all()
    counts: dict[str, tuple[int, int, bool]] = {}
    if rows:
        critical = func.sum(case((alerts.c.severity == "critical", 1), else_=0))
        silent = func.sum(case((alerts.c.kind == AlertKind.CLUSTER_SILENT.value, 1), else_=0))
        for cluster_id, total, crit, quiet in await conn.execute(
            select(alerts.c.cluster_id, func.count(), critical, silent)
            .where(ALERT_OPEN_WHERE, alerts.c.cluster_id.in_([r.id for r in rows]))
            .group_by(alerts.c.cluster_id)
        ):
            counts[cluster_id] = (int(total), int(crit or 0), bool(quiet))
    result = []
    for row in rows:
        lic = None if row.expires is None else License(row.host_units, row.expires)
        evaluation = evaluate_license(lic, row.host_units_in_use, today, expiring_days)
        up, total = node_counts(from_stored(row.last_health))
        backup_at, backup_failed = last_backup(row.backup_ok_at, row.backup_failed_at)
        open_count, critical_count, is_silent = counts.get(row.id, (0, 0, False))
        result.append(
            FleetRow(
                id=row.id,
                name=row.name,
                geography=row.geography,
                status=fleet_status(row.enrolled_at is not None, row.health_status, is_silent),
                nodes_up=up,
                nodes_total=total,
                license_state=evaluation.state,
                license_days_left=evaluation.days_left,
                last_health_at=row.last_health_at,
                open_alerts=open_count,
                critical_alerts=critical_count,
                last_backup_at=backup_at,
                last_backup_failed=backup_failed,
            )
        )
    return FleetPage(
        rows=result, matching=matching, page=page, pages=pages, tallies=await tallies(conn)
    )


async def fleet_page(ctx: ServiceContext, query: FleetQuery, *, page_size: int) -> FleetPage:
    """`load_fleet` on a connection of its own, licenses judged on today's date (`ctx.clock`)."""
    async with ctx.engine.connect() as conn:
        return await load_fleet(
            conn,
            query,
            today=ctx.clock().date(),
            expiring_days=ctx.alerts.license_expiring_days,
            page_size=page_size,
        )
