"""Batched ingest (group commit) on the real databases: every message keeps exactly the outcome
it would have had alone - fencing, dedupe, consumption idempotency, alerts - under concurrency,
also with two servers (two engines) writing to one database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime

import pytest
from mc_kit import FakeClock
from mc_messages import consumption, health, heartbeat, license_check
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contract.messages import (
    AlertKind,
    HealthReply,
    HealthStatus,
    HeartbeatReply,
    SizingAdvice,
)
from mission_control.db.engine import create_engine
from mission_control.db.schema import clusters, messages
from mission_control.db.schema import consumption as consumption_table
from mission_control.errors import MessageIdReused, NotFound, StaleEpoch
from mission_control.service.context import ServiceContext
from mission_control.service.exchange import alert_store, cluster_messages, ingest
from mission_control.service.exchange.batcher import Outcome
from mission_control.service.exchange.ingest import Delivery, Scope
from mission_control.service.fleet import enrollment


async def enroll_many(ctx: ServiceContext, count: int) -> list[str]:
    ids = []
    for i in range(count):
        created = await enrollment.create_cluster(ctx, f"c{i}-{uuid.uuid4().hex[:6]}", "EU")
        reply = await enrollment.enroll(ctx, created.enrollment_token)
        ids.append(reply.cluster_id)
    return ids


async def count(ctx: ServiceContext, table: object) -> int:
    async with ctx.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


async def epochs(ctx: ServiceContext) -> dict[str, int]:
    async with ctx.engine.connect() as conn:
        rows = await conn.execute(select(clusters.c.id, clusters.c.last_epoch))
        return {r.id: int(r.last_epoch) for r in rows}


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the size of every batch written (the real flush still does the work)."""
    sizes: list[int] = []
    real = ingest.flush

    async def recording(deliveries: Sequence[Delivery]) -> list[Outcome[object]]:
        sizes.append(len(deliveries))
        return await real(deliveries)  # type: ignore[return-value]

    monkeypatch.setattr(ingest, "flush", recording)
    return sizes


async def test_one_batch_gives_each_message_its_own_outcome(
    ctx: ServiceContext, batch_sizes: list[int]
) -> None:
    a, b, d, e, f, g = await enroll_many(ctx, 6)
    await cluster_messages.health(ctx, a, health(epoch=5))
    stored = health(epoch=1, nodes=3)
    first = await cluster_messages.health(ctx, b, stored)
    used = health(epoch=1)
    await cluster_messages.health(ctx, d, used)
    reused = license_check(epoch=1).model_copy(update={"message_id": used.message_id})
    before = await count(ctx, messages)

    priming = asyncio.create_task(cluster_messages.heartbeat(ctx, g, heartbeat(epoch=1)))
    await asyncio.sleep(0)  # the next six wait for it and go in one batch
    results = await asyncio.gather(
        cluster_messages.health(ctx, a, health(epoch=4)),
        cluster_messages.health(ctx, b, stored),
        cluster_messages.health(ctx, str(uuid.uuid4()), health(epoch=1)),
        cluster_messages.license_check(ctx, d, reused),
        cluster_messages.health(ctx, e, health(epoch=2, nodes=1)),
        cluster_messages.heartbeat(ctx, f, heartbeat(epoch=3)),
        return_exceptions=True,
    )
    await priming
    assert max(batch_sizes) >= 6  # the six share one batch (with the priming one, when it lingers)

    stale, again, unknown, reuse, undersized, beat = results
    assert isinstance(stale, StaleEpoch) and "older than epoch 5" in str(stale)
    assert isinstance(again, HealthReply) and again.duplicate
    assert again.model_copy(update={"duplicate": False}) == first
    assert isinstance(unknown, NotFound)
    assert isinstance(reuse, MessageIdReused)
    assert isinstance(undersized, HealthReply) and undersized.status is HealthStatus.UNDERSIZED
    assert not isinstance(beat, BaseException)

    assert await count(ctx, messages) == before + 1  # only e's health check is new
    newest = await epochs(ctx)
    assert (newest[a], newest[b], newest[d], newest[e], newest[f]) == (5, 1, 1, 2, 3)
    open_alerts = await alert_store.list_alerts(ctx)
    assert [(x.cluster_id, x.kind) for x in open_alerts] == [(e, AlertKind.CLUSTER_UNDERSIZED)]


async def test_concurrent_clusters_stay_exact(ctx: ServiceContext, batch_sizes: list[int]) -> None:
    ids = await enroll_many(ctx, 20)
    reports = {c: [health(epoch=5) for _ in range(3)] for c in ids}
    calls = []
    for c in ids:
        for report in reports[c]:
            calls += [
                cluster_messages.health(ctx, c, report),
                cluster_messages.health(ctx, c, report),
            ]
        calls += [cluster_messages.heartbeat(ctx, c, heartbeat(epoch=e)) for e in range(1, 6)]
    results = await asyncio.gather(*calls, return_exceptions=True)

    assert max(batch_sizes) > 1
    assert all(not isinstance(r, BaseException) or isinstance(r, StaleEpoch) for r in results)
    replies = [r for r in results if isinstance(r, HealthReply)]
    assert len(replies) == 20 * 3 * 2  # health checks at the newest epoch are never stale
    assert sum(not r.duplicate for r in replies) == 20 * 3  # one first delivery per message
    assert await count(ctx, messages) == 20 * 3
    assert set((await epochs(ctx)).values()) == {5}


@pytest.fixture
async def other(migrated_url: str, clock: FakeClock) -> AsyncIterator[ServiceContext]:
    """A second server on the same database: its own engine, pool and batcher."""
    engine = create_engine(migrated_url)
    try:
        yield ServiceContext(engine=engine, clock=clock)
    finally:
        await engine.dispose()


async def test_two_servers_store_each_message_once(
    ctx: ServiceContext, other: ServiceContext
) -> None:
    ids = await enroll_many(ctx, 10)
    reports = [consumption(epoch=1, hour=h) for h in (5, 6) for _ in ids]
    owners = [c for _ in (5, 6) for c in ids]
    results = await asyncio.gather(
        *(
            cluster_messages.record_consumption(server, c, r)
            for server in (ctx, other)
            for c, r in zip(owners, reports, strict=True)
        )
    )
    assert all(r.recorded for r in results)  # a resend answers as the first time
    assert sum(not r.duplicate for r in results) == 20
    assert await count(ctx, messages) == 20
    assert await count(ctx, consumption_table) == 20


async def test_two_servers_never_lower_an_epoch(ctx: ServiceContext, other: ServiceContext) -> None:
    ids = await enroll_many(ctx, 5)
    results = await asyncio.gather(
        *(
            cluster_messages.heartbeat(server, c, heartbeat(epoch=e))
            for e in range(1, 11)
            for c in ids
            for server in (ctx, other)
        ),
        return_exceptions=True,
    )
    for result in results:
        assert not isinstance(result, BaseException) or isinstance(result, StaleEpoch)
    assert set((await epochs(ctx)).values()) == {10}


async def test_a_failing_effect_fails_only_its_own_message(ctx: ServiceContext) -> None:
    ids = await enroll_many(ctx, 6)
    bad = ids[2]

    async def effect(scope: Scope) -> HealthReply:
        if scope.cluster_id == bad:
            raise RuntimeError("effect failed")
        return HealthReply(status=HealthStatus.HEALTHY, reasons=[], advice=ok.advice)

    ok = await cluster_messages.health(ctx, ids[0], health(epoch=1))
    row = {"health_status": "healthy"}
    results = await asyncio.gather(
        *(
            cluster_messages.accept(ctx, c, "health", health(epoch=2), HealthReply, row, effect)
            for c in ids
        ),
        return_exceptions=True,
    )
    assert [isinstance(r, RuntimeError) for r in results] == [c == bad for c in ids]
    newest = await epochs(ctx)
    assert newest[bad] == 0 and all(newest[c] == 2 for c in ids if c != bad)
    assert await count(ctx, messages) == 1 + 5


async def test_alerts_raise_and_clear_for_many_clusters_at_once(ctx: ServiceContext) -> None:
    ids = await enroll_many(ctx, 15)
    await asyncio.gather(*(cluster_messages.health(ctx, c, health(nodes=1)) for c in ids))
    open_alerts = await alert_store.list_alerts(ctx)
    assert sorted(a.cluster_id for a in open_alerts) == sorted(ids)
    await asyncio.gather(*(cluster_messages.health(ctx, c, health(nodes=3)) for c in ids))
    assert await alert_store.list_alerts(ctx) == []
    assert len(await alert_store.list_alerts(ctx, active_only=False)) == 15


async def test_a_reply_stored_meanwhile_turns_the_message_into_a_duplicate(
    ctx: ServiceContext, migrated_url: str
) -> None:
    """A writer that bypasses the cluster lock stores the same message during the batch: the
    batch's INSERT conflicts, the batch is rolled back and run again, and the message is
    answered from the stored reply with nothing applied twice (PostgreSQL: SQLite's writers
    are serialised by BEGIN IMMEDIATE, so this interleaving cannot happen there)."""
    if not migrated_url.startswith("postgresql"):
        pytest.skip("needs concurrent writers")
    (c,) = await enroll_many(ctx, 1)
    report = health(epoch=1)
    advice = SizingAdvice(min_nodes=3, min_cpu_cores=12, min_memory_bytes=48 * 1024**3)
    reply = HealthReply(status=HealthStatus.HEALTHY, reasons=["stored meanwhile"], advice=advice)
    sneaky = create_engine(migrated_url)
    runs = 0

    async def effect(scope: Scope) -> HealthReply:
        nonlocal runs
        runs += 1
        if runs == 1:
            async with sneaky.begin() as conn:
                await conn.execute(
                    messages.insert(),
                    {
                        "cluster_id": c,
                        "message_id": str(report.message_id),
                        "kind": "health",
                        "epoch": 1,
                        "reply": reply.model_dump_json(),
                        "received_at": ctx.clock(),
                    },
                )
        return reply.model_copy(update={"reasons": []})

    try:
        got = await cluster_messages.accept(ctx, c, "health", report, HealthReply, {}, effect)
    finally:
        await sneaky.dispose()
    assert runs == 1  # the retry found the stored reply before running the effect again
    assert got.duplicate and got.reasons == ["stored meanwhile"]
    assert await count(ctx, messages) == 1


read_calls: list[list[str]] = []


async def last_health_status(
    conn: AsyncConnection, clusters_at: Mapping[str, datetime]
) -> dict[str, str]:
    """A batch read: each cluster's stored health status (recording who asked)."""
    cluster_ids = sorted(clusters_at)
    read_calls.append(cluster_ids)
    query = select(clusters.c.id, clusters.c.health_status).where(clusters.c.id.in_(cluster_ids))
    return {r.id: r.health_status for r in await conn.execute(query) if r.health_status}


_NOTE = update(clusters).where(clusters.c.id == bindparam("b_cluster"))


async def test_batch_reads_run_once_per_batch_and_later_writes_apply(
    ctx: ServiceContext, batch_sizes: list[int]
) -> None:
    ids = await enroll_many(ctx, 8)
    await asyncio.gather(*(cluster_messages.health(ctx, c, health(nodes=1)) for c in ids[:4]))
    read_calls.clear()

    async def effect(scope: Scope) -> HeartbeatReply:
        seen = scope.read(last_health_status, "none")
        scope.later(_NOTE, {"b_cluster": scope.cluster_id, "health_status": f"saw {seen}"})
        return HeartbeatReply()

    priming = asyncio.create_task(cluster_messages.heartbeat(ctx, ids[0], heartbeat()))
    await asyncio.sleep(0)
    await asyncio.gather(
        *(
            cluster_messages.accept(
                ctx,
                c,
                "heartbeat",
                heartbeat(),
                HeartbeatReply,
                {},
                effect,
                stored=False,
                reads=(last_health_status,),
            )
            for c in ids[1:]
        )
    )
    await priming
    assert 7 in batch_sizes and read_calls == [sorted(ids[1:])]  # one read for the batch of 7
    async with ctx.engine.connect() as conn:
        rows = await conn.execute(select(clusters.c.id, clusters.c.health_status))
        notes = {r.id: r.health_status for r in rows}
    assert [notes[c] for c in ids[1:]] == ["saw undersized"] * 3 + ["saw none"] * 4


async def test_heartbeats_are_fenced_in_one_batch(ctx: ServiceContext) -> None:
    """Heartbeats (fenced, never stored): in one batch an accepted, a stale and an unknown
    cluster's heartbeat each get their own outcome."""
    a, b = await enroll_many(ctx, 2)
    await cluster_messages.heartbeat(ctx, b, heartbeat(epoch=4))
    results = await asyncio.gather(
        cluster_messages.heartbeat(ctx, a, heartbeat(epoch=2)),
        cluster_messages.heartbeat(ctx, b, heartbeat(epoch=3)),
        cluster_messages.heartbeat(ctx, str(uuid.uuid4()), heartbeat(epoch=1)),
        return_exceptions=True,
    )
    accepted, stale, unknown = results
    assert isinstance(accepted, HeartbeatReply)
    assert isinstance(stale, StaleEpoch) and "older than epoch 4" in str(stale)
    assert isinstance(unknown, NotFound)
    newest = await epochs(ctx)
    assert (newest[a], newest[b]) == (2, 4)
