"""Messages from a cluster's leader: epoch fencing, deduplication, and what each kind does.

Each handler here only says what its kind of message does; `accept` hands the message to
`mission_control.service.exchange.ingest`, which writes it together with other clusters' messages in
one transaction (group commit) while keeping every message's own outcome exact:

1. Fencing: a message whose epoch is older than the newest accepted from its cluster is
   refused (`StaleEpoch`, 409) and changes nothing; otherwise its epoch becomes the newest.
   A cluster's messages are applied one at a time (its row is locked; one per batch).
2. The kind's effect (alerts, consumption row, ...), run inside the transaction with a
   `Scope`: its cluster's open alerts (read under the lock), `read` for data fetched once per
   batch (`accept(reads=...)`, e.g. the items a heartbeat reply carries), `later` for
   per-message rows written with one executemany per batch (e.g. a health history row), and
   the connection for anything else (one round trip per message: avoid on hot paths).
3. Dedupe: a message whose reply was stored before (a resend, also one from before a newer
   leader spoke) is answered from the stored reply with ``duplicate: true`` and changes
   nothing; a message_id reused for another kind is refused (409).

Heartbeats are fenced but not stored: they change nothing but a timestamp, so answering a
resend afresh is the same answer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

from contract.audit.canonical import JsonValue
from contract.audit.events import Actor, ActorKind, AuditEvent
from contract.messages import (
    AlertKind,
    ClusterEvent,
    ClusterMessage,
    ConsumptionReply,
    ConsumptionReport,
    DedupedReply,
    EventReply,
    HealthReply,
    HealthReport,
    Heartbeat,
    HeartbeatReply,
    LicenseCheck,
    LicenseReply,
    Quotas,
)
from mission_control.db.engine import insert_or_ignore
from mission_control.db.schema import backup_outcomes, consumption, licenses, restore_drills
from mission_control.service.accounts import audit_log
from mission_control.service.context import ServiceContext
from mission_control.service.exchange.alert_store import apply_alert_changes, detail_of
from mission_control.service.exchange.ingest import BatchRead, Delivery, Scope, deliver
from mission_control.service.fleet.history import health_sample_insert, health_sample_row
from mission_control.service.fleet.node_health import sites_to_stored, to_stored
from mission_control.service.refusals import InvalidInput
from mission_control.service.rules.alerts import event_alerts, health_alerts, license_alerts
from mission_control.service.rules.datacenters import datacenter_alerts
from mission_control.service.rules.licensing import License, LicenseEvaluation, evaluate_license
from mission_control.service.rules.sizing import assess
from mission_control.service.support.queue import HeartbeatItems, open_heartbeat_items

ReplyT = TypeVar("ReplyT", bound=DedupedReply)
Effect = Callable[[Scope], Awaitable[ReplyT]]


async def accept(
    ctx: ServiceContext,
    cluster_id: str,
    kind: str,
    message: ClusterMessage,
    reply_type: type[ReplyT],
    row_values: Mapping[str, Any],
    effect: Effect[ReplyT],
    *,
    stored: bool = True,
    reads: tuple[BatchRead[Any], ...] = (),
    received_at: datetime | None = None,
) -> ReplyT:
    """Fence, apply `effect`, write `row_values` to the cluster's row and store the reply, in
    one transaction; a message stored before is answered from its stored reply instead, with
    nothing applied. Unstored kinds (`stored=False`) are fenced and applied only. `reads` are
    done once per batch for all its messages; `effect` gets its cluster's entry from
    `Scope.read` (per-message queries through `Scope.conn` would cost a round trip each),
    as of `received_at` (default: now by `ctx.clock`)."""
    reply = await deliver(
        Delivery(
            engine=ctx.engine,
            cluster_id=cluster_id,
            kind=kind,
            message_id=str(message.message_id) if stored else None,
            epoch=message.epoch,
            reply_type=reply_type,
            row_values=row_values,
            effect=effect,
            received_at=ctx.clock() if received_at is None else received_at,
            reads=reads,
        )
    )
    if not isinstance(reply, reply_type):  # pragma: no cover - a stored reply of another type
        raise TypeError(f"expected {reply_type.__name__}, got {type(reply).__name__}")
    return reply


async def health(ctx: ServiceContext, cluster_id: str, report: HealthReport) -> HealthReply:
    """Record a health check: status, sizing advice, undersized alert; clears `silent`."""
    now = ctx.clock()
    assessment = assess(report.nodes, ctx.sizing, ctx.alerts)
    reply = HealthReply(
        status=assessment.status, reasons=assessment.reasons, advice=assessment.advice
    )
    row: dict[str, Any] = {
        "last_health_at": now,
        "health_status": assessment.status.value,
        "last_health": to_stored(report.nodes),
        "last_datacenters": sites_to_stored(report.datacenters, report.quorum_rule),
    }
    if report.health_interval_s is not None:  # the cluster's own pace, for the silence alert
        row["health_interval_s"] = report.health_interval_s

    sample = health_sample_row(cluster_id, now, report.nodes)

    async def effect(scope: Scope) -> HealthReply:
        opened = scope.open_alerts
        changes = {
            **health_alerts(assessment),
            **datacenter_alerts(
                report.datacenters,
                detail_of(opened.get(AlertKind.DATACENTER_LOST)),
                detail_of(opened.get(AlertKind.DATACENTER_BACK)),
            ),
        }
        await apply_alert_changes(scope.conn, cluster_id, changes, now, opened)
        scope.later(health_sample_insert(scope.conn.dialect.name), sample)
        return reply

    return await accept(ctx, cluster_id, "health", report, HealthReply, row, effect)


async def load_license(conn: AsyncConnection, cluster_id: str) -> License | None:
    row = (
        await conn.execute(
            select(licenses.c.host_units, licenses.c.expires).where(
                licenses.c.cluster_id == cluster_id
            )
        )
    ).first()
    return None if row is None else License(host_units=row.host_units, expires=row.expires)


def license_reply(evaluation: LicenseEvaluation) -> LicenseReply:
    lic = evaluation.license
    return LicenseReply(
        state=evaluation.state,
        expires=lic.expires if lic else None,
        days_left=evaluation.days_left,
        quotas=Quotas(host_units=lic.host_units if lic else 0.0),
    )


async def license_check(ctx: ServiceContext, cluster_id: str, check: LicenseCheck) -> LicenseReply:
    """Evaluate the cluster's license against the host units it reports; license alerts."""
    now = ctx.clock()

    async def effect(scope: Scope) -> LicenseReply:
        evaluation = evaluate_license(
            await load_license(scope.conn, cluster_id),
            check.host_units_in_use,
            now.date(),
            ctx.alerts.license_expiring_days,
        )
        changes = license_alerts(evaluation)
        await apply_alert_changes(scope.conn, cluster_id, changes, now, scope.open_alerts)
        return license_reply(evaluation)

    row = {"host_units_in_use": check.host_units_in_use}
    return await accept(ctx, cluster_id, "license", check, LicenseReply, row, effect)


async def record_consumption(
    ctx: ServiceContext, cluster_id: str, report: ConsumptionReport
) -> ConsumptionReply:
    """Store one (environment, hour); a period already stored is kept as first reported."""
    now = ctx.clock()

    async def effect(scope: Scope) -> ConsumptionReply:
        conn = scope.conn
        values = {
            "cluster_id": cluster_id,
            "environment": report.environment,
            "period_start": report.period_start,
            "host_units": report.host_units,
            "host_unit_hours": report.host_unit_hours,
            "message_id": str(report.message_id),
            "received_at": now,
        }
        result = await conn.execute(
            insert_or_ignore(
                conn.dialect.name, consumption, ("cluster_id", "environment", "period_start")
            ),
            values,
        )
        recorded = result.rowcount == 1
        return ConsumptionReply(recorded=recorded, duplicate=not recorded)

    return await accept(ctx, cluster_id, "consumption", report, ConsumptionReply, {}, effect)


async def heartbeat(ctx: ServiceContext, cluster_id: str, beat: Heartbeat) -> HeartbeatReply:
    """Fence and timestamp; reply with the cluster's open support requests and commands as of
    the heartbeat's time (read once per batch: `open_heartbeat_items`)."""
    now = ctx.clock()

    async def effect(scope: Scope) -> HeartbeatReply:
        nothing: HeartbeatItems = ([], [])
        requests, commands = scope.read(open_heartbeat_items, nothing)
        return HeartbeatReply(support_requests=requests, commands=commands)

    row = {"last_heartbeat_at": now}
    return await accept(
        ctx,
        cluster_id,
        "heartbeat",
        beat,
        HeartbeatReply,
        row,
        effect,
        stored=False,
        reads=(open_heartbeat_items,),
        received_at=now,
    )


#: Who a cluster's own event names in the audit log: its leader, which sent it.
CLUSTER_ACTOR = Actor("cluster leader", ActorKind.SYSTEM, via="cluster")

# The cluster's backup events read "backup <id>: <reason or status>" (cluster/backups/store.py).
_BACKUP_ID = re.compile(r"^backup (\S{1,64}):")
_OUTCOMES = {"backup_succeeded": "succeeded", "backup_failed": "failed"}


def backup_outcome(cluster_id: str, kind: str, detail: str, at: datetime) -> dict[str, Any]:
    """The `backup_outcomes` row a backup event leaves: the newest success or failure."""
    named = _BACKUP_ID.match(detail)
    return {
        "cluster_id": cluster_id,
        "outcome": _OUTCOMES[kind],
        "at": at,
        "backup_id": named.group(1) if named else None,
        "detail": detail,
    }


@functools.lru_cache(maxsize=4)
def backup_outcome_upsert(dialect_name: str) -> Insert:
    """INSERT .. ON CONFLICT (cluster, outcome) DO UPDATE: each event replaces the last one of
    its outcome (the outbox delivers a cluster's events in order)."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    statement = insert(backup_outcomes)
    return statement.on_conflict_do_update(
        index_elements=["cluster_id", "outcome"],
        set_={
            "at": statement.excluded.at,
            "backup_id": statement.excluded.backup_id,
            "detail": statement.excluded.detail,
        },
    )


_DRILL_KINDS = frozenset({"drill_succeeded", "drill_failed"})
_DRILL_KEY = ("cluster_id", "drill_id")


def drill_row(cluster_id: str, event: ClusterEvent, at: datetime) -> dict[str, Any]:
    """The `restore_drills` row a drill event leaves (its `DrillReport`, as received)."""
    report = event.drill
    assert report is not None
    return {
        "cluster_id": cluster_id,
        "drill_id": report.drill_id,
        "at": at,
        "ok": report.ok,
        "backup_id": report.backup_id,
        "rto_seconds": report.rto_seconds,
        "rpo_seconds": report.rpo_seconds,
        "bytes": report.bytes,
        "files": report.files,
        "decrypted": report.decrypted,
        "detail": event.detail,
    }


async def record_event(ctx: ServiceContext, cluster_id: str, event: ClusterEvent) -> EventReply:
    """An event from the cluster: backup_failed raises its alert, backup_succeeded clears it;
    either is kept as the cluster's last backup success or failure (`backup_outcomes`).
    drill_failed and drill_succeeded do the same for the drill_failed alert and are kept, each
    drill once, in `restore_drills` (the console's drill history).
    setting_changed (which must name its `setting`) raises the cluster's setting_changed alert,
    or updates the open one with this change, and is recorded in the audit log.
    release_refused raises its alert and is kept as the cluster's `release_refused_at`."""
    if (event.kind == "setting_changed") != (event.setting is not None):
        raise InvalidInput("setting names the changed setting, with kind setting_changed only")
    if (event.kind in _DRILL_KINDS) != (event.drill is not None):
        raise InvalidInput("drill carries the drill's outcome, with drill_* kinds only")
    if event.drill is not None and event.drill.ok != (event.kind == "drill_succeeded"):
        raise InvalidInput("drill.ok must agree with the event's kind")
    now = ctx.clock()
    outcome = (
        backup_outcome(cluster_id, event.kind, event.detail, now)
        if event.kind in _OUTCOMES
        else None
    )

    async def effect(scope: Scope) -> EventReply:
        changes = event_alerts(event.kind, event.detail, event.setting)
        await apply_alert_changes(scope.conn, cluster_id, changes, now, scope.open_alerts)
        if outcome is not None:
            scope.later(backup_outcome_upsert(scope.conn.dialect.name), outcome)
        if event.drill is not None:
            insert = insert_or_ignore(scope.conn.dialect.name, restore_drills, _DRILL_KEY)
            scope.later(insert, drill_row(cluster_id, event, now))
        if event.setting is not None:
            detail: dict[str, JsonValue] = {"setting": event.setting, "detail": event.detail}
            audited = AuditEvent(
                now, CLUSTER_ACTOR, "cluster.setting_changed", cluster_id, event.setting, detail
            )
            await audit_log.record(scope.conn, ctx, [audited])
        return EventReply(recorded=True)

    # When the cluster last refused or rolled back a release: a fleet rollout's failure signal
    # (the alert cannot be: a refusal while one is open only changes its detail).
    row = {"release_refused_at": now} if event.kind == "release_refused" else {}
    return await accept(ctx, cluster_id, "event", event, EventReply, row, effect)
