"""The leader's record of its exchange with Mission Control: the `mission-control` znode.

Keys, each written by one step of the exchange (`cluster.link.exchange`):
- `consumption_until`: the consumption high-water mark (every full hour before it is in the
  outbox); advanced in the same transaction that queues those hours;
- `last_contact`, `license`, `health`: when Mission Control last accepted a message, and the
  last license and health replies; written with the removal of the delivered message;
- `link`: how the last delivery attempt ended (`ok`, `unreachable`, `credential refused`, ...);
- `enforcement`: the quota the cluster enforces on its own (`cluster.link.licensing.Enforcement`).

Guarantees: `StateWriter` is the only writer. Each write merges its keys into the newest copy it
knows and commits with a compare-and-set on the znode's version inside the leader's fenced
transaction, so no write undoes another: a copy gone stale (someone else wrote meanwhile) fails
with `StateMoved` and is read again, and the caller redoes its step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cluster import zk
from cluster.errors import ClusterError
from cluster.leadership import LeaderContext
from cluster.model import dump
from cluster.paths import ClusterPaths
from cluster.zk import ZooKeeper
from cluster.zk.errors import BadVersionError, NoNodeError


class StateMoved(ClusterError):
    """The state znode changed since it was read: read it again and redo the step."""


@dataclass(frozen=True)
class VersionedState:
    data: Mapping[str, Any]
    version: int  # -1: the znode does not exist yet


def _parse(data: bytes | None) -> dict[str, Any]:
    try:
        loaded = json.loads(data or b"{}")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def read_versioned(client: ZooKeeper, paths: ClusterPaths) -> VersionedState:
    """The state and its znode version (raises ZooKeeper errors other than a missing znode)."""
    try:
        data, stat = client.get(paths.mission_control)
    except NoNodeError:
        return VersionedState({}, -1)
    return VersionedState(_parse(data), stat.version)


def read_state(client: ZooKeeper, paths: ClusterPaths) -> dict[str, Any]:
    """The state for display ({} when it cannot be read)."""
    try:
        return dict(read_versioned(client, paths).data)
    except Exception:
        return {}


class StateWriter:
    """The one read-modify-write of the state znode (see the module docstring)."""

    def __init__(self) -> None:
        self._known: VersionedState | None = None

    def forget(self) -> None:
        """Drop the cached copy (a new leadership term reads afresh)."""
        self._known = None

    async def current(self, ctx: LeaderContext) -> VersionedState:
        if self._known is None:
            self._known = await ctx.blocking(read_versioned, ctx.zookeeper, ctx.paths)
        return self._known

    async def commit(
        self, ctx: LeaderContext, changes: Mapping[str, Any], ops: Sequence[zk.Op] = ()
    ) -> VersionedState:
        """Apply `ops` and merge `changes` into the state, atomically and fenced.

        Raises `StateMoved` if the state changed since this writer last read or wrote it
        (nothing is applied then), `FencedOut` if this node no longer leads.
        """
        known = await self.current(ctx)
        merged = {**known.data, **changes}
        if merged == known.data:
            if ops:
                await ctx.fenced(list(ops))
            return known
        if known.version < 0:
            write: zk.Op = zk.Create(ctx.paths.mission_control, dump(merged))
        else:
            write = zk.SetData(ctx.paths.mission_control, dump(merged), version=known.version)
        try:
            results = await ctx.fenced([*ops, write])
        except BadVersionError as e:
            self._known = None
            raise StateMoved("the Mission Control state changed meanwhile") from e
        except Exception:
            self._known = None  # unknown outcome (e.g. a time-out): read again next time
            raise
        stat = results[-1]
        version = stat.version if isinstance(stat, zk.Stat) else 0
        self._known = VersionedState(merged, version)
        return self._known
