"""Alert rule for clusters declared over data centers: pure, from a health report's sites and
the cluster's open `datacenter_lost` alert to the alert changes.

- `datacenter_lost` is open while any site is lost; its detail names each lost site first
  ("dc1 (0/2 nodes live, 0/2 ZooKeeper servers serving)"), and is updated as sites go and
  come; it is cleared when none is lost.
- `datacenter_back` is raised when a site the open `datacenter_lost` alert named is no longer
  lost (its nodes rejoined as followers): a person closes it (`acknowledge`), so a return is
  never missed between two looks at the console; a later return adds its site to the open one.
- A report without sites (no data centers declared) changes neither.
"""

from __future__ import annotations

from collections.abc import Sequence

from contract.datacenters import DatacenterState
from contract.messages import AlertKind, DatacenterHealth
from mission_control.service.rules.alerts import AlertChanges

SEPARATOR = "; "


def describe(site: DatacenterHealth) -> str:
    """`dc1 (2/2 nodes live, 1/2 ZooKeeper servers serving)`."""
    parts = [] if site.witness else [f"{site.nodes_live}/{site.nodes_total} nodes live"]
    if site.zookeeper_reachable is not None:
        parts.append(f"{site.zookeeper_reachable}/{site.zookeeper_total} ZooKeeper servers serving")
    kind = " (witness)" if site.witness else ""
    return f"{site.name}{kind} ({', '.join(parts) or 'state unknown'})"


def named_sites(detail: str | None) -> frozenset[str]:
    """The site names a `datacenter_lost` or `datacenter_back` detail lists (each part starts
    with the name; names hold no spaces)."""
    if not detail:
        return frozenset()
    return frozenset(part.split(" ", 1)[0] for part in detail.split(SEPARATOR) if part)


def datacenter_alerts(
    sites: Sequence[DatacenterHealth] | None,
    open_lost: str | None,
    open_back: str | None = None,
) -> AlertChanges:
    """The changes a health report's `sites` makes, given the details of the cluster's open
    `datacenter_lost` and `datacenter_back` alerts (None: not open)."""
    if sites is None:
        return {}
    lost = [s for s in sites if s.state is DatacenterState.LOST]
    lost_names = {s.name for s in lost}
    changes: dict[AlertKind, str | None] = {
        AlertKind.DATACENTER_LOST: SEPARATOR.join(describe(s) for s in lost) or None
    }
    was_lost = named_sites(open_lost)
    back = [s for s in sites if s.name in was_lost and s.name not in lost_names]
    if back:
        earlier = named_sites(open_back) - {s.name for s in back}
        parts = [p for p in (open_back or "").split(SEPARATOR) if named_sites(p) <= earlier]
        changes[AlertKind.DATACENTER_BACK] = SEPARATOR.join(
            [*(p for p in parts if p), *(describe(s) for s in back)]
        )
    return changes
