"""Remote-support storage on both back ends (SQLite and PostgreSQL): the signed-approval path
and its replay guard under concurrency, the heartbeat listing, and the audit chain under
concurrent appends."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mc_kit import FakeClock
from mcs_support import OLGA, public_pem

from contract.audit.canonical import format_time
from contract.messages import Heartbeat, SupportDecision, SupportPublicKey
from contract.support.approval import sign_approval
from contract.support.policy import AccessRole
from contract.support.requests import AccessGrant
from mission_control.service.accounts import audit_log
from mission_control.service.context import ServiceContext
from mission_control.service.exchange import cluster_messages
from mission_control.service.fleet import enrollment
from mission_control.service.refusals import ClusterMessageRefused
from mission_control.service.support import access_requests, sync
from mission_control.staff.identity import StaffIdentity
from mission_control.staff_protocol import AccessRequestCreate, AccessRequestView

ALICE = StaffIdentity("alice", "support-l2")


async def enrolled(ctx: ServiceContext, key: Ed25519PrivateKey) -> str:
    created = await enrollment.create_cluster(ctx, "acme", "EU")
    cluster_id = (await enrollment.enroll(ctx, created.enrollment_token)).cluster_id
    pem = SupportPublicKey(message_id=uuid.uuid4(), epoch=1, public_key_pem=public_pem(key))
    await sync.public_key(ctx, cluster_id, pem)
    return cluster_id


async def ask(ctx: ServiceContext) -> AccessRequestView:
    body = AccessRequestCreate(cluster="acme", reason="ticket 1", role="user", duration="2h")
    return await access_requests.create_request(ctx, ALICE, body)


def approved(
    request: AccessRequestView, key: Ed25519PrivateKey, clock: FakeClock, approval_id: str
) -> SupportDecision:
    grant = AccessGrant(
        grant_id=approval_id,
        request_id=request.id,
        cluster_id=request.cluster_id,
        engineer="alice",
        role=AccessRole.USER,
        starts_at=clock.now,
        ends_at=clock.now + timedelta(hours=1),
        approved_by=OLGA,
    )
    return SupportDecision.model_validate(
        {
            "message_id": str(uuid.uuid4()),
            "epoch": 1,
            "request_id": request.id,
            "state": "approved",
            "by": "olga",
            "at": format_time(clock.now),
            "approval": sign_approval(grant, key).to_json(),
        }
    )


async def test_approval_resent_concurrently_is_honoured_once(
    ctx: ServiceContext, clock: FakeClock
) -> None:
    key = Ed25519PrivateKey.generate()
    cluster_id = await enrolled(ctx, key)
    first, second = await ask(ctx), await ask(ctx)
    beat = await cluster_messages.heartbeat(
        ctx, cluster_id, Heartbeat(message_id=uuid.uuid4(), epoch=1)
    )
    assert {r.id for r in beat.support_requests} == {first.id, second.id}

    decision = approved(first, key, clock, "b" * 32)
    resent = decision.model_copy(update={"message_id": uuid.uuid4()})
    acks = await asyncio.gather(
        sync.decision(ctx, cluster_id, decision),
        sync.decision(ctx, cluster_id, resent),
    )
    assert sorted(a.recorded for a in acks) == [False, True]
    with pytest.raises(ClusterMessageRefused) as replayed:
        await sync.decision(ctx, cluster_id, approved(second, key, clock, "b" * 32))
    assert (replayed.value.code, replayed.value.http_status) == ("approval_replayed", 422)
    seen = await access_requests.get_request(ctx, ALICE, first.id)
    assert seen.state == "approved" and seen.grant is not None
    beat = await cluster_messages.heartbeat(
        ctx, cluster_id, Heartbeat(message_id=uuid.uuid4(), epoch=1)
    )
    assert [r.id for r in beat.support_requests] == [second.id]

    clock.advance(hours=2)  # the window ended: the sweep ends the grant, forgets the id
    assert await access_requests.sweep(ctx) == 1
    assert (await access_requests.get_request(ctx, ALICE, first.id)).state == "ended"
    assert (await audit_log.verify(ctx)).ok


async def test_concurrent_audit_appends_keep_one_chain(ctx: ServiceContext) -> None:
    await enrolled(ctx, Ed25519PrivateKey.generate())
    await asyncio.gather(*(ask(ctx) for _ in range(8)))
    result = await audit_log.verify(ctx)
    assert result.ok, result.summary()
    assert result.entries == 9  # the pinned key and eight requests
    assert [e.seq for e in await audit_log.list_entries(ctx, limit=3)] == [9, 8, 7]
