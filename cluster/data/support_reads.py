"""Monitoring data for a remote-support command (`data sessions|actions|logs`), read by the
leader from every serving node and answered through Mission Control.

Guarantees: the leader reads with an internal token minted for this one command (valid a
minute, never stored) that names the engineer and carries the grant's `sensitive_data`, so the
nodes mask user tags exactly as they do for an operator without `sensitive-data`, unless the
approval said so explicitly. The output goes through the support redaction too, and is cut to
the support output limit. A node that did not answer is named in the summary.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.data import registry
from cluster.data.reader import DataReadError, read_all
from cluster.data.tokens import internal_key, mint_internal
from cluster.paths import ClusterPaths
from cluster.zk import ZooKeeper

LIMIT = 100


@dataclass(frozen=True)
class SupportDataReader:
    """What the leader needs to answer data commands: the cluster credential (the internal
    tokens' key) and the CA of the nodes' data certificates."""

    credential: str
    ca_file: Path | None

    def read(
        self,
        client: ZooKeeper,
        paths: ClusterPaths,
        kind: str,
        arguments: Mapping[str, Any],
        engineer: str,
        sensitive: bool,
    ) -> tuple[bool, str, str]:
        """(ok, summary, output) for `data <kind>`; errors are (False, reason, "")."""
        env = arguments.get("env")
        if not isinstance(env, str) or not env:
            return False, f"data {kind} needs an env", ""
        query = {"env": env, "limit": str(LIMIT)}
        tag = arguments.get("user_tag")
        if isinstance(tag, str) and tag:
            query["user_tag"] = tag
        nodes = registry.endpoints(client, paths)
        if not nodes:
            return False, "no node serves monitoring data", ""
        token = mint_internal(
            internal_key(self.credential), f"support:{engineer}", sensitive, time.time()
        )
        try:
            merged = read_all(nodes, kind, query, token, self.ca_file)
        except DataReadError as e:
            return False, str(e), ""
        rows = merged.rows[:LIMIT]
        shown = "unmasked (the grant includes sensitive data)" if sensitive else "masked"
        summary = f"{len(rows)} {kind} of {env} from {len(nodes) - len(merged.missing)} node(s)"
        summary += f", sensitive fields {shown}"
        if merged.missing:
            summary += f"; no answer from {', '.join(sorted(merged.missing))}"
        return True, summary, json.dumps(rows, indent=1, sort_keys=True)
