"""What a console user may see and do, decided by the staff role alone (pure).

Guarantees: the templates show a control only when the ability is true, and every handler
behind such a control checks the same ability (or the service it calls refuses), so hiding a
button is never the only protection.

- Remote-access controls (request access, run commands, end a grant) are for support-l2/l3
  only (`mission_control.staff.roles.can_request_access`); operators and admins see requests
  read-only, as oversight.
- License editing is for operators and admins; support engineers see the license read-only.
- Acknowledging an alert only a person closes (setting_changed) is for operators and admins
  (`mission_control.staff.roles.can_acknowledge_alerts`).
- Pausing and resuming a fleet rollout is for operators and admins, like license editing.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.messages import StaffRole
from mission_control.staff.roles import can_acknowledge_alerts, can_request_access

_LICENSE_EDITORS = frozenset({StaffRole.OPERATOR, StaffRole.ADMIN})


def can_edit_license(role: StaffRole | str) -> bool:
    try:
        return StaffRole(role) in _LICENSE_EDITORS
    except ValueError:
        return False


@dataclass(frozen=True)
class Abilities:
    request_access: bool
    edit_license: bool
    see_every_request: bool
    acknowledge_alerts: bool
    steer_rollouts: bool

    @classmethod
    def of(cls, role: StaffRole | str) -> Abilities:
        engineer = can_request_access(role)
        return cls(
            request_access=engineer,
            edit_license=can_edit_license(role),
            see_every_request=not engineer,
            acknowledge_alerts=can_acknowledge_alerts(role),
            steer_rollouts=can_edit_license(role),  # the same people: operators and admins
        )
