"""Batched ingest and the features that ride on it, on both back ends: heartbeats of many
clusters in one batch each list exactly their own support requests and commands, as of their
own time (as a heartbeat alone would), and health checks leave one history sample each, a
deduplicated resend none."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mc_kit import FakeClock
from mc_messages import health, heartbeat
from mcs_support import public_pem
from sqlalchemy import func, select
from test_mcp_ingest import batch_sizes, enroll_many  # noqa: F401 - batch_sizes is a fixture
from test_mcs_store import approved

from contract.messages import HeartbeatReply, SupportPublicKey
from mission_control.db.schema import health_samples
from mission_control.service.context import ServiceContext
from mission_control.service.exchange import cluster_messages
from mission_control.service.fleet import enrollment
from mission_control.service.support import access_requests, sync
from mission_control.service.support.commands import issue_command
from mission_control.service.support.queue import open_heartbeat_items
from mission_control.staff.identity import StaffIdentity
from mission_control.staff_protocol import AccessRequestCreate, AccessRequestView, CommandCreate

ALICE = StaffIdentity("alice", "support-l2")


async def support_cluster(ctx: ServiceContext) -> tuple[str, str, Ed25519PrivateKey]:
    """A cluster (name, id) with its approval key pinned."""
    name = f"s-{uuid.uuid4().hex[:8]}"
    created = await enrollment.create_cluster(ctx, name, "EU")
    cluster_id = (await enrollment.enroll(ctx, created.enrollment_token)).cluster_id
    key = Ed25519PrivateKey.generate()
    pem = SupportPublicKey(message_id=uuid.uuid4(), epoch=1, public_key_pem=public_pem(key))
    await sync.public_key(ctx, cluster_id, pem)
    return name, cluster_id, key


async def ask(ctx: ServiceContext, name: str) -> AccessRequestView:
    body = AccessRequestCreate(cluster=name, reason="ticket 7", role="user", duration="2h")
    return await access_requests.create_request(ctx, ALICE, body)


async def approve(
    ctx: ServiceContext, request: AccessRequestView, key: Ed25519PrivateKey, clock: FakeClock
) -> None:
    decision = approved(request, key, clock, uuid.uuid4().hex)
    assert (await sync.decision(ctx, request.cluster_id, decision)).recorded


def listed(reply: HeartbeatReply) -> tuple[list[str], list[str]]:
    return [r.id for r in reply.support_requests], [c.id for c in reply.commands]


async def test_batched_heartbeats_list_each_clusters_own_items(
    ctx: ServiceContext,
    clock: FakeClock,
    batch_sizes: list[int],  # noqa: F811
) -> None:
    clusters = [await support_cluster(ctx) for _ in range(6)]
    expected: dict[str, tuple[list[str], list[str]]] = {}
    for i, (name, cluster_id, key) in enumerate(clusters[:4]):
        requests = []
        for _ in range(i + 1):
            requests.append(await ask(ctx, name))
            clock.advance(seconds=1)
        commands = []
        if i % 2 == 0:  # an approved grant with queued commands
            await approve(ctx, requests[0], key, clock)
            for command in ("diagnostics", "logs tail"):
                issued = await issue_command(
                    ctx, ALICE, requests[0].id, CommandCreate(command=command)
                )
                commands.append(issued.id)
                clock.advance(seconds=1)
            requests = requests[1:]
        expected[cluster_id] = ([r.id for r in requests], commands)

    ids = [cluster_id for _, cluster_id, _ in clusters]
    alone = {c: listed(await cluster_messages.heartbeat(ctx, c, heartbeat())) for c in ids}
    batch_sizes.clear()
    priming = asyncio.create_task(cluster_messages.heartbeat(ctx, ids[0], heartbeat()))
    await asyncio.sleep(0)
    replies = await asyncio.gather(*(cluster_messages.heartbeat(ctx, c, heartbeat()) for c in ids))
    await priming
    assert max(batch_sizes) > 1
    together = {c: listed(reply) for c, reply in zip(ids, replies, strict=True)}
    assert together == alone
    assert together == {c: expected.get(c, ([], [])) for c in ids}


async def test_each_cluster_in_a_batch_reads_as_of_its_own_time(
    ctx: ServiceContext, clock: FakeClock
) -> None:
    (early_name, early, _), (late_name, late, _) = [await support_cluster(ctx) for _ in range(2)]
    first = await ask(ctx, early_name)
    clock.advance(seconds=1)
    second = await ask(ctx, early_name)
    expiring = await ask(ctx, late_name)
    deadline = clock.now + ctx.support.pending_ttl  # `expiring`'s pending_until
    async with ctx.engine.begin() as conn:
        # One query at the earliest time returns `expiring`; the later heartbeat must not list it.
        found = await open_heartbeat_items(conn, {early: clock.now, late: deadline})
        assert [r.id for r in found[early][0]] == [first.id, second.id]
        assert late not in found
        found = await open_heartbeat_items(conn, {late: deadline - timedelta(microseconds=1)})
        assert [r.id for r in found[late][0]] == [expiring.id]
        assert await open_heartbeat_items(conn, {}) == {}


async def test_batched_health_checks_leave_one_sample_each_and_resends_none(
    ctx: ServiceContext,
    clock: FakeClock,
    batch_sizes: list[int],  # noqa: F811
) -> None:
    ids = await enroll_many(ctx, 6)
    reports = {c: health(nodes=3) for c in ids}
    replies = await asyncio.gather(*(cluster_messages.health(ctx, c, reports[c]) for c in ids))
    assert not any(r.duplicate for r in replies) and max(batch_sizes) > 1
    clock.advance(minutes=2)
    resent = await asyncio.gather(*(cluster_messages.health(ctx, c, reports[c]) for c in ids))
    assert all(r.duplicate for r in resent)
    async with ctx.engine.connect() as conn:
        rows = await conn.execute(
            select(
                health_samples.c.cluster_id, func.count(), func.max(health_samples.c.nodes_up)
            ).group_by(health_samples.c.cluster_id)
        )
        samples = {r[0]: (r[1], r[2]) for r in rows}
    assert samples == {c: (1, 3) for c in ids}
