"""The cluster's own view of its license, and the quota it enforces when it cannot verify it.

Guarantees:
- `license_view` is what `managed cluster status` and `managed mc status` show: the last license
  reply from Mission Control, or `unverified` once the cluster has had no contact for longer
  than its outage limit (14 days by default), counted from the last contact or, before any
  contact, from enrollment.
- `decide_enforcement` (pure): while the license is `unverified` or `expired`, enforcement is
  active with the last known host-unit quota. The leader records the decision in the exchange
  state (`enforcement` key, a fenced write; see `cluster.link.state`).
- `growth_refusal` (pure) and `quota_refusal` (reads ZooKeeper): while enforcement is active
  with a known quota, `managed node join` refuses a node that would take the roster's host
  units over the quota. Host units come from node memory (`host_units`); a node that is not
  live (or not yet running, like the one joining) counts as the smallest live node.

Does not guarantee: that a join racing the leader's change of enforcement sees the change (the
check reads the recorded state once, right before the roster write). Nodes already in the
roster are never stopped: enforcement only refuses growth.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cluster.link.settings import DAY, Link
from cluster.link.state import read_state
from cluster.model import ClusterSnapshot, LiveMember
from cluster.paths import ClusterPaths
from cluster.zk import ZooKeeper

GIB = 1 << 30
HOST_UNIT_BYTES = 16 * GIB  # one host unit per 16 GiB of memory
MIN_HOST_UNITS = 0.25
ENFORCED_STATES = ("unverified", "expired")


def host_units(memory_total: int) -> float:
    """Host units of one node: its memory in units of 16 GiB, in quarters, at least 0.25."""
    return max(MIN_HOST_UNITS, math.ceil(4 * memory_total / HOST_UNIT_BYTES) / 4)


def member_host_units(member: LiveMember) -> float:
    """Host units of a live node (the minimum while it has measured nothing yet)."""
    return host_units(member.health.memory_total_bytes if member.health else 0)


def cluster_host_units(snap: ClusterSnapshot) -> float:
    """Host units of the live nodes: what the license check reports as in use."""
    return sum(member_host_units(m) for m in snap.live)


def roster_host_units(snap: ClusterSnapshot, joining: str | None = None) -> float:
    """Host units of the roster (plus `joining`): live nodes by their memory, every other node
    as the smallest live node (at least `MIN_HOST_UNITS`)."""
    live = {m.node: member_host_units(m) for m in snap.live}
    smallest = min(live.values(), default=MIN_HOST_UNITS)
    nodes = {e.node for e in snap.roster} | set(live) | ({joining} if joining else set())
    return sum(live.get(n, smallest) for n in nodes)


def license_view(state: Mapping[str, Any], link: Link | None, now: float) -> dict[str, Any]:
    """The license as the cluster sees it: the last reply, or `unverified` after a long outage;
    with `enforcement` when the leader recorded one."""
    if link is None:
        return {"state": "not enrolled"}
    lic = dict(state.get("license") or {})
    last = state.get("last_contact")
    since = last if isinstance(last, int | float) else link.enrolled_at
    enforcement = Enforcement.from_json(state.get("enforcement"))
    # The leader's record counts too (its clock decided), until a contact after it.
    recorded = (
        enforcement.active
        and enforcement.license_state == "unverified"
        and enforcement.since is not None
        and not (isinstance(last, int | float) and last >= enforcement.since)
    )
    outage = recorded or (since is not None and now - since > link.outage_limit)
    view: dict[str, Any]
    if outage:
        view = {**lic, "state": "unverified", "last_state": lic.get("state")}
    elif lic:
        view = lic
    else:
        view = {"state": "unknown"}
    view["last_contact"] = last
    if enforcement.active:
        view["enforcement"] = enforcement.to_json()
    return view


@dataclass(frozen=True)
class Enforcement:
    """What the cluster enforces on its own: recorded by the leader, read by `node join`."""

    active: bool = False
    since: float | None = None
    host_unit_quota: float | None = None  # None: no quota known, nothing is refused
    host_units_in_use: float = 0.0
    reason: str = ""
    license_state: str = ""  # why: "unverified" or "expired"

    @property
    def over_quota(self) -> bool:
        quota = self.host_unit_quota
        return self.active and quota is not None and self.host_units_in_use > quota

    def to_json(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "since": self.since,
            "host_unit_quota": self.host_unit_quota,
            "host_units_in_use": self.host_units_in_use,
            "reason": self.reason,
            "license_state": self.license_state,
        }

    @classmethod
    def from_json(cls, d: Any) -> Enforcement:
        if not isinstance(d, dict):
            return cls()

        def number(key: str) -> float | None:
            value = d.get(key)
            return float(value) if isinstance(value, int | float) else None

        return cls(
            active=d.get("active") is True,
            since=number("since"),
            host_unit_quota=number("host_unit_quota"),
            host_units_in_use=number("host_units_in_use") or 0.0,
            reason=str(d.get("reason") or ""),
            license_state=str(d.get("license_state") or ""),
        )


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def _reason(view: Mapping[str, Any], link: Link) -> str:
    if view.get("state") == "unverified":
        last = view.get("last_contact")
        when = f"since {_day(last)}" if isinstance(last, int | float) else "since enrollment"
        return (
            f"license unverified: no contact with Mission Control {when} "
            f"(limit {link.outage_limit / DAY:g} days)"
        )
    expires = view.get("expires")
    return f"license expired{f' after {expires}' if expires else ''}"


def decide_enforcement(
    view: Mapping[str, Any],
    link: Link,
    in_use: float,
    previous: Enforcement,
    now: float,
) -> Enforcement:
    """Enforcement for a license `view` (from `license_view`) and `in_use` host units.

    Active while the license is unverified or expired; the quota is the last one Mission
    Control sent with a license (none when it never had a license to send); `since` is kept
    from `previous` while enforcement stays active.
    """
    if view.get("state") not in ENFORCED_STATES:
        return Enforcement()
    quotas = view.get("quotas")
    quota = quotas.get("host_units") if isinstance(quotas, dict) else None
    known = isinstance(quota, int | float) and view.get("expires") is not None
    return Enforcement(
        active=True,
        since=previous.since if previous.active and previous.since is not None else now,
        host_unit_quota=float(quota) if known and quota is not None else None,
        host_units_in_use=in_use,
        reason=_reason(view, link),
        license_state=str(view.get("state")),
    )


def growth_refusal(enforcement: Enforcement, snap: ClusterSnapshot, node: str) -> str | None:
    """Why `node` may not join under `enforcement` (None: it may)."""
    quota = enforcement.host_unit_quota
    if not enforcement.active or quota is None or snap.member(node) is not None:
        return None
    total = roster_host_units(snap, joining=node)
    if total <= quota:
        return None
    return (
        f"cannot add {node}: {enforcement.reason or 'the license is enforced locally'}; with it "
        f"the cluster would use {total:g} host units, over its quota of {quota:g} "
        "(restore contact with Mission Control or renew the license first)"
    )


def read_enforcement(client: ZooKeeper, paths: ClusterPaths) -> Enforcement:
    """The enforcement the leader recorded (inactive when none is recorded)."""
    return Enforcement.from_json(read_state(client, paths).get("enforcement"))


def quota_refusal(
    client: ZooKeeper, paths: ClusterPaths, snap: ClusterSnapshot, node: str
) -> str | None:
    """`growth_refusal` with the recorded enforcement: the check `node join` makes."""
    if snap.member(node) is not None:
        return None  # already in the roster: a repeated join adds nothing
    return growth_refusal(read_enforcement(client, paths), snap, node)


def license_line(view: Mapping[str, Any]) -> str:
    """One line for `cluster status`: state, expiry, quota, and enforcement when active."""
    parts = [str(view.get("state"))]
    if view.get("expires"):
        parts.append(f"expires {view['expires']}")
    quotas = view.get("quotas")
    quota = quotas.get("host_units") if isinstance(quotas, dict) else None
    if isinstance(quota, int | float):
        parts.append(f"{quota:g} host units")
    enforcement = Enforcement.from_json(view.get("enforcement"))
    if enforcement.active:
        parts.append(enforcement_text(enforcement))
    return ", ".join(parts)


def enforcement_text(enforcement: Enforcement) -> str:
    """`enforcing 3 host units (3.5 in use: growth refused)` or `not enforcing`."""
    if not enforcement.active:
        return "not enforcing"
    quota = enforcement.host_unit_quota
    if quota is None:
        return "enforcing: no quota known (nothing refused)"
    verdict = "over quota: no node may join" if enforcement.over_quota else "joins up to it"
    return f"enforcing {quota:g} host units ({enforcement.host_units_in_use:g} in use: {verdict})"
