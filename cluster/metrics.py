"""Prometheus metrics of one node, in a registry of its own (daemons may share a process)."""

from __future__ import annotations

from typing import Any

from cluster.model import ClusterSnapshot


class _Ignore:
    def set(self, *_: Any) -> None: ...

    def inc(self, *_: Any) -> None: ...

    def observe(self, *_: Any) -> None: ...


class StartupMetrics:
    """Stands in until the node is live: prometheus_client (~0.1 s to import) stays off the
    start-up path, as the HTTP stack does. Updates made meanwhile are re-applied by the node."""

    registry = None

    def __getattr__(self, _name: str) -> _Ignore:
        return _Ignore()

    def observe(self, snap: ClusterSnapshot) -> None: ...


class NodeMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.is_leader = Gauge("managed_is_leader", "1 while this node holds the lock", registry=r)
        self.leader_work_active = Gauge(
            "managed_leader_work_active", "1 while leader-only work may run", registry=r
        )
        self.zk_connected = Gauge("managed_zookeeper_connected", "ZooKeeper session", registry=r)
        self.epoch = Gauge("managed_epoch", "the cluster epoch last seen", registry=r)
        self.roster = Gauge("managed_roster_members", "members of the roster", registry=r)
        self.live = Gauge("managed_live_members", "live members of the roster", registry=r)
        self.quorum_ok = Gauge(
            "managed_quorum_ok", "1 with quorum (majority, or one data center lost)", registry=r
        )
        self.elections = Counter(
            "managed_leader_elections_won", "times this node took leadership", registry=r
        )
        self.fenced_writes_refused = Counter(
            "managed_fenced_writes_refused", "leader writes refused by the epoch check", registry=r
        )
        self.loop_seconds = Histogram(
            "managed_loop_seconds", "duration of one node loop", registry=r
        )

    def observe(self, snap: ClusterSnapshot) -> None:
        q = snap.quorum
        self.epoch.set(snap.epoch.value)
        self.roster.set(len(snap.roster))
        self.live.set(q.have)
        self.quorum_ok.set(1 if q.ok else 0)
