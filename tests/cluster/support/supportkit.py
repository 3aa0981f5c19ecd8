"""Test kit for remote support on a real ZooKeeper: a leader context, heartbeat replies, the CLI."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from clusterkit import ClusterUnderTest

from cluster import zk
from cluster.audit.store import AuditLog
from cluster.cli import main
from cluster.link import outbox
from cluster.model import ClusterSnapshot
from cluster.paths import ClusterPaths
from cluster.support.service import SupportService
from cluster.zk import ZooKeeper
from contract.messages import HeartbeatReply

AUTH = "operators:test-secret"  # the credential the project's test nodes use
T0 = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)


@dataclass
class Leader:
    """A `LeaderContext` holding a real fence (the epoch bumped in ZooKeeper), plus helpers."""

    client: ZooKeeper
    paths: ClusterPaths
    fence: zk.Fence | None
    cluster: ClusterUnderTest
    node: str = "n1"
    snapshot: ClusterSnapshot | None = None
    leading: bool = True
    service: SupportService = field(default_factory=SupportService)

    @property
    def zookeeper(self) -> ZooKeeper:
        return self.client

    async def fenced(self, ops: Sequence[zk.Op]) -> list[Any]:
        assert self.fence is not None
        return zk.fenced_commit(self.client, self.paths, self.fence, ops)

    async def blocking(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.wait_for(asyncio.to_thread(fn, *args), 20)

    def heartbeat(
        self,
        now: datetime,
        requests: Sequence[dict[str, Any]] = (),
        commands: Sequence[dict[str, Any]] = (),
        service: SupportService | None = None,
    ) -> list[str]:
        reply = HeartbeatReply.model_validate(
            {"support_requests": list(requests), "commands": list(commands)}
        )
        handler = service or self.service
        return asyncio.run(
            handler.handle_heartbeat(self, self.client, self.paths, AUTH, reply, now)
        )

    def outbox(self, kind: str | None = None) -> list[outbox.OutboxMessage]:
        found = outbox.Outbox(self.paths).pending(self.client, limit=1000)
        return [m for m in found if kind is None or m.kind == kind]

    def audit_actions(self) -> list[str]:
        return [e.action for e in AuditLog(self.client, self.paths).entries()]

    def cli(self, *args: str, env: dict[str, str] | None = None) -> CliResult:
        """`managed --zk-auth AUTH ARGS...` run in-process (the same click code, no start-up)."""
        result = CliRunner().invoke(
            main,
            ["--zk", self.cluster.hosts, "--cluster", self.cluster.name, "--zk-auth", AUTH, *args],
            env=env,
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliResult(result.exit_code, result.stdout, result.stderr)

    def cli_process(self, *args: str) -> Any:
        """The same, as a real `managed` process (what an operator runs)."""
        return self.cluster.cli("--zk-auth", AUTH, *args)


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def request_item(
    rid: str | None = None,
    *,
    cluster: str,
    engineer: str = "alice",
    role: str = "viewer",
    hours: float = 4,
    state: str = "pending",
    requested_at: datetime = T0,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": rid or f"req-{uuid.uuid4()}",
        "cluster": cluster,
        "engineer": engineer,
        "engineer_role": "support-l2",
        "reason": "ticket 4711: slow ingest",
        "role": role,
        "duration_seconds": int(hours * 3600),
        "requested_at": requested_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "state": state,
        "state_changed_by": None,
        "state_reason": None,
        **extra,
    }


def command_item(
    request_id: str, command: str, engineer: str = "alice", **arguments: Any
) -> dict[str, Any]:
    return {
        "id": f"cmd-{uuid.uuid4()}",
        "request_id": request_id,
        "engineer": engineer,
        "command": command,
        "arguments": arguments,
        "issued_at": "2026-11-22T14:05:00Z",
    }


def make_leader(cluster: ClusterUnderTest, tmp_path: Path) -> Iterator[Leader]:
    """A leader of `cluster` holding a real fence, with a health summary and a log path."""
    client = zk.connect(cluster.hosts, auth=AUTH)
    try:
        zk.ensure_cluster(client, cluster.paths)
        snap = zk.read_snapshot(client, cluster.paths)
        fence = zk.acquire_leadership(client, cluster.paths, "n1", snap.epoch, time.time())
        assert fence is not None
        summary = {"leader": "n1", "at": time.time(), "nodes": {"n1": {"live": True}}}
        client.set(cluster.paths.health, json.dumps(summary).encode())
        log_path = tmp_path / "data" / "logs" / "node.log"
        yield Leader(
            client,
            cluster.paths,
            fence,
            cluster,
            service=SupportService(log_path=log_path),
        )
    finally:
        zk.close(client)


def later(**delta: float) -> datetime:
    return T0 + timedelta(**delta)
