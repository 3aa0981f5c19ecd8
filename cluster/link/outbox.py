"""Messages for Mission Control, queued in ZooKeeper until delivered.

Anyone (the leader, an operator's CLI) may enqueue; only the leader delivers, oldest first,
and removes a message with a fenced delete after Mission Control acknowledged it. A message
keeps its `message_id` for life, so a resend after a crash or a leader change is recognised
and deduplicated by Mission Control.

Guarantees: nothing enqueued is lost while ZooKeeper keeps its quorum, except what the bound
below thins out on purpose; delivery is in enqueue order (the znodes' sequence numbers, shared
by every name prefix); each message is delivered at least once and, with Mission Control's
deduplication, counted exactly once. Does not guarantee: delivery while no node leads.

The bound (`excess`, applied by the leader when it queues a health or license check): a long
outage must not grow the outbox past what one `get_children` can list (ZooKeeper's 1 MB
`jute.maxbuffer`). The kind of a message is in its znode name, so the bound needs no reads:
`h-<hour>-<seq>` health checks (the newest `recent` all kept, older ones thinned to the oldest of
each clock hour, for at most `history_hours` hours), `l-<seq>` license checks (only the newest
is kept: it is a question, not data) and `m-<seq>` everything else (consumption, events,
support, audit), never dropped.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from cluster import zk
from cluster.paths import ClusterPaths

PREFIX = "m-"  # never dropped by the bound
HEALTH_PREFIX = "h-"  # h-<hour>-<seq>: thinned by the bound
LICENSE_PREFIX = "l-"  # only the newest is kept
SEQUENCE_DIGITS = 10  # ZooKeeper's sequence suffix


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


def stable_message_id(paths: ClusterPaths, *parts: str) -> str:
    """A message id derived from the fact the message reports (`parts`), so a message made
    again for the same fact is deduplicated by Mission Control."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join((paths.cluster, *parts))))


def queued(
    paths: ClusterPaths, kind: str, payload: dict[str, Any], message_id: str, now: float
) -> tuple[str, bytes]:
    """The sequence-node path prefix and the bytes `enqueue` would create: for callers that
    enqueue inside a transaction of their own."""
    return f"{outbox_path(paths)}/{PREFIX}", record(kind, payload, now, message_id)


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


def prefix_for(kind: str, created: float) -> str:
    """The znode name prefix of a message of `kind` created at `created` (see the bound)."""
    if kind == "health":
        return f"{HEALTH_PREFIX}{int(created // 3600)}-"
    if kind == "license":
        return LICENSE_PREFIX
    return PREFIX


def sequence_of(name: str) -> int:
    """The enqueue order of a message znode (its sequence suffix; -1 if it has none)."""
    digits = name[-SEQUENCE_DIGITS:]
    return int(digits) if len(name) > SEQUENCE_DIGITS and digits.isdigit() else -1


def in_order(names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda n: (sequence_of(n), n))


@dataclass(frozen=True)
class Bound:
    """Health checks all kept: the newest `recent`; then one per hour for `history_hours`."""

    recent: int
    history_hours: int


def excess(names: Sequence[str], bound: Bound, adding: Sequence[str] = ()) -> list[str]:
    """Which of `names` to drop so that, with the messages `adding` (name prefixes from
    `prefix_for`, queued after all of `names`), the outbox stays within `bound`.

    Pure. License checks: all but the newest go. Health checks: the newest `bound.recent` stay;
    of the older ones, the oldest of each clock hour stays for the newest `history_hours`
    hours. Anything else is never listed.
    """
    ordered = [*in_order(names), *adding]
    new = len(ordered) - len(adding)
    licenses = [i for i, n in enumerate(ordered) if n.startswith(LICENSE_PREFIX)]
    drop = set(licenses[:-1])
    health = [i for i, n in enumerate(ordered) if n.startswith(HEALTH_PREFIX)]
    older = health[: max(0, len(health) - max(1, bound.recent))]
    kept_hours: dict[str, int] = {}
    for i in older:  # oldest first: the first of each hour is the one kept
        hour = ordered[i].split("-")[1] if ordered[i].count("-") >= 2 else ""
        if hour in kept_hours:
            drop.add(i)
        else:
            kept_hours[hour] = i
    by_recency = sorted(kept_hours.values(), reverse=True)
    drop.update(by_recency[bound.history_hours :])
    return [ordered[i] for i in sorted(drop) if i < new]


def names(client: KazooClient, paths: ClusterPaths) -> list[str]:
    """Every queued message's znode name, in enqueue order."""
    try:
        return in_order(client.get_children(outbox_path(paths)))
    except NoNodeError:
        return []


def pending(client: KazooClient, paths: ClusterPaths, limit: int = 100) -> list[OutboxMessage]:
    """The oldest `limit` messages, in enqueue order."""
    found = names(client, paths)[:limit]
    requests = [(n, client.get_async(f"{outbox_path(paths)}/{n}")) for n in found]
    out = []
    for name, req in requests:
        try:
            data, _ = zk.wait(req, 10)
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
