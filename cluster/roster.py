"""Joining and leaving the roster: validated, idempotent, and refused when it would break quorum."""

from __future__ import annotations

import time

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError

from cluster import zk
from cluster.errors import MembershipError
from cluster.model import ClusterSnapshot, RosterEntry, dump, quorum_of
from cluster.names import check_address, check_name
from cluster.paths import ClusterPaths


def validate_entry(node: str, datacenter: str, api_address: str) -> None:
    """Raise `MembershipError` with one clear line if any field is malformed."""
    try:
        check_name("node id", node)
        check_name("datacenter", datacenter)
        check_address(api_address)
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
    client: KazooClient, paths: ClusterPaths, node: str, datacenter: str, api_address: str
) -> bool:
    """Add a node to the roster; True if added, False if it was already there unchanged."""
    validate_entry(node, datacenter, api_address)
    zk.ensure_cluster(client, paths)
    entry = RosterEntry(node, datacenter, api_address, time.time())
    refusal = join_refusal(zk.read_snapshot(client, paths), entry)
    if refusal:
        raise MembershipError(refusal)
    try:
        client.create(paths.roster_member(node), dump(entry.to_json()))
    except NodeExistsError:
        return False
    return True


def leave(client: KazooClient, paths: ClusterPaths, node: str, force: bool) -> bool:
    """Remove a node from the roster; True if removed, False if it was not a member."""
    try:
        check_name("node id", node)
    except ValueError as e:
        raise MembershipError(str(e)) from e
    snapshot = zk.read_snapshot(client, paths)
    if snapshot.member(node) is None:
        return False
    refusal = leave_refusal(snapshot, node)
    if refusal and not force:
        raise MembershipError(refusal)
    try:
        client.delete(paths.roster_member(node))
    except NoNodeError:
        return False
    return True
