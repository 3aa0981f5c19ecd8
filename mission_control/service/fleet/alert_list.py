"""Alerts across the fleet: open and recent alerts, filtered by state, kind and cluster, paged.

``open``: not cleared. ``recent``: raised or cleared within `recent` (default 7 days), open or
not. ``all``: everything kept. The cluster filter matches an exact id or a substring of the
name. Newest first (the raised_at index), LIMIT/OFFSET paging; a page past the end shows the
last one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.messages import Alert, AlertKind
from mission_control.db.schema import ALERT_OPEN_WHERE, alerts, clusters
from mission_control.service.context import ServiceContext

RECENT = timedelta(days=7)


class AlertFilter(BaseModel):
    """The alerts page's query string; unknown parameters are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    state: Literal["open", "recent", "all"] = "open"
    kind: Literal[
        "",
        "cluster_undersized",
        "cluster_silent",
        "license_expiring",
        "license_expired",
        "license_overage",
        "backup_failed",
        "drill_failed",
        "setting_changed",
        "datacenter_lost",
        "datacenter_back",
        "release_refused",
        "rollout_failed",
        "credential_leaked",
    ] = ""
    cluster: str = Field(default="", max_length=128)
    page: int = Field(default=1, ge=1, le=1_000_000)


@dataclass(frozen=True)
class AlertPage:
    alerts: Sequence[Alert]
    matching: int
    page: int
    pages: int
    open_by_severity: Mapping[str, int]


def _filters(query: AlertFilter, now: datetime) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.state == "open":
        where.append(ALERT_OPEN_WHERE)
    elif query.state == "recent":
        since = now - RECENT
        where.append(or_(alerts.c.raised_at >= since, alerts.c.cleared_at >= since))
    if query.kind:
        where.append(alerts.c.kind == AlertKind(query.kind).value)
    text = query.cluster.strip()
    if text:
        where.append(
            or_(clusters.c.id == text.lower(), clusters.c.name.icontains(text, autoescape=True))
        )
    return where


async def load_alerts(
    conn: AsyncConnection, query: AlertFilter, *, now: datetime, page_size: int
) -> AlertPage:
    where = and_(true(), *_filters(query, now))
    joined = alerts.join(clusters, clusters.c.id == alerts.c.cluster_id)
    matching = int(await conn.scalar(select(func.count()).select_from(joined).where(where)) or 0)
    pages = max(1, -(-matching // page_size))
    page = min(query.page, pages)
    rows = (
        (
            await conn.execute(
                select(alerts, clusters.c.name.label("cluster_name"))
                .select_from(joined)
                .where(where)
                .order_by(alerts.c.raised_at.desc(), alerts.c.id.desc())
                .limit(page_size)
                .offset((page - 1) * page_size)
            )
        )
        .mappings()
        .all()
    )
    severity: dict[str, int] = {"critical": 0, "warning": 0}
    for level, count in await conn.execute(
        select(alerts.c.severity, func.count()).where(ALERT_OPEN_WHERE).group_by(alerts.c.severity)
    ):
        severity[level] = int(count)
    return AlertPage(
        alerts=[Alert.model_validate(dict(r)) for r in rows],
        matching=matching,
        page=page,
        pages=pages,
        open_by_severity=severity,
    )


async def alert_page(ctx: ServiceContext, query: AlertFilter, *, page_size: int) -> AlertPage:
    """`load_alerts` on a connection of its own, as of now (`ctx.clock`)."""
    async with ctx.engine.connect() as conn:
        return await load_alerts(conn, query, now=ctx.clock(), page_size=page_size)
