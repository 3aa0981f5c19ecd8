"""The ZooKeeper errors the cluster catches, named here so that no other module imports kazoo.

ZooKeeper's own error classes are passed through unchanged (not wrapped): a caller catches
`NoNodeError` from `cluster.zk.errors` and gets exactly what the server answered. The one
translation the boundary makes is the time-out: a request ZooKeeper did not answer in time
raises `cluster.errors.ZooKeeperUnavailable` (see `cluster.zk.client`).

Does not: turn these into domain errors; each layer above catches what it can act on and says
it in its own words (the CLI turns the rest into one line).
"""

from __future__ import annotations

from kazoo.exceptions import (
    AuthFailedError,
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    LockTimeout,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    RolledBackError,
    SessionExpiredError,
)

#: The base of every error ZooKeeper (or the client library) raises.
ZooKeeperError = KazooException

#: The connection broke and was not recovered: whether a write in flight applied is unknown.
CONNECTION_LOST: tuple[type[Exception], ...] = (
    ConnectionLoss,
    ConnectionClosedError,
    SessionExpiredError,
)

__all__ = [
    "CONNECTION_LOST",
    "AuthFailedError",
    "BadVersionError",
    "ConnectionClosedError",
    "ConnectionLoss",
    "LockTimeout",
    "NoAuthError",
    "NoNodeError",
    "NodeExistsError",
    "OperationTimeoutError",
    "RolledBackError",
    "SessionExpiredError",
    "ZooKeeperError",
]
