"""Pure parts of the cluster's exchange with Mission Control: consumption hours, refusals, the
outbox bound, the license view and the quota enforced after a long outage (no servers)."""

from __future__ import annotations

import pytest

from cluster.link import outbox
from cluster.link.licensing import (
    Enforcement,
    decide_enforcement,
    growth_refusal,
    host_units,
    license_line,
    license_view,
    roster_host_units,
)
from cluster.link.messages import due_hours, link_problem, refusal_action
from cluster.link.settings import DAY, HOUR, Link, OutboxBound, check_outage_limit_days
from cluster.model import ClusterSnapshot, Epoch, LiveMember, RosterEntry
from contract.resources import UNMEASURED

GIB = 1 << 30
T0 = 1_900_000_000.0  # some time; hours below are relative to it
LINK = Link(url="https://mc", cluster_id="c1", enrolled_at=T0)


def snapshot(live: dict[str, int], roster: list[str] | None = None) -> ClusterSnapshot:
    """`live`: node -> memory in GiB; `roster`: every member (default: the live ones)."""
    members = roster if roster is not None else list(live)
    return ClusterSnapshot(
        cluster="c",
        roster=tuple(
            RosterEntry(n, "dc1", f"127.0.0.1:{9000 + i}", 0) for i, n in enumerate(members)
        ),
        live=tuple(
            LiveMember(n, "1.0", 0, UNMEASURED.replaced(memory_total_bytes=gib * GIB))
            for n, gib in live.items()
        ),
        leader=None,
        epoch=Epoch(1, 0),
    )


# --- consumption ---------------------------------------------------------------------------


def test_due_hours_follow_the_mark_once_each() -> None:
    now = 100 * HOUR + 600
    assert due_hours(None, now) == [99 * HOUR]  # first run: the last full hour
    assert due_hours(99 * HOUR, now) == [99 * HOUR]
    assert due_hours(100 * HOUR, now) == []  # the mark is current: nothing again
    assert due_hours(96 * HOUR, now) == [96 * HOUR, 97 * HOUR, 98 * HOUR, 99 * HOUR]
    assert due_hours(0.0, now, cap=2) == [98 * HOUR, 99 * HOUR]


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "action"),
    [
        (409, "stale_epoch", "fenced"),
        (409, "message_id_reused", "set_aside"),
        (400, "malformed_json", "set_aside"),
        (413, "body_too_large", "set_aside"),
        (422, "invalid_request", "set_aside"),
        (401, "unauthorized", "link"),
        (403, "forbidden", "link"),
        (404, "not_found", "link"),
        (405, "method_not_allowed", "link"),
    ],
)
def test_only_content_refusals_set_a_message_aside(status: int, code: str, action: str) -> None:
    assert refusal_action(status, code) == action


def test_link_problems_say_what_to_do() -> None:
    state, line = link_problem(401, "401 unauthorized: unknown cluster credential")
    assert state == "credential refused" and "enroll again" in line
    assert link_problem(404, "x")[0] == "cluster unknown"
    assert link_problem(403, "x")[0] == "forbidden"
    assert link_problem(405, "x")[0] == "refused (405)"


# --- the outbox bound ----------------------------------------------------------------------


def names(*kinds: tuple[str, float]) -> list[str]:
    """Znode names as ZooKeeper would give them, sequence numbers in the order given."""
    return [f"{outbox.prefix_for(kind, at)}{i:010d}" for i, (kind, at) in enumerate(kinds)]


def test_sequence_orders_every_prefix() -> None:
    queued = ["m-0000000003", "h-7-0000000001", "l-0000000002", "m-0000000000"]
    assert outbox.in_order(queued) == [
        "m-0000000000",
        "h-7-0000000001",
        "l-0000000002",
        "m-0000000003",
    ]
    assert outbox.sequence_of("h-7-0000000001") == 1


def test_license_checks_coalesce_to_the_newest() -> None:
    queued = names(("license", 0), ("consumption", 0), ("license", 10))
    bound = outbox.Bound(recent=10, history_hours=10)
    assert outbox.excess(queued, bound) == [queued[0]]
    assert outbox.excess(queued, bound, adding=["l-"]) == [queued[0], queued[2]]


def test_health_checks_keep_the_recent_ones_and_one_per_hour() -> None:
    # Every 20 minutes for 10 hours, between consumption reports that are never dropped.
    kinds: list[tuple[str, float]] = []
    for i in range(30):
        kinds.append(("health", i * 1200.0))
        if i % 3 == 2:
            kinds.append(("consumption", i * 1200.0))
    queued = names(*kinds)
    bound = outbox.Bound(recent=4, history_hours=3)
    dropped = set(outbox.excess(queued, bound))
    kept = [n for n in queued if n not in dropped]
    health = [n for n in kept if n.startswith("h-")]
    assert [n for n in kept if n.startswith("m-")] == [n for n in queued if n.startswith("m-")]
    # The newest four, plus the first of each of the three newest older hours.
    newest = [n for n in queued if n.startswith("h-")][-4:]
    assert health[-4:] == newest
    history = health[:-4]
    assert [n.split("-")[1] for n in history] == ["6", "7", "8"]
    assert all(int(n.split("-")[2]) % 4 == 0 for n in history)  # the oldest of its hour
    # Applying the bound again changes nothing: it is stable.
    assert outbox.excess(kept, bound) == []


def test_the_bound_stays_flat_however_long_the_outage() -> None:
    bound = outbox.Bound(recent=6, history_hours=24)
    queued: list[str] = []
    seq = 0
    for step in range(24 * 12 * 5):  # five days of health checks every 5 minutes
        adding = [outbox.prefix_for("health", step * 300.0), "l-"]
        if step % 12 == 0:
            adding.append(outbox.prefix_for("consumption", step * 300.0))
        dropped = set(outbox.excess(queued, bound, adding))
        queued = [n for n in queued if n not in dropped]
        for prefix in adding:
            queued.append(f"{prefix}{seq:010d}")
            seq += 1
    kinds = [n[0] for n in queued]
    assert kinds.count("l") == 1
    assert kinds.count("h") <= 6 + 24
    assert kinds.count("m") == 24 * 5  # every consumption report is still there


def test_outbox_bound_from_link_config() -> None:
    bound = OutboxBound(recent_hours=24, history_days=30)
    assert bound.health_recent(120) == 720 and bound.history_hours == 720
    assert OutboxBound.from_json({"recent_hours": -1, "history_days": "x"}) == OutboxBound()
    assert OutboxBound.from_json({"history_days": 0}).history_hours == 0


# --- link config ---------------------------------------------------------------------------


def test_outage_limit_is_read_and_validated() -> None:
    config = {"mission_control": {"url": "https://mc", "cluster_id": "c1", "outage_limit_days": 2}}
    link = Link.from_config(config)
    assert link is not None and link.outage_limit == 2 * DAY
    config["mission_control"]["outage_limit_days"] = -3  # hand-edited: the default applies
    link = Link.from_config(config)
    assert link is not None and link.outage_limit == 14 * DAY
    assert check_outage_limit_days(0.5) == 0.5
    for bad in (0, -1, 366, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="outage limit"):
            check_outage_limit_days(bad)


# --- license view and enforcement ----------------------------------------------------------

VALID = {"state": "valid", "expires": "2031-01-01", "days_left": 400, "quotas": {"host_units": 3}}


def test_unverified_counts_from_enrollment_then_from_the_last_contact() -> None:
    assert license_view({}, None, T0)["state"] == "not enrolled"
    assert license_view({}, LINK, T0 + 60)["state"] == "unknown"  # just enrolled: not an outage
    assert license_view({}, LINK, T0 + 15 * DAY)["state"] == "unverified"
    state = {"license": VALID, "last_contact": T0 + 10 * DAY}
    assert license_view(state, LINK, T0 + 20 * DAY)["state"] == "valid"
    late = license_view(state, LINK, T0 + 25 * DAY)
    assert (late["state"], late["last_state"], late["quotas"]) == (
        "unverified",
        "valid",
        {"host_units": 3},
    )


def test_enforcement_is_active_while_unverified_or_expired() -> None:
    now = T0 + 30 * DAY
    view = license_view({"license": VALID, "last_contact": T0}, LINK, now)
    decided = decide_enforcement(view, LINK, 4.0, Enforcement(), now)
    assert decided.active and decided.since == now and decided.host_unit_quota == 3
    assert decided.over_quota and "no contact with Mission Control" in decided.reason
    later = decide_enforcement(view, LINK, 2.0, decided, now + HOUR)
    assert later.since == now and not later.over_quota  # `since` is kept while active
    expired = {**VALID, "state": "expired", "days_left": -1}
    in_contact = license_view({"license": expired, "last_contact": now}, LINK, now)
    assert decide_enforcement(in_contact, LINK, 1.0, Enforcement(), now).active
    back = license_view({"license": VALID, "last_contact": now}, LINK, now)
    assert decide_enforcement(back, LINK, 9.0, decided, now) == Enforcement()
    # Mission Control never had a license to send: no quota, so nothing to refuse.
    none = {"state": "expired", "expires": None, "quotas": {"host_units": 0}}
    unlicensed = license_view({"license": none, "last_contact": now}, LINK, now)
    assert decide_enforcement(unlicensed, LINK, 1.0, Enforcement(), now).host_unit_quota is None


def test_roster_host_units_count_absent_nodes_as_the_smallest_live_one() -> None:
    assert host_units(16 * GIB) == 1 and host_units(1) == 0.25 and host_units(20 * GIB) == 1.25
    snap = snapshot({"n1": 32, "n2": 16}, roster=["n1", "n2", "n3"])
    assert roster_host_units(snap) == 2 + 1 + 1
    assert roster_host_units(snap, joining="n4") == 5
    assert roster_host_units(snapshot({}), joining="n1") == 0.25


def test_growth_is_refused_only_over_the_enforced_quota() -> None:
    snap = snapshot({"n1": 16, "n2": 16, "n3": 16})
    enforced = Enforcement(True, T0, 3.0, 3.0, "license unverified: no contact")
    refusal = growth_refusal(enforced, snap, "n4")
    assert refusal is not None and "n4" in refusal and "quota of 3" in refusal
    assert "\n" not in refusal
    assert growth_refusal(enforced, snap, "n1") is None  # already a member: nothing grows
    assert growth_refusal(Enforcement(True, T0, 4.0, 3.0), snap, "n4") is None
    assert growth_refusal(Enforcement(True, T0, None, 3.0), snap, "n4") is None
    assert growth_refusal(Enforcement(), snap, "n4") is None


def test_status_line_shows_enforcement() -> None:
    enforced = Enforcement(True, T0, 3.0, 3.5, "license unverified")
    view = license_view({"license": VALID, "enforcement": enforced.to_json()}, LINK, T0)
    line = license_line(view)
    assert line.startswith("valid, expires 2031-01-01, 3 host units")
    assert "enforcing 3 host units (3.5 in use" in line
    assert Enforcement.from_json(enforced.to_json()) == enforced
    assert Enforcement.from_json("garbage") == Enforcement()
