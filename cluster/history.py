"""The cluster's leadership history: one znode per leadership, written by the fenced leader.

Each entry (`history/<epoch>`, named by the epoch the leadership started with) says which node
led, from when, until when and why it ended (`managed cluster history`, after patronictl's).

Guarantees:
- Only a leader writes, and only through fenced transactions: a new leader opens its entry in
  its first fenced write, and in the same transaction closes the previous entry if nobody did
  (the previous leader's session ended without a handover: a crash, SIGKILL or a partition).
- A leader that gives the lock up itself (SIGTERM, switchover, drain, removal from the roster)
  closes its own entry in the same transaction that deletes the lock, with the reason.
- At most `KEEP` entries are kept; the oldest go in the transaction that opens a new one.
Does not guarantee: the end time of a leadership lost without a handover is exact (it is when
the next leader took over), nor an entry for a node that held the lock but never led with
quorum.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from cluster.paths import ClusterPaths
from cluster.zk import Create, Delete, Op, SetData, ZooKeeper

KEEP = 500
LOST_WITHOUT_HANDOVER = "lock lost without a handover (the node's session ended)"


@dataclass(frozen=True)
class Leadership:
    """One leadership: `end` and `ended` are empty while it lasts."""

    node: str
    epoch: int
    start: float
    end: float | None = None
    ended: str = ""

    @classmethod
    def from_node(cls, data: bytes) -> Leadership | None:
        try:
            d = json.loads(data or b"{}")
            end = d.get("end")
            return cls(
                node=str(d["node"]),
                epoch=int(d["epoch"]),
                start=float(d["start"]),
                end=None if end is None else float(end),
                ended=str(d.get("ended", "")),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "epoch": self.epoch,
            "start": self.start,
            "end": self.end,
            "ended": self.ended,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    def closed(self, at: float, why: str) -> Leadership:
        return replace(self, end=at, ended=why)


def _epochs(client: ZooKeeper, paths: ClusterPaths, timeout: float) -> list[int]:
    names = client.children_or_none(paths.history, timeout)
    return sorted(int(n) for n in names if n.isdigit())


def read(client: ZooKeeper, paths: ClusterPaths, timeout: float = 5.0) -> list[Leadership]:
    """Every kept entry, oldest first (unreadable ones skipped)."""
    found = []
    for epoch in _epochs(client, paths, timeout):
        got = client.find(paths.history_entry(epoch), timeout)
        entry = Leadership.from_node(got[0]) if got else None
        if entry is not None:
            found.append(entry)
    return found


def opening_ops(
    client: ZooKeeper, paths: ClusterPaths, mine: Leadership, timeout: float = 5.0
) -> list[Op]:
    """What a new leader writes with its first fenced transaction: its entry, the close of the
    previous one if it is still open, and the trim. Blocking (reads the latest entries)."""
    client.ensure_path(paths.history, timeout=timeout)
    kept = _epochs(client, paths, timeout)
    ops: list[Op] = []
    if mine.epoch not in kept:
        ops.append(Create(paths.history_entry(mine.epoch), mine.to_bytes()))
    epochs = [e for e in kept if e != mine.epoch]
    earlier = [e for e in epochs if e < mine.epoch]
    if earlier:
        got = client.find(paths.history_entry(earlier[-1]), timeout)
        previous = Leadership.from_node(got[0]) if got else None
        if got is not None and previous is not None and previous.end is None:
            closed = previous.closed(mine.start, LOST_WITHOUT_HANDOVER)
            ops.append(
                SetData(paths.history_entry(previous.epoch), closed.to_bytes(), got[1].version)
            )
    for old in epochs[: max(0, len(epochs) + 1 - KEEP)]:
        ops.append(Delete(paths.history_entry(old)))
    return ops


def closing_op(paths: ClusterPaths, mine: Leadership, at: float, why: str) -> Op:
    """The close of this leader's own entry, for the transaction that gives up the lock."""
    return SetData(paths.history_entry(mine.epoch), mine.closed(at, why).to_bytes())
