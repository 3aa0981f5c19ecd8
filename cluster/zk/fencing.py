"""Leadership in ZooKeeper: take the lock with an epoch bump, and write only while it holds.

Guarantees:
- `acquire_leadership` sets the epoch with the version read in the snapshot (compare-and-set)
  and creates the ephemeral leader znode in the same transaction: both happen or neither does,
  so two nodes can never both believe they took the same epoch.
- `fenced_commit` applies its operations only if the epoch znode still has the version the
  caller's `Fence` recorded when it took leadership: a leader that was paused and replaced can
  never write again with its old epoch (Kafka's controller epoch, kept in ZooKeeper).

Does not: release the lock on its own (the daemon deletes the leader znode in a fenced write, or
the session's end does), or tell a refused write's cause beyond `FencedOut` and the first
failing operation's error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from cluster.errors import FencedOut
from cluster.model import Epoch
from cluster.paths import ClusterPaths
from cluster.zk.client import ZooKeeper
from cluster.zk.errors import BadVersionError, NoNodeError, ZooKeeperError
from cluster.zk.ops import Check, Create, Op, Outcome, SetData, Stat
from contract.limits import MAX_EPOCH

log = logging.getLogger(__name__)

#: What a fenced write returns per operation: the created path, the new `Stat`, or True.
Applied = str | Stat | bool


@dataclass(frozen=True)
class Fence:
    """What a leader holds: its epoch and the epoch znode's version right after it bumped it."""

    epoch: int
    epoch_version: int


def acquire_leadership(
    zk: ZooKeeper,
    paths: ClusterPaths,
    node: str,
    seen: Epoch,
    now: float,
    timeout: float = 5.0,
) -> Fence | None:
    """Take the lock and bump the epoch in one transaction; None if another node won the race."""
    new_epoch = seen.value + 1
    leader = json.dumps({"node": node, "epoch": new_epoch, "since": now}).encode()
    outcome = zk.commit(
        [
            SetData(paths.epoch, str(new_epoch).encode(), version=seen.version),
            Create(paths.leader, leader, ephemeral=True),
        ],
        timeout,
    )
    if not outcome.applied:
        log.info("leadership race lost: %s", [type(r).__name__ for r in outcome.results])
        return None
    stat = outcome.results[0]
    assert isinstance(stat, Stat)
    return Fence(epoch=new_epoch, epoch_version=stat.version)


def _check_applied(outcome: Outcome, fence: Fence) -> None:
    """Raise `FencedOut` when the transaction's first operation (on the epoch znode) failed,
    else ZooKeeper's error of the first failing operation; nothing when it was applied."""
    if isinstance(outcome.results[0], BadVersionError | NoNodeError):
        raise FencedOut(f"epoch {fence.epoch} is no longer current: another leader took over")
    failure = outcome.failure
    if failure is not None:
        raise failure[1]


def advance_epoch(
    zk: ZooKeeper,
    paths: ClusterPaths,
    fence: Fence,
    to: int,
    node: str,
    now: float,
    timeout: float = 5.0,
) -> Fence:
    """Move the epoch forward to `to` while `fence` is current, and the leader znode with it.

    For a leader whose epoch another party has already seen higher (Mission Control after
    ZooKeeper was restored from an older backup): the epoch znode is set at the fence's
    version, so only the current leader can do it, and it only ever grows. Raises `FencedOut`
    when the fence is stale, ValueError when `to` is not above the fence's epoch or above
    `MAX_EPOCH`.
    """
    if not fence.epoch < to <= MAX_EPOCH:
        raise ValueError(f"cannot move epoch {fence.epoch} to {to}")
    leader = json.dumps({"node": node, "epoch": to, "since": now}).encode()
    outcome = zk.commit(
        [
            SetData(paths.epoch, str(to).encode(), version=fence.epoch_version),
            SetData(paths.leader, leader),
        ],
        timeout,
    )
    _check_applied(outcome, fence)
    first = outcome.results[0]
    assert isinstance(first, Stat)
    return Fence(epoch=to, epoch_version=first.version)


def fenced_commit(
    zk: ZooKeeper,
    paths: ClusterPaths,
    fence: Fence,
    ops: Sequence[Op],
    timeout: float = 5.0,
) -> list[Applied]:
    """Apply `ops` atomically, only while `fence` is current; one result per operation.

    Raises `FencedOut` if the epoch moved on (another leader took over); other failures of an
    operation raise ZooKeeper's error of the first failing operation; nothing is applied then.
    """
    outcome = zk.commit([Check(paths.epoch, fence.epoch_version), *ops], timeout)
    _check_applied(outcome, fence)
    return [r for r in outcome.results[1:] if not isinstance(r, ZooKeeperError)]
