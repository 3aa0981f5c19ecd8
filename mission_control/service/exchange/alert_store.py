"""Alerts in the database: applying rule outcomes, listing them, acknowledging them.

Guarantees: at most one open alert per (cluster, kind), even with concurrent writers (the
partial unique index plus INSERT .. ON CONFLICT DO NOTHING); clearing only touches open alerts;
history is kept (a cleared alert keeps its row, a new occurrence gets a new row). Alerts that no
report of the cluster clears (`ACKNOWLEDGED_BY_HAND`: setting_changed, datacenter_back,
release_refused, credential_leaked) stay open until an operator acknowledges them
(`acknowledge_alert`, audited); the others cannot be acknowledged, their own condition clears
them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.audit.canonical import JsonValue, format_time
from contract.audit.events import Actor, AuditEvent
from contract.messages import Alert, AlertKind, StaffRole
from mission_control.db.engine import insert_or_ignore
from mission_control.db.schema import ALERT_OPEN_WHERE, alerts, clusters
from mission_control.errors import Forbidden, NotFound
from mission_control.service.accounts import audit_log
from mission_control.service.context import ServiceContext
from mission_control.service.refusals import InvalidState
from mission_control.service.rules.alerts import SEVERITY, AlertChanges
from mission_control.staff.roles import can_acknowledge_alerts


@dataclass(frozen=True)
class OpenAlert:
    id: int
    detail: str


def detail_of(alert: OpenAlert | None) -> str | None:
    """An open alert's detail (None: not open)."""
    return None if alert is None else alert.detail


_OPEN = select(alerts.c.id, alerts.c.cluster_id, alerts.c.kind, alerts.c.detail).where(
    ALERT_OPEN_WHERE
)
_OPEN_OF_CLUSTER = _OPEN.where(alerts.c.cluster_id == bindparam("b_cluster"))
_CLEAR = (
    update(alerts)
    .where(alerts.c.id == bindparam("b_id"), ALERT_OPEN_WHERE)
    .values(cleared_at=bindparam("b_now"))
)
_REDETAIL = (
    update(alerts)
    .where(alerts.c.id == bindparam("b_id"), ALERT_OPEN_WHERE)
    .values(detail=bindparam("b_detail"))
)


async def open_alerts(
    conn: AsyncConnection, cluster_id: str | None = None
) -> dict[str, dict[AlertKind, OpenAlert]]:
    """Open alerts by cluster id and kind (all clusters when `cluster_id` is None)."""
    if cluster_id is None:
        rows = await conn.execute(_OPEN)
    else:
        rows = await conn.execute(_OPEN_OF_CLUSTER, {"b_cluster": cluster_id})
    found: dict[str, dict[AlertKind, OpenAlert]] = {}
    for row in rows:
        found.setdefault(row.cluster_id, {})[AlertKind(row.kind)] = OpenAlert(row.id, row.detail)
    return found


async def apply_alert_changes(
    conn: AsyncConnection,
    cluster_id: str,
    changes: AlertChanges,
    now: datetime,
    current: Mapping[AlertKind, OpenAlert] | None = None,
) -> None:
    """Raise, update or clear alerts of `cluster_id` as `changes` says, inside `conn`'s
    transaction. `current` (this cluster's open alerts) is read when not given."""
    if current is None:
        current = (await open_alerts(conn, cluster_id)).get(cluster_id, {})
    for kind, detail in changes.items():
        existing = current.get(kind)
        if detail is None and existing is not None:
            await conn.execute(_CLEAR, {"b_id": existing.id, "b_now": now})
        elif detail is not None and existing is None:
            values = {
                "cluster_id": cluster_id,
                "kind": kind.value,
                "severity": SEVERITY[kind],
                "detail": detail,
                "raised_at": now,
            }
            await conn.execute(
                insert_or_ignore(
                    conn.dialect.name, alerts, ("cluster_id", "kind"), ALERT_OPEN_WHERE
                ),
                values,
            )
        elif detail is not None and existing is not None and existing.detail != detail:
            await conn.execute(_REDETAIL, {"b_id": existing.id, "b_detail": detail})


async def list_alerts(
    ctx: ServiceContext, *, active_only: bool = True, cluster: str | None = None
) -> list[Alert]:
    """Alerts, newest first; `cluster` filters by cluster id or name."""
    query = (
        select(alerts, clusters.c.name.label("cluster_name"))
        .join(clusters, clusters.c.id == alerts.c.cluster_id)
        .order_by(alerts.c.raised_at.desc(), alerts.c.id.desc())
    )
    if active_only:
        query = query.where(ALERT_OPEN_WHERE)
    if cluster is not None:
        query = query.where(or_(clusters.c.id == cluster, clusters.c.name == cluster))
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [Alert.model_validate(dict(row)) for row in rows]


#: Kinds that only a person closes.
ACKNOWLEDGED_BY_HAND = frozenset(
    {
        AlertKind.SETTING_CHANGED,
        AlertKind.DATACENTER_BACK,
        AlertKind.RELEASE_REFUSED,
        AlertKind.CREDENTIAL_LEAKED,
    }
)


async def acknowledge_alert(
    ctx: ServiceContext, alert: str, *, by: Actor, role: StaffRole | None = None
) -> Alert:
    """Close the open alert whose id `alert` gives (as typed: a path segment, an argument) if
    only a person closes its kind, recording who did in the audit log (`alert.acknowledged`).
    `role`, when given, must be allowed to."""
    if role is not None and not can_acknowledge_alerts(role):
        raise Forbidden("only operators and admins acknowledge alerts")
    if not alert.isdigit() or not 0 < int(alert) < 2**31:  # the column is 32-bit
        raise NotFound(f"no alert {alert}: see `alerts list`")
    alert_id = int(alert)
    now = ctx.clock()
    query = (
        select(alerts, clusters.c.name.label("cluster_name"))
        .join(clusters, clusters.c.id == alerts.c.cluster_id)
        .where(alerts.c.id == alert_id)
    )
    async with ctx.engine.begin() as conn:
        row = (await conn.execute(query.with_for_update(of=alerts))).mappings().first()
        if row is None:
            raise NotFound(f"no alert {alert_id}: see `alerts list`")
        if AlertKind(row["kind"]) not in ACKNOWLEDGED_BY_HAND:
            raise InvalidState(f"alert {alert_id} ({row['kind']}) clears when its condition ends")
        if row["cleared_at"] is not None:
            raise InvalidState(f"alert {alert_id} was closed at {format_time(row['cleared_at'])}")
        await conn.execute(_CLEAR, {"b_id": alert_id, "b_now": now})
        detail: dict[str, JsonValue] = {"alert": alert_id, "kind": row["kind"]}
        detail["detail"] = row["detail"]
        event = AuditEvent(now, by, "alert.acknowledged", row["cluster_id"], str(alert_id), detail)
        await audit_log.record(conn, ctx, [event])
    return Alert.model_validate({**row, "cleared_at": now})
