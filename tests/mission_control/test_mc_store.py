"""The service layer on the real databases (SQLite and PostgreSQL): enrollment, fencing,
dedupe, consumption idempotency, alerts and the sweep, including concurrent races."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from mc_kit import FakeClock
from mc_messages import consumption, event, health, heartbeat, license_check
from mcs_staff import staff_token
from sqlalchemy import func, select

from contract.credentials import CredentialKind, kind_of
from contract.messages import AlertKind, ClusterEvent, HealthStatus, LicenseState, cluster_id_of
from mission_control.db.schema import consumption as consumption_table
from mission_control.db.schema import messages, restore_drills
from mission_control.errors import (
    AlreadyExists,
    InvalidCredential,
    MessageIdReused,
    NotFound,
    StaleEpoch,
)
from mission_control.service.accounts import audit_log, staff
from mission_control.service.context import ServiceContext
from mission_control.service.exchange import alert_store, cluster_messages, monitor
from mission_control.service.fleet import admin, enrollment
from mission_control.service.refusals import InvalidInput


async def enrolled(ctx: ServiceContext, name: str = "acme") -> str:
    created = await enrollment.create_cluster(ctx, name, "EU")
    reply = await enrollment.enroll(ctx, created.enrollment_token)
    return await enrollment.authenticate_cluster(ctx, reply.credential)


async def count(ctx: ServiceContext, table: object) -> int:
    async with ctx.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


async def open_kinds(ctx: ServiceContext) -> set[AlertKind]:
    return {a.kind for a in await alert_store.list_alerts(ctx)}


async def test_enrollment_token_works_once(ctx: ServiceContext) -> None:
    created = await enrollment.create_cluster(ctx, "acme", "EU")
    reply = await enrollment.enroll(ctx, created.enrollment_token)
    assert reply.cluster_id == created.id and reply.geography == "EU"
    assert cluster_id_of(reply.credential) == created.id
    assert kind_of(reply.credential) is CredentialKind.CLUSTER
    with pytest.raises(InvalidCredential):
        await enrollment.enroll(ctx, created.enrollment_token)
    assert await enrollment.authenticate_cluster(ctx, reply.credential) == created.id
    with pytest.raises(InvalidCredential):
        await enrollment.authenticate_cluster(ctx, reply.credential + "x")
    with pytest.raises(AlreadyExists):
        await enrollment.create_cluster(ctx, "acme", "US")


async def test_concurrent_enrollments_with_one_token_give_one_credential(
    ctx: ServiceContext,
) -> None:
    created = await enrollment.create_cluster(ctx, "acme", "EU")
    results = await asyncio.gather(
        *(enrollment.enroll(ctx, created.enrollment_token) for _ in range(5)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, InvalidCredential) for r in results if r not in winners)


async def test_enrollment_token_expires(ctx: ServiceContext, clock: FakeClock) -> None:
    created = await enrollment.create_cluster(ctx, "acme", "EU")
    clock.advance(days=8)
    with pytest.raises(InvalidCredential):
        await enrollment.enroll(ctx, created.enrollment_token)


async def test_stale_epoch_is_fenced_and_stores_nothing(ctx: ServiceContext) -> None:
    cluster = await enrolled(ctx)
    await cluster_messages.health(ctx, cluster, health(epoch=5))
    stored = await count(ctx, messages)
    with pytest.raises(StaleEpoch) as caught:
        await cluster_messages.health(ctx, cluster, health(epoch=4))
    assert (caught.value.epoch, caught.value.newest) == (4, 5)
    with pytest.raises(StaleEpoch):
        await cluster_messages.heartbeat(ctx, cluster, heartbeat(epoch=3))
    with pytest.raises(StaleEpoch):
        await cluster_messages.record_consumption(ctx, cluster, consumption(epoch=4))
    assert await count(ctx, messages) == stored
    assert await count(ctx, consumption_table) == 0
    await cluster_messages.health(ctx, cluster, health(epoch=5))  # same epoch is fine
    await cluster_messages.heartbeat(ctx, cluster, heartbeat(epoch=6))  # a newer leader


async def test_resend_answers_the_same_and_stores_once(ctx: ServiceContext) -> None:
    cluster = await enrolled(ctx)
    report = health(epoch=1, nodes=1)
    first = await cluster_messages.health(ctx, cluster, report)
    await cluster_messages.health(ctx, cluster, health(epoch=2))  # a newer leader speaks
    again = await cluster_messages.health(ctx, cluster, report)  # resend of an accepted message
    assert again.duplicate and not first.duplicate
    assert again.model_copy(update={"duplicate": False}) == first
    assert await count(ctx, messages) == 2
    reused = license_check(epoch=2).model_copy(update={"message_id": report.message_id})
    with pytest.raises(MessageIdReused):
        await cluster_messages.license_check(ctx, cluster, reused)


async def test_concurrent_resends_store_once(ctx: ServiceContext) -> None:
    cluster = await enrolled(ctx)
    report = consumption(epoch=1)
    replies = await asyncio.gather(
        *(cluster_messages.record_consumption(ctx, cluster, report) for _ in range(8))
    )
    assert sum(not r.duplicate for r in replies) == 1
    assert all(r.recorded for r in replies)  # duplicates answer as the first time
    assert await count(ctx, messages) == 1
    assert await count(ctx, consumption_table) == 1


async def test_concurrent_leaders_never_lower_the_epoch(ctx: ServiceContext) -> None:
    cluster = await enrolled(ctx)
    results = await asyncio.gather(
        *(cluster_messages.heartbeat(ctx, cluster, heartbeat(epoch=e)) for e in range(1, 11)),
        return_exceptions=True,
    )
    assert all(
        r is None or not isinstance(r, BaseException) or isinstance(r, StaleEpoch) for r in results
    )
    (summary,) = await admin.list_clusters(ctx)
    assert summary.last_epoch == 10


async def test_consumption_is_idempotent_per_period(ctx: ServiceContext) -> None:
    cluster = await enrolled(ctx)
    first = await cluster_messages.record_consumption(ctx, cluster, consumption(hour=5, units=4))
    # Same period under a new message_id (regenerated after a restart): first figures kept.
    again = await cluster_messages.record_consumption(ctx, cluster, consumption(hour=5, units=9))
    other_env = await cluster_messages.record_consumption(
        ctx, cluster, consumption(environment="dev")
    )
    next_hour = await cluster_messages.record_consumption(ctx, cluster, consumption(hour=6))
    assert first.recorded and not again.recorded and again.duplicate
    assert other_env.recorded and next_hour.recorded
    async with ctx.engine.connect() as conn:
        total = await conn.scalar(select(func.sum(consumption_table.c.host_unit_hours)))
    assert total == 12


async def test_health_raises_and_clears_undersized(ctx: ServiceContext) -> None:
    cluster = await enrolled(ctx)
    reply = await cluster_messages.health(ctx, cluster, health(nodes=1))
    assert reply.status is HealthStatus.UNDERSIZED
    assert reply.advice.min_nodes == 3
    assert AlertKind.CLUSTER_UNDERSIZED in await open_kinds(ctx)
    reply = await cluster_messages.health(ctx, cluster, health(nodes=3))
    assert reply.status is HealthStatus.HEALTHY
    assert AlertKind.CLUSTER_UNDERSIZED not in await open_kinds(ctx)
    history = await alert_store.list_alerts(ctx, active_only=False)
    assert [a.kind for a in history] == [AlertKind.CLUSTER_UNDERSIZED]
    assert history[0].cleared_at is not None


async def test_license_check_and_alerts(ctx: ServiceContext, clock: FakeClock) -> None:
    cluster = await enrolled(ctx)
    reply = await cluster_messages.license_check(ctx, cluster, license_check(in_use=5))
    assert reply.state is LicenseState.EXPIRED and reply.quotas.host_units == 0
    await admin.set_license(ctx, "acme", 10, clock.now.date() + timedelta(days=365))
    assert await open_kinds(ctx) == set()  # setting the license cleared "expired"
    reply = await cluster_messages.license_check(ctx, cluster, license_check(in_use=12))
    assert reply.state is LicenseState.OVERAGE
    assert reply.quotas.host_units == 10 and reply.days_left == 366
    assert await open_kinds(ctx) == {AlertKind.LICENSE_OVERAGE}
    reply = await cluster_messages.license_check(ctx, cluster, license_check(in_use=8))
    assert reply.state is LicenseState.VALID
    assert await open_kinds(ctx) == set()
    with pytest.raises(NotFound):
        await admin.set_license(ctx, "nobody", 1, date(2031, 1, 1))


async def test_sweep_raises_silence_and_license_expiry(
    ctx: ServiceContext, clock: FakeClock
) -> None:
    cluster = await enrolled(ctx)
    await admin.set_license(ctx, "acme", 10, clock.now.date() + timedelta(days=40))
    await cluster_messages.health(ctx, cluster, health())
    clock.advance(minutes=5)
    report = await monitor.sweep(ctx)
    assert report.silent == ()
    clock.advance(minutes=2)  # 7 minutes > 3 intervals of 2 minutes
    report = await monitor.sweep(ctx)
    assert report.silent == (cluster,)
    assert await open_kinds(ctx) == {AlertKind.CLUSTER_SILENT}
    await monitor.sweep(ctx)  # idempotent
    assert len(await alert_store.list_alerts(ctx)) == 1
    await cluster_messages.health(ctx, cluster, health())
    assert await open_kinds(ctx) == set()
    clock.advance(days=11)  # 29 days left: expiring (and silent again)
    await monitor.sweep(ctx)
    assert await open_kinds(ctx) == {AlertKind.CLUSTER_SILENT, AlertKind.LICENSE_EXPIRING}


async def test_silence_waits_for_the_clusters_own_health_interval(
    ctx: ServiceContext, clock: FakeClock
) -> None:
    slow = await enrolled(ctx, "slow")  # reports every 10 minutes
    usual = await enrolled(ctx, "usual")  # says nothing: the server's 2 minutes apply
    await cluster_messages.health(ctx, slow, health(health_interval_s=600))
    await cluster_messages.health(ctx, usual, health())
    clock.advance(minutes=7)  # over 3 x 2 min, under 3 x 10 min
    assert (await monitor.sweep(ctx)).silent == (usual,)
    clock.advance(minutes=24)  # 31 minutes: over 3 x 10 min
    assert set((await monitor.sweep(ctx)).silent) == {slow, usual}
    found = await alert_store.list_alerts(ctx, cluster="slow")
    (silent,) = [a for a in found if a.kind == AlertKind.CLUSTER_SILENT]
    assert "expected every 600 s" in silent.detail


async def test_cli_changes_are_audited(ctx: ServiceContext) -> None:
    by = audit_log.cli_actor("ops")
    created = await enrollment.create_cluster(ctx, "acme", "EU", by=by)
    await admin.set_license(ctx, "acme", 12, date(2031, 1, 1), by=by)
    entries = await audit_log.list_entries(ctx, cluster=created.id)
    assert [(e.action, e.actor.name, e.actor.via) for e in reversed(entries)] == [
        ("cluster.created", "ops", "mission-control cli"),
        ("license.set", "ops", "mission-control cli"),
    ]
    assert (await audit_log.verify(ctx)).problem is None


async def test_the_largest_accepted_report_is_stored(ctx: ServiceContext) -> None:
    cluster = await enrolled(ctx)
    biggest = 2**53 - 1
    report = health(nodes=1000)
    nodes = [
        n.model_copy(
            update={
                "memory_total_bytes": biggest,
                "memory_used_bytes": biggest,
                "disk_total_bytes": biggest,
                "disk_used_bytes": biggest,
            }
        )
        for n in report.nodes
    ]
    reply = await cluster_messages.health(ctx, cluster, report.model_copy(update={"nodes": nodes}))
    assert reply.advice.min_memory_bytes > 1000 * biggest


async def test_sweep_forgets_old_replies(ctx: ServiceContext, clock: FakeClock) -> None:
    cluster = await enrolled(ctx)
    await cluster_messages.health(ctx, cluster, health())
    clock.advance(days=31)
    assert (await monitor.sweep(ctx)).replies_forgotten == 1
    assert await count(ctx, messages) == 0


async def test_backup_events_raise_and_clear(ctx: ServiceContext) -> None:
    cluster = await enrolled(ctx)
    await cluster_messages.record_event(ctx, cluster, event(kind="backup_failed", detail="S3 403"))
    (alert,) = await alert_store.list_alerts(ctx)
    assert (alert.kind, alert.detail, alert.severity) == (
        AlertKind.BACKUP_FAILED,
        "S3 403",
        "critical",
    )
    await cluster_messages.record_event(ctx, cluster, event(kind="backup_succeeded", detail=""))
    assert await alert_store.list_alerts(ctx) == []


async def test_alerts_filter_by_cluster(ctx: ServiceContext) -> None:
    a = await enrolled(ctx, "alpha")
    b = await enrolled(ctx, "beta")
    await cluster_messages.record_event(ctx, a, event())
    await cluster_messages.record_event(ctx, b, event())
    assert [x.cluster_name for x in await alert_store.list_alerts(ctx, cluster="beta")] == ["beta"]
    assert [x.cluster_id for x in await alert_store.list_alerts(ctx, cluster=a)] == [a]


async def test_staff_tokens(ctx: ServiceContext) -> None:
    token = await staff_token(ctx, "alice", "support-l2")
    who = await staff.authenticate_staff(ctx, token)
    assert (who.user, who.role) == ("alice", "support-l2")
    for bad in ("", token + "x", "mcc.x.y"):
        with pytest.raises(InvalidCredential):
            await staff.authenticate_staff(ctx, bad)


async def test_drill_events_raise_clear_and_keep_each_drill_once(ctx: ServiceContext) -> None:
    cluster = await enrolled(ctx)

    def drill_event(kind: str, drill_id: str, ok: bool) -> ClusterEvent:
        report = {"drill_id": drill_id, "backup_id": "b1", "ok": ok, "rto_seconds": 3.5}
        fields = {"kind": kind, "detail": f"drill {drill_id}: part n1", "drill": report}
        return ClusterEvent.model_validate({**event().model_dump(mode="json"), **fields})

    failed = drill_event("drill_failed", "drill-1", False)
    await cluster_messages.record_event(ctx, cluster, failed)
    (alert,) = await alert_store.list_alerts(ctx)
    assert (alert.kind, alert.severity) == (AlertKind.DRILL_FAILED, "critical")
    assert "part n1" in alert.detail
    await cluster_messages.record_event(
        ctx, cluster, drill_event("drill_succeeded", "drill-2", True)
    )
    assert await alert_store.list_alerts(ctx) == []
    assert await count(ctx, restore_drills) == 2
    for wrong in (
        event(kind="drill_failed"),  # without its report
        drill_event("drill_succeeded", "drill-3", False),  # ok disagrees with the kind
        ClusterEvent.model_validate(  # a report on a backup event
            {**failed.model_dump(mode="json"), "kind": "backup_failed"}
        ),
    ):
        with pytest.raises(InvalidInput):
            await cluster_messages.record_event(ctx, cluster, wrong)
    assert await count(ctx, restore_drills) == 2
