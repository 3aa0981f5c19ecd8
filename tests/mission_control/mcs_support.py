"""A harness for remote-support tests: an in-process Mission Control on loopback, clusters with
their Ed25519 keys, staff with tokens, and signed approvals as a cluster would send them."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mc_kit import FakeClock, make_settings, running
from mcs_staff import staff_token

from contract.audit.canonical import format_time
from contract.audit.events import Actor, ActorKind
from contract.support.approval import ApproverIdentity, sign_approval
from contract.support.policy import AccessRole
from contract.support.requests import AccessGrant
from mission_control.app import create_app
from mission_control.db.engine import create_engine
from mission_control.service.context import ServiceContext
from mission_control.service.fleet import enrollment

OLGA = Actor("olga", ActorKind.OPERATOR)


def public_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass
class Cluster:
    id: str
    credential: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    epoch: int = 1


@dataclass
class Support:
    url: str
    http: aiohttp.ClientSession
    ctx: ServiceContext
    clock: FakeClock

    async def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None if body is None else json.dumps(body).encode()
        async with self.http.request(method, self.url + path, data=data, headers=headers) as r:
            text = await r.text()
            assert r.content_type == "application/json", text
            return r.status, json.loads(text)

    async def ok(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        status, reply = await self.call(method, path, body, token)
        assert status == 200, reply
        return reply

    async def cluster(
        self, name: str, *, pin: bool = True, created: enrollment.CreatedCluster | None = None
    ) -> Cluster:
        """A cluster enrolled (created now unless `created` before) with its key pinned."""
        created = created or await enrollment.create_cluster(self.ctx, name, "EU")
        reply = await self.ok("POST", "/api/v1/enroll", {"token": created.enrollment_token})
        cluster = Cluster(reply["cluster_id"], reply["credential"])
        if pin:
            await self.ok(
                *self.message(cluster, "support/public-key", public_key_pem=public_pem(cluster.key))
            )
        return cluster

    def message(self, cluster: Cluster, kind: str, **payload: Any) -> tuple[str, str, Any, str]:
        body = {"message_id": str(uuid.uuid4()), "epoch": cluster.epoch, **payload}
        return "POST", f"/api/v1/clusters/{cluster.id}/{kind}", body, cluster.credential

    async def send(self, cluster: Cluster, kind: str, **payload: Any) -> tuple[int, Any]:
        return await self.call(*self.message(cluster, kind, **payload))

    async def heartbeat(self, cluster: Cluster) -> Any:
        return await self.ok(*self.message(cluster, "heartbeat"))

    async def staff(self, name: str, role: str) -> str:
        return await staff_token(self.ctx, name, role)

    async def request_access(
        self, token: str, cluster: str, role: str = "user", duration: str | int = "4h"
    ) -> Any:
        body = {
            "cluster": cluster,
            "reason": "ticket 4711: slow ingest",
            "role": role,
            "duration": duration,
        }
        return await self.ok("POST", "/api/v1/access-requests", body, token)

    def approval(
        self,
        cluster: Cluster,
        request: Any,
        *,
        role: str | None = None,
        seconds: int | None = None,
        approval_id: str | None = None,
        key: Ed25519PrivateKey | None = None,
        starts_at: datetime | None = None,
        by: Actor = OLGA,
        identity: ApproverIdentity | None = None,
    ) -> dict[str, Any]:
        start = starts_at or self.clock.now
        grant = AccessGrant(
            grant_id=approval_id or uuid.uuid4().hex,
            request_id=request["id"],
            cluster_id=cluster.id,
            engineer=request["engineer"],
            role=AccessRole(role or request["role"]),
            starts_at=start,
            ends_at=start + timedelta(seconds=seconds or request["duration_seconds"]),
            approved_by=by,
        )
        return sign_approval(grant, key or cluster.key, identity).to_json()

    async def decide(
        self,
        cluster: Cluster,
        request_id: str,
        state: str,
        approval: Any = None,
        by: str = "olga",
        **extra: Any,
    ) -> tuple[int, Any]:
        return await self.send(
            cluster,
            "support/decision",
            request_id=request_id,
            state=state,
            by=by,
            at=format_time(self.clock.now),
            approval=approval,
            **extra,
        )


@contextlib.asynccontextmanager
async def support_running(
    sqlite_url: str, clock: FakeClock, **settings: object
) -> AsyncIterator[Support]:
    """Mission Control on loopback (SQLite) with the test clock and these `settings`."""
    engine = create_engine(sqlite_url)
    cheap = {"password_time_cost": 1, "password_memory_kib": 1024, "password_parallelism": 1}
    app = create_app(make_settings(sqlite_url, **cheap, **settings), clock=clock)
    try:
        async with running(app) as url, aiohttp.ClientSession() as http:
            yield Support(url, http, ServiceContext(engine=engine, clock=clock), clock)
    finally:
        await engine.dispose()


@pytest.fixture(name="support")
async def support_fixture(sqlite_url: str, clock: FakeClock) -> AsyncIterator[Support]:
    """Mission Control on loopback (SQLite) with the test clock; import into a test module."""
    async with support_running(sqlite_url, clock) as support:
        yield support
