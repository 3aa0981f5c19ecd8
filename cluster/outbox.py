"""Messages for Mission Control, queued in ZooKeeper until delivered.

Anyone (the leader, an operator's CLI) may enqueue; only the leader delivers, oldest first,
and removes a message with a fenced delete after Mission Control acknowledged it. A message
keeps its `message_id` for life, so a resend after a crash or a leader change is recognised
and deduplicated by Mission Control.

Guarantees: nothing enqueued is lost while ZooKeeper keeps its quorum; delivery is in enqueue
order; each message is delivered at least once and, with Mission Control's deduplication,
counted exactly once. Does not guarantee: delivery while no node leads.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from cluster.paths import ClusterPaths

PREFIX = "m-"


def outbox_path(paths: ClusterPaths) -> str:
    return paths.outbox


def dead_path(paths: ClusterPaths) -> str:
    """Where messages Mission Control refused as malformed are set aside, for an operator."""
    return paths.outbox_dead


@dataclass(frozen=True)
class OutboxMessage:
    znode: str  # name of the sequential znode, e.g. m-0000000012
    message_id: str
    kind: str
    payload: dict[str, Any]
    created: float

    def body(self, epoch: int) -> dict[str, Any]:
        """What is sent: the payload, its stable id, and the sender's current epoch."""
        return {**self.payload, "message_id": self.message_id, "epoch": epoch}


def enqueue(
    client: KazooClient,
    paths: ClusterPaths,
    kind: str,
    payload: dict[str, Any],
    message_id: str | None = None,
    now: float | None = None,
) -> str:
    """Append a message; returns its message_id."""
    mid = message_id or str(uuid.uuid4())
    client.ensure_path(outbox_path(paths))
    client.create(f"{outbox_path(paths)}/{PREFIX}", record(kind, payload, now, mid), sequence=True)
    return mid


def record(
    kind: str, payload: dict[str, Any], now: float | None = None, message_id: str | None = None
) -> bytes:
    """The znode bytes of one message (for callers that enqueue inside a transaction)."""
    return json.dumps(
        {
            "message_id": message_id or str(uuid.uuid4()),
            "kind": kind,
            "payload": payload,
            "created": time.time() if now is None else now,
        }
    ).encode()


def pending(client: KazooClient, paths: ClusterPaths, limit: int = 100) -> list[OutboxMessage]:
    """The oldest `limit` messages, in enqueue order."""
    try:
        names = sorted(client.get_children(outbox_path(paths)))[:limit]
    except NoNodeError:
        return []
    requests = [(n, client.get_async(f"{outbox_path(paths)}/{n}")) for n in names]
    out = []
    for name, req in requests:
        try:
            data, _ = req.get(timeout=10)
        except NoNodeError:
            continue  # delivered meanwhile
        try:
            r = json.loads(data)
            out.append(
                OutboxMessage(
                    name,
                    str(r["message_id"]),
                    str(r["kind"]),
                    dict(r["payload"]),
                    float(r["created"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # unreadable record: skip rather than block the queue
    return out


def path_of(paths: ClusterPaths, message: OutboxMessage) -> str:
    return f"{outbox_path(paths)}/{message.znode}"
