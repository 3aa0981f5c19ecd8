"""What verifying or fetching a release can end in, apart from success (light: no tuf import,
so a node's start-up does not load the TUF client)."""

from __future__ import annotations

from cluster.errors import ClusterError


class ReleaseUnavailable(ClusterError):
    """The release could not be had (not published, source unreachable): nothing was verified
    or refused, nothing is recorded."""


class ReleaseRefused(ClusterError):
    """A release that must not be installed; `kind` names why (see `cluster.upgrade.verify`)."""

    def __init__(self, kind: str, line: str) -> None:
        super().__init__(f"release refused ({kind}): {line}")
        self.kind = kind
        self.line = line
