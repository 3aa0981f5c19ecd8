"""What the leader sends to Mission Control, and what a refusal means: pure functions.

- `health_body`, `consumption_bodies`, `environments` and `due_hours` build the health and
  consumption messages as `contract.messages` bodies
  from a snapshot (`due_hours` turns the consumption high-water mark into the full hours still
  to report, oldest first).
- `refusal_action` and `link_problem` read Mission Control's refusals (see `cluster.link.exchange`):
  only a stale epoch stops the exchange; only a refusal of a message's content sets that message
  aside; anything else is a problem of the link, and every message stays queued.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

from cluster.link.licensing import cluster_host_units
from cluster.link.settings import HOUR
from cluster.model import ClusterSnapshot
from contract.messages import (
    ConsumptionReportBody,
    DatacenterHealth,
    HealthReportBody,
    NodeHealth,
)
from contract.resources import UNMEASURED

MAX_REPORTED_INTERVAL = 7 * 86400.0  # what Mission Control accepts as a health interval


def health_nodes(snap: ClusterSnapshot) -> list[NodeHealth]:
    """Every roster node as the health report carries it: live nodes with their own figures
    (none yet: `UNMEASURED`), the others `down`."""
    nodes = []
    for e in snap.roster:
        m = snap.live_member(e.node)
        figures = (m.health if m else None) or UNMEASURED
        nodes.append(
            NodeHealth(
                cpu_cores=figures.cpu_cores,
                cpu_percent=figures.cpu_percent,
                memory_total_bytes=figures.memory_total_bytes,
                memory_used_bytes=figures.memory_used_bytes,
                disk_total_bytes=figures.disk_total_bytes,
                disk_used_bytes=figures.disk_used_bytes,
                node=e.node,
                datacenter=e.datacenter or None,
                leader=bool(snap.leader and snap.leader.node == e.node),
                version=((m.version if m else "") or "unknown")[:64],
                state="healthy" if m else "down",
            )
        )
    return nodes


def health_datacenters(
    snap: ClusterSnapshot, reachable: Mapping[str, bool] | None
) -> list[DatacenterHealth] | None:
    """Each declared site as the health report carries it (None: no data centers declared)."""
    if snap.topology is None:
        return None
    return [
        DatacenterHealth(
            name=v.name,
            witness=v.witness,
            nodes_live=v.nodes_live,
            nodes_total=v.nodes_total,
            zookeeper_reachable=v.zk_reachable,
            zookeeper_total=v.zk_total,
            state=v.state,
        )
        for v in snap.datacenters(reachable)
    ]


def health_body(
    snap: ClusterSnapshot, interval: float, reachable: Mapping[str, bool] | None = None
) -> HealthReportBody:
    """The health check: every roster node, how often the leader sends one, and with data
    centers declared each site (ZooKeeper servers `reachable` as the leader's probe found them)
    and the rule that gives quorum."""
    datacenters = health_datacenters(snap, reachable)
    return HealthReportBody(
        nodes=health_nodes(snap),
        health_interval_s=min(interval, MAX_REPORTED_INTERVAL),
        datacenters=datacenters,
        quorum_rule=snap.quorum_rule.reason if datacenters is not None else None,
    )


def consumption_bodies(snap: ClusterSnapshot, hours: list[float]) -> list[ConsumptionReportBody]:
    """One consumption report per environment for each full hour in `hours` (oldest first)."""
    return [
        ConsumptionReportBody(
            environment=env,
            period_start=datetime.fromtimestamp(start, UTC),
            host_units=units,
            host_unit_hours=units,
        )
        for start in hours
        for env, units in environments(snap).items()
    ]


def environments(snap: ClusterSnapshot) -> dict[str, float]:
    """Host units per environment: the config's `environments`, else one for the whole cluster."""
    configured = snap.config.get("environments")
    if isinstance(configured, dict) and configured:
        return {str(k): float(v) for k, v in configured.items() if isinstance(v, int | float)}
    return {"default": cluster_host_units(snap)}


def due_hours(reported_until: float | None, now: float, cap: int = 24 * 30) -> list[float]:
    """Starts of the full hours not yet reported, oldest first (at most `cap`)."""
    current = math.floor(now / HOUR) * HOUR
    start = current - HOUR if reported_until is None else reported_until
    hours = []
    t = max(start, current - cap * HOUR)
    while t < current:
        hours.append(t)
        t += HOUR
    return hours


def refusal_action(status: int, code: str) -> str:
    """What a refusal from Mission Control means for the outbox (pure).

    `fenced`: a newer leader spoke (409 stale_epoch): stop for this term. `set_aside`: this
    message's content was refused (400, 413, 422, other 409s such as message_id_reused): move it
    to outbox-dead. `link`: anything else (401, 403, 404, ...): keep every message, retry later.
    """
    if status == 409:
        return "fenced" if code == "stale_epoch" else "set_aside"
    if status in (400, 413, 422):
        return "set_aside"
    return "link"


_LINK_STATES = {401: "credential refused", 403: "forbidden", 404: "cluster unknown"}


def link_problem(status: int, detail: str) -> tuple[str, str]:
    """(link state, one clear line) for a link-level refusal."""
    state = _LINK_STATES.get(status, f"refused ({status})")
    advice = {
        401: "Mission Control no longer accepts this cluster's credential: enroll again",
        403: "the credential does not reach this cluster's records: check the enrollment",
        404: "Mission Control has no record of this cluster: enroll again",
    }.get(status, "check the Mission Control URL and version")
    return state, f"{advice} ({detail})"
