"""Joining and leaving the roster: validated, idempotent, and refused when it would break quorum.

Guarantees: every change is compare-and-set. A join or leave reads the roster znode's version
first, checks its rule against a snapshot read after it, and commits in one transaction that
also sets the roster znode with that version: if anything joined or left in between, the
transaction fails and the rule is checked again on a fresh read, so two concurrent changes can
never together break the quorum rule one of them checked alone. Every call is bounded.

Does not guarantee: that a node stays down between `leave`'s check and its commit (liveness is
an ephemeral znode; ZooKeeper cannot check a znode's absence in a transaction).
"""

from __future__ import annotations

import time

from cluster import zk
from cluster.errors import MembershipError
from cluster.link.licensing import quota_refusal
from cluster.model import ClusterSnapshot, RosterEntry, dump, quorum_of
from cluster.names import check_address, check_name, check_node_id
from cluster.paths import ClusterPaths
from cluster.zk import Create, Delete, Op, Outcome, SetData, ZooKeeper
from cluster.zk.errors import BadVersionError, NodeExistsError, NoNodeError

ATTEMPTS = 5  # concurrent roster changes a join or leave re-checks against before giving up


def validate_entry(node: str, datacenter: str, api_address: str) -> None:
    """Raise `MembershipError` with one clear line if any field is malformed."""
    try:
        check_node_id(node)
        check_name("datacenter", datacenter)
        check_address(api_address)
    except ValueError as e:
        raise MembershipError(str(e)) from e


def validate_leaving(node: str) -> None:
    """Raise `MembershipError` if `node` is not even a well-formed node id."""
    try:
        check_name("node id", node)
    except ValueError as e:
        raise MembershipError(str(e)) from e


def join_refusal(snapshot: ClusterSnapshot, entry: RosterEntry) -> str | None:
    """Why `entry` may not join (None: it may, or it already has with the same fields)."""
    existing = snapshot.member(entry.node)
    if existing is not None:
        if (existing.datacenter, existing.api_address) != (entry.datacenter, entry.api_address):
            return (
                f"node {entry.node} is already in the roster with datacenter "
                f"{existing.datacenter} and address {existing.api_address}: "
                "leave first to change them"
            )
        return None
    clash = next((e for e in snapshot.roster if e.api_address == entry.api_address), None)
    if clash is not None:
        return f"address {entry.api_address} is already used by node {clash.node}"
    return None


def leave_refusal(snapshot: ClusterSnapshot, node: str) -> str | None:
    """Why `node` may not leave without --force (None: it may)."""
    if snapshot.member(node) is None:
        return None
    if snapshot.live_member(node) is not None:
        return f"node {node} is live: stop it first (or use --force)"
    remaining = snapshot.roster_ids - {node}
    q = quorum_of(remaining, snapshot.live_ids)
    if remaining and not q.ok:
        return (
            f"without {node} the roster could not form quorum ({q.have} live of {q.need} "
            "needed): bring members back first (or use --force)"
        )
    return None


def join(
    client: ZooKeeper,
    paths: ClusterPaths,
    node: str,
    datacenter: str,
    api_address: str,
    timeout: float = 5.0,
) -> bool:
    """Add a node to the roster; True if added, False if it was already there unchanged."""
    validate_entry(node, datacenter, api_address)
    zk.ensure_cluster(client, paths, timeout)
    entry = RosterEntry(node, datacenter, api_address, time.time())
    for _ in range(ATTEMPTS):
        version = _roster_version(client, paths, timeout)
        snapshot = zk.read_snapshot(client, paths, timeout)
        refusal = join_refusal(snapshot, entry) or quota_refusal(client, paths, snapshot, node)
        if refusal:
            raise MembershipError(refusal)
        if snapshot.member(node) is not None:
            return False
        ops: list[Op] = [
            SetData(paths.roster, b"", version),
            Create(paths.roster_member(node), dump(entry.to_json())),
        ]
        if _committed(client.commit(ops, timeout)):
            return True
    raise MembershipError(f"the roster kept changing while {node} joined: try again")


def leave(
    client: ZooKeeper, paths: ClusterPaths, node: str, force: bool, timeout: float = 5.0
) -> bool:
    """Remove a node from the roster; True if removed, False if it was not a member."""
    validate_leaving(node)
    for _ in range(ATTEMPTS):
        try:
            version = _roster_version(client, paths, timeout)
        except NoNodeError:
            return False  # no such cluster yet: nobody to remove
        snapshot = zk.read_snapshot(client, paths, timeout)
        if snapshot.member(node) is None:
            return False
        refusal = leave_refusal(snapshot, node)
        if refusal and not force:
            raise MembershipError(refusal)
        ops: list[Op] = [SetData(paths.roster, b"", version), Delete(paths.roster_member(node))]
        if _committed(client.commit(ops, timeout)):
            return True
    raise MembershipError(f"the roster kept changing while {node} left: try again")


def _roster_version(client: ZooKeeper, paths: ClusterPaths, timeout: float) -> int:
    """The roster znode's data version: every join and leave bumps it."""
    _data, stat = client.get(paths.roster, timeout=timeout)
    return stat.version


def _committed(outcome: Outcome) -> bool:
    """True if the transaction applied; False if the roster moved on (check again)."""
    failure = outcome.failure
    if failure is None:
        return True
    results = outcome.results
    if isinstance(results[0], BadVersionError) or any(
        isinstance(r, NodeExistsError | NoNodeError) for r in results[1:]
    ):
        return False
    raise failure[1]
