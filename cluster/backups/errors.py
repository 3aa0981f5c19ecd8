"""The orchestration's exceptions (cluster-layer errors: the CLI prints them as one line)."""

from __future__ import annotations

from cluster.errors import ClusterError


class BackupConfigError(ClusterError):
    """The backup settings are missing, malformed or outside the cluster's geography."""


class BackupRunError(ClusterError):
    """A run could not be started, followed or restored."""
