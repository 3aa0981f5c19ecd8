"""The nodes of a cluster's last health report, as `clusters.last_health` keeps them.

The health ingest stores each `contract.messages.NodeHealth` of the report as its JSON form
(`to_stored`); readers get the same models back (`from_stored`), never raw dicts. Fields a
newer cluster added are dropped on reading; a report that no longer validates as a whole (say,
written before a field became required) reads as unknown (None) rather than failing a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from contract.messages import DatacenterHealth, NodeHealth


def to_stored(nodes: Sequence[NodeHealth]) -> list[dict[str, Any]]:
    """The JSON value stored for a report's nodes."""
    return [n.model_dump(mode="json") for n in nodes]


def from_stored(stored: object) -> list[NodeHealth] | None:
    """The nodes of a stored report, or None when there is none or it cannot be read."""
    if not isinstance(stored, list) or not all(isinstance(n, dict) for n in stored):
        return None
    known = NodeHealth.model_fields
    try:
        return [
            NodeHealth.model_validate({k: v for k, v in n.items() if k in known}) for n in stored
        ]
    except ValidationError:
        return None


def sites_to_stored(
    sites: Sequence[DatacenterHealth] | None, quorum_rule: str | None
) -> dict[str, Any] | None:
    """The JSON value stored for a report's data centers (None: none declared)."""
    if sites is None:
        return None
    return {"quorum_rule": quorum_rule, "sites": [s.model_dump(mode="json") for s in sites]}


def sites_from_stored(stored: object) -> tuple[list[DatacenterHealth], str | None]:
    """The sites and quorum rule of a stored report; ([], None) when there are none or they
    cannot be read (fields a newer cluster added are dropped)."""
    if not isinstance(stored, dict) or not isinstance(stored.get("sites"), list):
        return [], None
    known = DatacenterHealth.model_fields
    rule = stored.get("quorum_rule")
    try:
        sites = [
            DatacenterHealth.model_validate({k: v for k, v in s.items() if k in known})
            for s in stored["sites"]
            if isinstance(s, dict)
        ]
    except ValidationError:
        return [], None
    return sites, rule if isinstance(rule, str) else None
