"""Who did what: the actor and event description that every audit entry is made from.

Guarantees: every event names a person or, for automatic steps (expiry, policy decisions), the
`system` with the rule that acted. A service account (e.g. the Mission Control channel a request
arrived through) is recorded in `via`, never instead of the person.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from contract.audit.canonical import JsonValue, check_json_value, format_time


class ActorKind(StrEnum):
    """What kind of party acted."""

    ENGINEER = "support-engineer"
    OPERATOR = "cluster-operator"
    STAFF = "mission-control-staff"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """A named party: a human (engineer, operator, staff) or the system itself."""

    name: str
    kind: ActorKind
    via: str | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("an audit actor needs a name")
        object.__setattr__(self, "kind", ActorKind(self.kind))

    def to_json(self) -> dict[str, JsonValue]:
        return {"name": self.name, "kind": self.kind.value, "via": self.via}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Actor:
        return cls(name=str(data["name"]), kind=ActorKind(data["kind"]), via=data.get("via"))

    def __str__(self) -> str:
        suffix = f" via {self.via}" if self.via else ""
        return f"{self.name} ({self.kind.value}){suffix}"


SYSTEM = Actor("system", ActorKind.SYSTEM)


@dataclass(frozen=True)
class AuditEvent:
    """What happened, before it gets a place (seq, hashes) in a chain.

    `detail` is deep-copied and checked to be canonical JSON at construction, so an event that
    exists can always be appended.
    """

    at: datetime
    actor: Actor
    action: str
    cluster: str
    subject: str
    detail: Mapping[str, JsonValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        format_time(self.at)  # refuses naive datetimes early
        if not self.action:
            raise ValueError("an audit event needs an action")
        object.__setattr__(self, "detail", check_json_value(dict(self.detail)))
