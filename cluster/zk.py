"""The thin ZooKeeper adapter: connect, create a cluster's subtree, read snapshots, fenced writes.

Guarantees:
- Every call is bounded by a timeout; none blocks forever when ZooKeeper is gone. Each request
  goes through kazoo's `*_async` result and `wait`, so a request kazoo queued while it reconnects
  fails with `ZooKeeperUnavailable` ("ZooKeeper did not answer within N s") instead of waiting.
- A client from `connect` (commands) also gives up reconnecting after its timeout, so a request
  made through any other module's plain kazoo call fails with `ConnectionLoss` rather than hang.
- A snapshot is read with requests issued in parallel (one round trip per level of the tree).
- `fenced_commit` applies its operations only if the epoch znode still has the version the
  caller's `Fence` recorded when it took leadership: a leader that was paused and replaced can
  never write again with its old epoch (Kafka's controller epoch, kept in ZooKeeper).

Does not guarantee: that a snapshot is a consistent cut across znodes (ZooKeeper has no
multi-read); decisions built on it are re-checked by the fenced write itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import (
    AuthFailedError,
    BadVersionError,
    KazooException,
    NodeExistsError,
    NoNodeError,
    RolledBackError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from cluster.errors import FencedOut, ZooKeeperAuthFailed, ZooKeeperUnavailable
from cluster.model import ClusterSnapshot, Epoch, Leader, LiveMember, RosterEntry
from cluster.paths import ClusterPaths

log = logging.getLogger(__name__)

Watcher = Callable[[Any], None]


def make_client(
    hosts: str,
    session_timeout: float,
    auth: str | None = None,
    reconnect_deadline: float | None = None,
) -> KazooClient:
    """A client with bounded back-off between connection attempts.

    It retries its connection forever (the daemon), or, with `reconnect_deadline`, gives up after
    failing that many seconds in a row (commands). `auth` (USER:PASSWORD) is the digest
    credential that opens the cluster's secrets.
    """
    return KazooClient(
        hosts=hosts,
        timeout=session_timeout,
        connection_retry=KazooRetry(
            max_tries=-1, delay=0.1, backoff=2, max_delay=1.0, deadline=reconnect_deadline
        ),
        auth_data=[("digest", auth)] if auth else None,
    )


def connect(
    hosts: str, timeout: float = 5.0, session_timeout: float = 10.0, auth: str | None = None
) -> KazooClient:
    """A short-lived client for a command: connected and authenticated within `timeout` seconds.

    Raises `ZooKeeperUnavailable` when no server answers, `ZooKeeperAuthFailed` when ZooKeeper
    refuses the credential. The client stops reconnecting after `timeout` seconds without a
    server, so a command run while the ensemble loses quorum fails instead of hanging.
    """
    client = make_client(hosts, session_timeout, reconnect_deadline=timeout)
    try:
        client.start(timeout=timeout)
    except (KazooTimeoutError, KazooException, OSError, ValueError) as e:
        close(client)
        raise ZooKeeperUnavailable(
            f"cannot reach ZooKeeper at {hosts} within {timeout:g}s "
            "(is the ensemble up and does it have quorum?)"
        ) from e
    if auth is not None:
        # Added after the connection is up, so a refusal is told apart from an absent server
        # (kazoo reports a refused credential given at start only as a connection time-out).
        try:
            wait(client.add_auth_async("digest", auth), timeout)
        except AuthFailedError as e:
            close(client)
            raise ZooKeeperAuthFailed(
                f"ZooKeeper at {hosts} refused the credential given with --zk-auth "
                "(MANAGED_ZK_AUTH): expected USER:PASSWORD"
            ) from e
        except BaseException:
            close(client)
            raise
    return client


def close(client: KazooClient) -> None:
    try:
        client.stop()
    finally:
        client.close()


def wait(result: Any, timeout: float) -> Any:
    """The value of a kazoo `*_async` result, or `ZooKeeperUnavailable` after `timeout` s."""
    try:
        return result.get(timeout=timeout)
    except KazooTimeoutError as e:
        raise ZooKeeperUnavailable(f"ZooKeeper did not answer within {timeout:g} s") from e


def ensure_path(client: KazooClient, path: str, timeout: float = 5.0) -> None:
    """Create `path` and its parents if missing (idempotent, safe to race, bounded)."""
    with contextlib.suppress(NodeExistsError):
        wait(client.create_async(path, b"", makepath=True), timeout)


def ensure_cluster(client: KazooClient, paths: ClusterPaths, timeout: float = 5.0) -> None:
    """Create the cluster's persistent znodes if missing (idempotent, safe to race)."""
    for path in paths.persistent_nodes():
        ensure_path(client, path, timeout)
    initial_values = (
        (paths.epoch, b"0"),
        (paths.config, b"{}"),
        (paths.health, b"{}"),
        (paths.mission_control, b"{}"),
    )
    for path, initial in initial_values:
        with contextlib.suppress(NodeExistsError):
            wait(client.create_async(path, initial), timeout)


def parse_config(data: bytes | None) -> dict[str, Any]:
    """The cluster config znode's content as a dict: {} when empty, not JSON or not an object
    (readers of the config tolerate a damaged one; writers validate before writing)."""
    try:
        loaded = json.loads(data or b"{}")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def read_snapshot(
    client: KazooClient,
    paths: ClusterPaths,
    timeout: float = 5.0,
    watch: Watcher | None = None,
) -> ClusterSnapshot:
    """Read roster, live members, leader, epoch and config; `watch` fires on any change of them.

    Raises `ZooKeeperUnavailable` when ZooKeeper cannot answer, kazoo errors otherwise.
    """
    roster_req = client.get_children_async(paths.roster, watch=watch)
    live_req = client.get_children_async(paths.live, watch=watch)
    leader_req = client.get_async(paths.leader, watch=watch)
    epoch_req = client.get_async(paths.epoch)
    config_req = client.get_async(paths.config)
    roster_ids = _optional(roster_req, timeout) or []
    live_ids = _optional(live_req, timeout) or []
    roster_data = [client.get_async(paths.roster_member(n)) for n in roster_ids]
    live_data = [client.get_async(paths.live_member(n)) for n in live_ids]

    roster = []
    for node, req in zip(roster_ids, roster_data, strict=True):
        got = _optional(req, timeout)
        if got is not None:
            roster.append(RosterEntry.from_node(node, got[0]))
    live = []
    for node, req in zip(live_ids, live_data, strict=True):
        got = _optional(req, timeout)
        if got is not None:
            live.append(LiveMember.from_node(node, got[0], got[1].ephemeralOwner))
    leader_got = _optional(leader_req, timeout)
    leader = Leader.from_node(leader_got[0], leader_got[1].ephemeralOwner) if leader_got else None
    epoch_got = _optional(epoch_req, timeout)
    epoch = Epoch.from_node(epoch_got[0], epoch_got[1].version) if epoch_got else Epoch(0, -1)
    config_got = _optional(config_req, timeout)
    config = parse_config(config_got[0]) if config_got else {}
    return ClusterSnapshot(
        cluster=paths.cluster,
        roster=tuple(sorted(roster, key=lambda e: e.node)),
        live=tuple(sorted(live, key=lambda m: m.node)),
        leader=leader,
        epoch=epoch,
        config=config,
    )


def _optional(result: Any, timeout: float) -> Any:
    try:
        return wait(result, timeout)
    except NoNodeError:
        return None


@dataclass(frozen=True)
class Fence:
    """What a leader holds: its epoch and the epoch znode's version right after it bumped it."""

    epoch: int
    epoch_version: int


def acquire_leadership(
    client: KazooClient,
    paths: ClusterPaths,
    node: str,
    seen: Epoch,
    now: float,
    timeout: float = 5.0,
) -> Fence | None:
    """Take the lock and bump the epoch in one transaction; None if another node won the race.

    The epoch is set with the version read in the snapshot (compare-and-set) and the ephemeral
    leader znode is created in the same transaction, so both happen or neither does.
    """
    new_epoch = seen.value + 1
    tx = client.transaction()
    tx.set_data(paths.epoch, str(new_epoch).encode(), version=seen.version)
    tx.create(
        paths.leader,
        json.dumps({"node": node, "epoch": new_epoch, "since": now}).encode(),
        ephemeral=True,
    )
    results = wait(tx.commit_async(), timeout)
    if any(isinstance(r, Exception) for r in results):
        log.info("leadership race lost: %s", [type(r).__name__ for r in results])
        return None
    stat = results[0]
    return Fence(epoch=new_epoch, epoch_version=stat.version)


@dataclass(frozen=True)
class SetData:
    path: str
    data: bytes
    version: int = -1  # compare-and-set on the znode's version; -1: any version


@dataclass(frozen=True)
class Create:
    path: str
    data: bytes
    ephemeral: bool = False
    sequence: bool = False


@dataclass(frozen=True)
class Delete:
    path: str
    version: int = -1


Op = SetData | Create | Delete


def fenced_commit(
    client: KazooClient,
    paths: ClusterPaths,
    fence: Fence,
    ops: Sequence[Op],
    timeout: float = 5.0,
) -> list[Any]:
    """Apply `ops` atomically, only while `fence` is current.

    Raises `FencedOut` if the epoch moved on (another leader took over); other failures of an
    operation raise the kazoo error of the first failing operation; nothing is applied then.
    """
    tx = client.transaction()
    tx.check(paths.epoch, fence.epoch_version)
    for op in ops:
        if isinstance(op, SetData):
            tx.set_data(op.path, op.data, version=op.version)
        elif isinstance(op, Create):
            tx.create(op.path, op.data, ephemeral=op.ephemeral, sequence=op.sequence)
        else:
            tx.delete(op.path, version=op.version)
    results = wait(tx.commit_async(), timeout)
    first = results[0]
    if isinstance(first, BadVersionError | NoNodeError):
        raise FencedOut(f"epoch {fence.epoch} is no longer current: another leader took over")
    errors = [r for r in results[1:] if isinstance(r, Exception)]
    real = [r for r in errors if not isinstance(r, RolledBackError)]
    if real:
        raise real[0]
    return list(results[1:])
