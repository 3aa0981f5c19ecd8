"""What each staff role may do (`contract.messages.StaffRole`). Only support engineers may ask
for cluster access."""

from __future__ import annotations

# Re-exported for callers that read roles and their rules from one place.
from contract.messages import StaffRole as StaffRole


class UnknownRole(ValueError):
    """A role name that does not exist."""


_REQUESTERS = frozenset({StaffRole.SUPPORT_L2, StaffRole.SUPPORT_L3})


def parse_role(text: str) -> StaffRole:
    """The role named `text`, or `UnknownRole` with the list of valid names."""
    try:
        return StaffRole(text.strip().lower())
    except ValueError:
        names = ", ".join(r.value for r in StaffRole)
        raise UnknownRole(f"unknown staff role {text!r}: use one of {names}") from None


def can_request_access(role: StaffRole | str) -> bool:
    """True only for support-l2 and support-l3: operators and admins run Mission Control, they
    do not enter customer clusters."""
    try:
        return StaffRole(role) in _REQUESTERS
    except ValueError:
        return False


_REVOKERS = frozenset({StaffRole.SUPPORT_L3, StaffRole.OPERATOR, StaffRole.ADMIN})


def can_revoke_grants(role: StaffRole | str) -> bool:
    """support-l3, operators and admins may end any engineer's running grant at once (the
    engineer holding a grant ends it themselves)."""
    try:
        return StaffRole(role) in _REVOKERS
    except ValueError:
        return False


def can_manage_staff(role: StaffRole | str) -> bool:
    """Creating staff accounts and resetting credentials is for admins only."""
    try:
        return StaffRole(role) is StaffRole.ADMIN
    except ValueError:
        return False


_ALERT_OWNERS = frozenset({StaffRole.OPERATOR, StaffRole.ADMIN})


def can_acknowledge_alerts(role: StaffRole | str) -> bool:
    """Operators and admins, who run Mission Control, acknowledge the alerts only a person can
    close (`setting_changed`)."""
    try:
        return StaffRole(role) in _ALERT_OWNERS
    except ValueError:
        return False
