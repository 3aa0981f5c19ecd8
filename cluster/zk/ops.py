"""The one vocabulary of ZooKeeper transaction operations, and what a transaction returns.

Every multi-znode change in the cluster (fenced leader writes, audit appends, support records,
roster changes, backup runs, restores) is a list of these frozen values applied by
`cluster.zk.client.ZooKeeper.commit` in one ZooKeeper transaction: all of them happen, or none.

Guarantees: an operation says everything it needs (path, data, the version it expects); a
`Create` carries the ACL its caller asked for (None: the default), and the client's `acl_for`
is applied to it like to every other create. Does not: read anything, or retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.zk.acl import Acl
from cluster.zk.errors import RolledBackError, ZooKeeperError


@dataclass(frozen=True)
class Stat:
    """What the cluster reads of a znode's metadata."""

    version: int  # data version: what a compare-and-set compares
    ephemeral_owner: int  # session that owns an ephemeral znode; 0 for a persistent one

    @classmethod
    def of(cls, stat: Any) -> Stat:
        return cls(int(stat.version), int(stat.ephemeralOwner))


@dataclass(frozen=True)
class Create:
    """Create a znode; fails if it exists (the way to claim a name exactly once). With
    `sequence`, `path` is a prefix and ZooKeeper appends the next sequence number."""

    path: str
    data: bytes
    ephemeral: bool = False
    sequence: bool = False
    acl: tuple[Acl, ...] | None = None


@dataclass(frozen=True)
class SetData:
    """Set a znode's data; with `version` >= 0 only if it still has that version (CAS)."""

    path: str
    data: bytes
    version: int = -1


@dataclass(frozen=True)
class Delete:
    path: str
    version: int = -1


@dataclass(frozen=True)
class Check:
    """Commit only if the znode still has `version` (what a decision was based on)."""

    path: str
    version: int


Op = Create | SetData | Delete | Check


@dataclass(frozen=True)
class Outcome:
    """What a transaction did: one result per operation, in order."""

    results: tuple[str | Stat | bool | ZooKeeperError, ...]

    @property
    def applied(self) -> bool:
        return not any(isinstance(r, Exception) for r in self.results)

    @property
    def failure(self) -> tuple[int, ZooKeeperError] | None:
        """The operation that made the transaction fail (its index and error): the first error
        that is not ZooKeeper's "rolled back with the others"; None if it applied."""
        errors = [(i, r) for i, r in enumerate(self.results) if isinstance(r, ZooKeeperError)]
        real = [(i, r) for i, r in errors if not isinstance(r, RolledBackError)]
        found = real or errors
        return found[0] if found else None


class OpFailed(Exception):
    """One of the caller's operations failed; nothing of the transaction was applied."""

    def __init__(self, op: Op, error: Exception) -> None:
        super().__init__(f"{type(error).__name__} on {op.path}")
        self.op = op
        self.error = error
