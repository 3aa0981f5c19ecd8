"""One health shape from the probe to Mission Control: `contract.resources.NodeResources`."""

from __future__ import annotations

import json

import pytest

from cluster.link.messages import health_nodes
from cluster.model import ClusterSnapshot, Epoch, LiveMember, RosterEntry, parse_resources
from contract.messages import HealthReport, NodeHealth
from contract.resources import UNMEASURED, NodeResources

FIGURES = {
    "cpu_cores": 8,
    "cpu_percent": 12.5,
    "memory_total_bytes": 64 << 30,
    "memory_used_bytes": 8 << 30,
    "disk_total_bytes": 1 << 40,
    "disk_used_bytes": 1 << 30,
}


def test_live_znode_figures_parse_into_the_wire_model() -> None:
    assert parse_resources(FIGURES) == NodeResources(**FIGURES)


def test_a_node_of_the_previous_version_is_still_read() -> None:
    legacy = {
        "cpu_count": 8,
        "cpu_percent": 12.5,
        "memory_total": 64 << 30,
        "memory_used": 8 << 30,
        "disk_total": 1 << 40,
        "disk_used": 1 << 30,
    }
    assert parse_resources(legacy) == NodeResources(**FIGURES)


def test_figures_that_are_missing_or_out_of_range_read_as_unmeasured() -> None:
    assert parse_resources(None) is None
    assert parse_resources({"cpu_cores": 4}) is None
    assert parse_resources({**FIGURES, "memory_used_bytes": (64 << 30) + 1}) is None


def test_the_leader_reports_every_roster_node_in_the_wire_shape() -> None:
    live = LiveMember("a", "2.0", 0.0, NodeResources(**FIGURES))
    quiet = LiveMember("b", "", 0.0, None)
    snap = ClusterSnapshot(
        cluster="c",
        roster=(
            RosterEntry("a", "dc1", "127.0.0.1:1", 0),
            RosterEntry("b", "dc1", "127.0.0.1:2", 0),
            RosterEntry("c", "", "127.0.0.1:3", 0),
        ),
        live=(live, quiet),
        leader=None,
        epoch=Epoch(1, 1),
        config={},
    )
    a, b, c = health_nodes(snap)
    assert a.model_dump(include=set(FIGURES)) == FIGURES and a.state == "healthy"
    assert b.memory_total_bytes == 0 and b.version == "unknown" and b.state == "healthy"
    assert c.state == "down" and c.datacenter is None
    assert c.model_dump(include=set(FIGURES)) == UNMEASURED.to_json()
    assert c.resources == UNMEASURED and a.resources == NodeResources(**FIGURES)
    # What the leader builds is what Mission Control parses.
    report = {
        "message_id": "6f1c1b9e-2c7b-4c1e-9a51-0a4f3d1f2b10",
        "epoch": 1,
        "nodes": [json.loads(n.model_dump_json()) for n in (a, b, c)],
    }
    assert HealthReport.model_validate(report).nodes == [a, b, c]


def test_the_report_carries_exactly_the_resource_fields_checked_the_same_way() -> None:
    resource_fields = set(NodeResources.__dataclass_fields__)
    assert resource_fields <= set(NodeHealth.model_fields)
    for bad in (
        {"cpu_cores": 0},
        {"cpu_percent": 100.5},
        {"memory_used_bytes": (64 << 30) + 1},
        {"disk_total_bytes": 2**53},
        {"cpu_cores": True},
    ):
        with pytest.raises(ValueError):
            NodeResources(**{**FIGURES, **bad})
        with pytest.raises(ValueError):
            NodeHealth(**{**FIGURES, **bad}, node="a", version="1", state="healthy")
