"""A data center's state, as both sides name it: the cluster computes it
(`cluster.datacenters`), the health report carries it, Mission Control alerts on it. A plain
enum (no pydantic), so a node loads it at start without the wire models."""

from __future__ import annotations

from enum import StrEnum

#: Data centers and witness sites a health report may list (a cluster declares two or three).
MAX_SITES = 16
#: ZooKeeper servers a site may list.
MAX_SITE_SERVERS = 64


class DatacenterState(StrEnum):
    OK = "ok"  # every node live, every ZooKeeper server serving
    DEGRADED = "degraded"  # something of it is down
    LOST = "lost"  # no node live (the witness: no ZooKeeper server serving)
