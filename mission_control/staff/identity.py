"""Who is acting: a logged-in staff member, as every service and the audit log name them."""

from __future__ import annotations

from dataclasses import dataclass

from contract.audit.events import Actor, ActorKind
from contract.messages import StaffRole


@dataclass(frozen=True)
class StaffIdentity:
    """A staff member with the role their account has now (read at each request)."""

    user: str
    role: StaffRole

    @property
    def actor(self) -> Actor:
        """This person in audit entries; support engineers act as engineers on clusters."""
        kind = ActorKind.ENGINEER if self.role.startswith("support-") else ActorKind.STAFF
        return Actor(self.user, kind, via="mission-control")
