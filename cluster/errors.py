"""The cluster layer's exceptions; the CLI turns each into one line on stderr."""

from __future__ import annotations


class ClusterError(Exception):
    """Base of every error a cluster operator can cause or see."""


class ConfigError(ClusterError):
    """A setting is missing or invalid."""


class ZooKeeperUnavailable(ClusterError):
    """ZooKeeper could not be reached (or lost its quorum) within the time allowed."""


class MembershipError(ClusterError):
    """A roster change was refused (malformed, conflicting, or it would break quorum)."""


class FencedOut(ClusterError):
    """A leader write failed its epoch check: another leader has taken over."""


class DataDirError(ClusterError):
    """A node's data directory is in use or belongs to another node."""


class ZooKeeperAuthFailed(ClusterError):
    """ZooKeeper refused the digest credential (`--zk-auth`)."""


class ListenError(ClusterError):
    """The node API could not listen on its address (in use, or not an address of this host)."""
