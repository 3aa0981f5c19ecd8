"""How an access request is shown (pure): which commands its grant can run now, and when the
page should refresh itself to show what the cluster decides.

Guarantees:
- `runnable_commands` is non-empty only for the requesting engineer, while the grant is
  approved, not closed and inside its window, and lists exactly the commands its role allows
  (`contract.support.commands.ROLE_COMMANDS`); the service checks all of it again on submit.
- `refresh_after` asks for a quick refresh while something is awaited from the cluster (a
  decision, a command's answer, the confirmation of an end), a slow one while a grant runs
  (to show a revocation or the end of the window), and none once the request is final.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from contract.support.commands import ROLE_COMMANDS, SupportCommand
from contract.support.policy import AccessRole
from mission_control.staff_protocol import AccessRequestView, CommandView

FINAL_STATES = frozenset({"denied", "expired", "revoked", "ended"})
COMMAND_ORDER = (
    SupportCommand.DIAGNOSTICS,
    SupportCommand.CONFIG_GET,
    SupportCommand.LOGS_TAIL,
    SupportCommand.DATA_SESSIONS,
    SupportCommand.DATA_ACTIONS,
    SupportCommand.DATA_LOGS,
    SupportCommand.CONFIG_SET,
)


def is_running(view: AccessRequestView, now: datetime) -> bool:
    """True while the grant is approved, not closed, and `now` is inside its window."""
    grant = view.grant
    return (
        view.state == "approved"
        and grant is not None
        and grant.closed_at is None
        and grant.starts_at <= now < grant.ends_at
    )


def runnable_commands(view: AccessRequestView, user: str, now: datetime) -> list[str]:
    """The commands `user` may queue under this request right now, in display order."""
    if view.engineer != user or view.grant is None or not is_running(view, now):
        return []
    allowed = ROLE_COMMANDS[AccessRole(view.grant.role)]
    return [c.value for c in COMMAND_ORDER if c in allowed]


def refresh_after(
    view: AccessRequestView,
    commands: Sequence[CommandView],
    now: datetime,
    *,
    quick_s: int,
    slow_s: int,
) -> int | None:
    """Seconds until the page should reload itself, or None when nothing can change."""
    waiting = view.state == "pending" or view.awaiting_cluster
    if any(c.status == "queued" for c in commands) and view.state not in FINAL_STATES:
        waiting = True
    if waiting:
        return quick_s
    if view.state == "approved" and view.grant is not None:
        left = (view.grant.ends_at - now).total_seconds()
        return max(1, min(slow_s, int(left) + 1))
    return None
