"""Messages for Mission Control, queued in ZooKeeper until delivered; `Outbox` owns the znodes.

Like kazoo's lock recipe owns its path, `Outbox(paths)` owns `outbox/` and `outbox-dead/`: the
naming of message znodes is private to it. Callers get a `Create` to put a message into a
transaction of their own (`message`), or enqueue, list, remove and set aside through it.

Anyone (the leader, an operator's CLI) may enqueue; only the leader delivers, oldest first,
and removes a message with a fenced delete after Mission Control acknowledged it. A message
keeps its `message_id` for life, so a resend after a crash or a leader change is recognised
and deduplicated by Mission Control.

Guarantees: nothing enqueued is lost while ZooKeeper keeps its quorum, except what the bound
below thins out on purpose; delivery is in enqueue order (the znodes' sequence numbers, shared
by every name prefix); each message is delivered at least once and, with Mission Control's
deduplication, counted exactly once. Does not guarantee: delivery while no node leads.

The bound (`excess`, through `Outbox.trim`, applied by the leader when it queues a health or
license check): a long outage must not grow the outbox past what one listing of its children
can return (ZooKeeper's 1 MB `jute.maxbuffer`). The kind of a message is in its znode name, so
the bound needs no reads: `h-<hour>-<seq>` health checks (the newest `recent` all kept, older
ones thinned to the oldest of each clock hour, for at most `history_hours` hours), `l-<seq>`
license checks (only the newest is kept: it is a question, not data) and `m-<seq>` everything
else (consumption, events, support, audit), never dropped. Only messages queued with
`may_thin` (the exchange's own health and license checks) get the first two names.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cluster.model import dump
from cluster.paths import ClusterPaths
from cluster.zk import Create, Delete, Op, ZooKeeper

if TYPE_CHECKING:  # the wire models load when a message is made or sent (start-up time)
    from contract.messages import ClusterMessage
    from contract.routes import QueuedBody

PREFIX = "m-"  # never dropped by the bound
HEALTH_PREFIX = "h-"  # h-<hour>-<seq>: thinned by the bound
LICENSE_PREFIX = "l-"  # only the newest is kept
SEQUENCE_DIGITS = 10  # ZooKeeper's sequence suffix
READ_TIMEOUT = 10.0  # seconds for each read of a listing


@dataclass(frozen=True)
class OutboxMessage:
    znode: str  # name of the sequential znode, e.g. m-0000000012
    message_id: str
    kind: str
    payload: dict[str, Any]
    created: float

    def stamped(self, epoch: int) -> ClusterMessage:
        """What is sent: the stored body as its route's message, with the id chosen when it was
        queued and the sending leader's epoch. Raises KeyError (a kind no route carries) or
        pydantic's ValidationError (a body its route refuses): either way it cannot be sent."""
        from contract.routes import ROUTES  # deferred: start-up time

        return ROUTES[self.kind].stamped(self.payload, self.message_id, epoch)


class Outbox:
    """One cluster's outbox (see the module docstring). Its I/O methods are blocking and
    bounded: from the event loop, run them through the node's executor."""

    def __init__(self, paths: ClusterPaths) -> None:
        self._paths = paths
        self._parent = paths.outbox
        self._dead = paths.outbox_dead

    def stable_id(self, *parts: str) -> str:
        """A message id derived from the fact the message reports (`parts`), so a message made
        again for the same fact is deduplicated by Mission Control."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join((self._paths.cluster, *parts))))

    def message(
        self,
        body: QueuedBody,
        now: float | None = None,
        *,
        message_id: str | None = None,
        may_thin: bool = False,
    ) -> Create:
        """The operation that queues a message, for a transaction of the caller's own. The
        body's class names its route (`contract.routes`); the envelope is added when the leader
        delivers it. With `may_thin`, a health or license check is named so that the bound can
        thin it; otherwise the message is never dropped."""
        created = time.time() if now is None else now
        from contract.routes import route_of  # deferred: start-up time

        kind = route_of(body).kind
        prefix = prefix_for(kind, created) if may_thin else PREFIX
        record = {
            "message_id": message_id or str(uuid.uuid4()),
            "kind": kind,
            "payload": body.model_dump(mode="json"),
            "created": created,
        }
        return Create(f"{self._parent}/{prefix}", json.dumps(record).encode(), sequence=True)

    def ensure(self, zk: ZooKeeper) -> None:
        """Create the outbox znode if missing (before a transaction that queues into it)."""
        zk.ensure_path(self._parent)

    def enqueue(
        self,
        zk: ZooKeeper,
        body: QueuedBody,
        message_id: str | None = None,
        now: float | None = None,
    ) -> str:
        """Append a message (never dropped by the bound); returns its message_id."""
        mid = message_id or str(uuid.uuid4())
        self.ensure(zk)
        op = self.message(body, now, message_id=mid)
        zk.create(op.path, op.data, sequence=True)
        return mid

    def names(self, zk: ZooKeeper) -> list[str]:
        """Every queued message's znode name, in enqueue order."""
        return in_order(zk.children_or_none(self._parent))

    def size(self, zk: ZooKeeper) -> int:
        return len(zk.children_or_none(self._parent))

    def pending(self, zk: ZooKeeper, limit: int = 100) -> list[OutboxMessage]:
        """The oldest `limit` messages, in enqueue order (an unreadable one is skipped rather
        than allowed to block the queue)."""
        found = self.names(zk)[:limit]
        got = zk.get_many((f"{self._parent}/{n}" for n in found), READ_TIMEOUT)
        out = []
        for name, read in zip(found, got, strict=True):
            if read is None:
                continue  # delivered meanwhile
            try:
                r = json.loads(read[0])
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
                continue
        return out

    def delivered(self, message: OutboxMessage) -> Delete:
        """The operation that removes a delivered message."""
        return Delete(f"{self._parent}/{message.znode}")

    def set_aside(self, message: OutboxMessage, reason: str) -> list[Op]:
        """The operations that move a message Mission Control refused to `outbox-dead`, with
        the reason, for an operator."""
        record = {
            "kind": message.kind,
            "payload": message.payload,
            "message_id": message.message_id,
            "error": reason,
        }
        return [self.delivered(message), Create(f"{self._dead}/{message.znode}", dump(record))]

    def trim(self, zk: ZooKeeper, bound: Bound, adding: Sequence[str], now: float) -> list[Delete]:
        """The operations that keep the outbox within `bound` once messages of the kinds
        `adding` (queued at `now` with `may_thin`) are added (see `excess`)."""
        prefixes = [prefix_for(kind, now) for kind in adding]
        dropped = excess(self.names(zk), bound, prefixes)
        return [Delete(f"{self._parent}/{n}") for n in dropped]


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
