"""Asking the leader for a backup run or a restore drill, without loading the run models.

`managed backup run --wait` spends most of its start-up importing pydantic, the run records and
the backup library; none of that is needed to queue the request. This module (ZooKeeper, JSON
and the settings' presence check only) lets the command queue it first and import the rest
while the leader already starts the run.

Guarantees: `missing_setting` refuses exactly what `settings.plan_run` refuses for a missing
target, public key or signing key, with the same words (plan_run uses it); the full validation
is the leader's, which records a run it cannot plan as failed, with the reason.
"""

from __future__ import annotations

import json
import time
from typing import Any

from cluster import zk
from cluster.backups.errors import BackupConfigError
from cluster.paths import ClusterPaths
from cluster.zk import ZooKeeper

SECTION = "backup"
REQUEST_PREFIX = "r-"


def read_config(client: ZooKeeper, paths: ClusterPaths) -> tuple[dict[str, Any], int]:
    """The cluster config as a dict, and its znode version."""
    zk.ensure_cluster(client, paths)
    data, stat = client.get(paths.config)
    try:
        config = json.loads(data or b"{}")
    except ValueError as exc:
        raise BackupConfigError("the cluster config is not valid JSON") from exc
    if not isinstance(config, dict):
        raise BackupConfigError("the cluster config is not a JSON object")
    return config, int(stat.version)


def missing_setting(config: dict[str, Any]) -> str | None:
    """What the operator must do before a run can start, or None."""
    section = config.get(SECTION)
    settings = section if isinstance(section, dict) else {}
    if settings.get("target") is None:
        return "backups are not configured: run `managed backup configure`"
    if settings.get("public_key") is None:
        return "no backup public key: run `managed backup keygen FILE`"
    if settings.get("signing_public_key") is None:
        return "no cluster signing key: run `managed backup configure` again"
    return None


def queue_request(client: ZooKeeper, prefix: str, by: str) -> str:
    """A sequential request znode under `prefix` saying who asked and when; returns its name."""
    body = json.dumps({"by": by, "at": time.time()}).encode()
    created: str = client.create(prefix, body, sequence=True)
    return created.rsplit("/", 1)[1]


def request_run(client: ZooKeeper, paths: ClusterPaths, by: str) -> str:
    """Ask the leader for a run; returns the request's name (later in `RunRecord.requests`)."""
    for path in (paths.backup_runs, paths.backup_requests):
        client.ensure_path(path)
    return queue_request(client, f"{paths.backup_requests}/{REQUEST_PREFIX}", by)
