"""Validation of what operators type: node ids, datacenters, cluster names, HOST:PORT, and
ZooKeeper credentials."""

from __future__ import annotations

import re

NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
ADDRESS_RE = re.compile(r"(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):(?P<port>[0-9]{1,5})")
# A backup names its parts after nodes, plus one part for the cluster's ZooKeeper subtree.
RESERVED_NODE_IDS = frozenset({"zookeeper"})


def check_name(kind: str, value: str) -> str:
    """A node id, datacenter or cluster name: lowercase letters, digits and '-', 1-63 chars."""
    if not NAME_RE.fullmatch(value):
        raise ValueError(
            f"{kind} {value!r} is invalid: use 1-63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit"
        )
    return value


def check_node_id(value: str) -> str:
    """A node id a new node may take: a valid name that is not reserved."""
    check_name("node id", value)
    if value in RESERVED_NODE_IDS:
        raise ValueError(
            f"node id {value!r} is reserved (it names the ZooKeeper part of a backup): "
            "choose another"
        )
    return value


def check_address(value: str) -> tuple[str, int]:
    """HOST:PORT with a port in 1-65535."""
    m = ADDRESS_RE.fullmatch(value)
    if not m or not 0 < int(m.group("port")) < 65536:
        raise ValueError(f"address {value!r} is invalid: expected HOST:PORT with a port 1-65535")
    return m.group("host").strip("[]"), int(m.group("port"))


def check_credential(value: str) -> str:
    """A ZooKeeper digest credential: USER:PASSWORD with a non-empty user."""
    user, sep, _password = value.partition(":")
    if not sep or not user:
        raise ValueError("the ZooKeeper credential must be USER:PASSWORD")
    return value
