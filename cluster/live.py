"""This node's live znode: one ephemeral znode per ZooKeeper session, carrying its health.

Guarantees: only the current session creates or refreshes the znode; a znode left by an earlier
session of this node (a quick restart) is never touched: the node waits for it to expire, since
a paused process holding that session might still exist. Every call is bounded (its timeout) and
blocking, for the daemon's executor. A failing health probe is reported in the znode
(`health_error`) and in `/status`, never raised.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cluster.health import HealthProbe
from cluster.model import ClusterSnapshot, dump, resources_json
from cluster.paths import ClusterPaths
from cluster.version import VERSION
from cluster.zk import ZooKeeper
from cluster.zk.errors import NodeExistsError

log = logging.getLogger(__name__)


class LiveRegistration:
    def __init__(self, paths: ClusterPaths, node: str, data_dir: Path, started_at: float) -> None:
        self.node = node
        self.path = paths.live_member(node)
        self.probe = HealthProbe(data_dir)
        self.started_at = started_at
        self.session = 0  # the session whose znode is registered; 0 when none is

    def data(self) -> bytes:
        figures = self.probe()
        doc: dict[str, Any] = {
            "version": VERSION,
            "started_at": self.started_at,
            "health": resources_json(figures),
        }
        if self.probe.error:
            doc["health_error"] = self.probe.error
        return dump(doc)

    def publish(
        self, client: ZooKeeper, snap: ClusterSnapshot, session_id: int, timeout: float
    ) -> bool:
        """Create or refresh the znode; True when it was just created (worth a fresh read)."""
        mine = snap.live_member(self.node)
        if mine is not None and mine.session_id == session_id:
            client.set(self.path, self.data(), timeout=timeout)
            self.session = session_id
            return False
        if mine is not None:
            log.info("live znode held by an earlier session of this node: waiting for it to expire")
            return False
        try:
            client.create(self.path, self.data(), ephemeral=True, timeout=timeout)
        except NodeExistsError:
            return True  # created meanwhile (by this session's earlier try, or an older one)
        self.session = session_id
        log.info("registered live as %s", self.node)
        return True

    def remove(self, client: ZooKeeper, timeout: float) -> None:
        """Delete the znode this session registered (on a clean exit)."""
        if self.session:
            client.delete(self.path, timeout=timeout)
        self.session = 0
