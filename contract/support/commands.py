"""What a grant allows: the support command set, the role matrix and the cluster's check.

Guarantees:
- Commands are application level only. None gives a shell, reads keys, tokens or credentials, or
  changes a secret setting; replies go through `redact` / `redact_config` before leaving the
  cluster.
- `authorize` is the single gate the cluster runs before executing anything: the grant must
  exist, belong to this cluster, be open (not revoked or ended, inside its window) and its role
  must allow the command. It returns a `Decision` with a readable reason either way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from contract.audit.canonical import JsonValue, format_time
from contract.audit.events import Actor, ActorKind, AuditEvent
from contract.support.policy import AccessRole
from contract.support.redaction import is_secret_key, redact, redact_config
from contract.support.requests import AccessGrant

__all__ = [
    "DATA_COMMANDS",
    "ROLE_COMMANDS",
    "Decision",
    "SupportCommand",
    "authorize",
    "check_config_key",
    "command_event",
    "redact",
    "redact_config",
]


class SupportCommand(StrEnum):
    DIAGNOSTICS = "diagnostics"
    CONFIG_GET = "config get"
    CONFIG_SET = "config set"
    LOGS_TAIL = "logs tail"
    #: Monitoring data read from every node: sensitive fields masked unless the grant's
    #: approval included sensitive data explicitly (`AccessGrant.sensitive_data`).
    DATA_SESSIONS = "data sessions"
    DATA_ACTIONS = "data actions"
    DATA_LOGS = "data logs"


DATA_COMMANDS = frozenset(
    {SupportCommand.DATA_SESSIONS, SupportCommand.DATA_ACTIONS, SupportCommand.DATA_LOGS}
)
_READ_ONLY = (
    frozenset({SupportCommand.DIAGNOSTICS, SupportCommand.CONFIG_GET, SupportCommand.LOGS_TAIL})
    | DATA_COMMANDS
)
ROLE_COMMANDS: dict[AccessRole, frozenset[SupportCommand]] = {
    AccessRole.VIEWER: _READ_ONLY,
    AccessRole.USER: _READ_ONLY | {SupportCommand.CONFIG_SET},
    AccessRole.ADMIN: _READ_ONLY | {SupportCommand.CONFIG_SET},
}


@dataclass(frozen=True)
class Decision:
    """Whether a command may run, and why (logged either way)."""

    allowed: bool
    reason: str

    @classmethod
    def allow(cls, reason: str) -> Decision:
        return cls(True, reason)

    @classmethod
    def refuse(cls, reason: str) -> Decision:
        return cls(False, reason)


def authorize(grant: AccessGrant | None, command: str, cluster_id: str, now: datetime) -> Decision:
    """Decide whether `command` may run on cluster `cluster_id` at `now` under `grant`."""
    if grant is None:
        return Decision.refuse("no access grant")
    if grant.cluster_id != cluster_id:
        return Decision.refuse(f"grant {grant.grant_id} is for cluster {grant.cluster_id}")
    try:
        wanted = SupportCommand(command)
    except ValueError:
        known = ", ".join(c.value for c in SupportCommand)
        return Decision.refuse(f"unknown command {command!r} (known: {known})")
    if grant.closed_at is not None:
        return Decision.refuse(
            f"grant {grant.grant_id} was closed at {format_time(grant.closed_at)}"
            + (f" ({grant.close_reason})" if grant.close_reason else "")
        )
    if now < grant.starts_at:
        return Decision.refuse(f"grant {grant.grant_id} starts at {format_time(grant.starts_at)}")
    if now >= grant.ends_at:
        return Decision.refuse(f"grant {grant.grant_id} expired at {format_time(grant.ends_at)}")
    if wanted not in ROLE_COMMANDS[grant.role]:
        return Decision.refuse(f"role {grant.role.value} does not allow {wanted.value}")
    return Decision.allow(
        f"{grant.engineer} may run {wanted.value} as {grant.role.value} "
        f"until {format_time(grant.ends_at)}"
    )


def check_config_key(key: str) -> Decision:
    """`config set` never touches secrets: refuse keys that name one (passwords, tokens...)."""
    if not key.strip():
        return Decision.refuse("config set needs a key")
    if is_secret_key(key):
        return Decision.refuse(f"{key} is a secret setting; support access cannot change it")
    return Decision.allow(f"{key} may be changed")


def _tag_hashed(arguments: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """A data command's user tag (a customer's e-mail, say) enters the audit log as a hash."""
    tag = arguments.get("user_tag")
    if not isinstance(tag, str):
        return arguments
    return {**arguments, "user_tag": "sha256:" + hashlib.sha256(tag.encode()).hexdigest()[:16]}


def command_event(
    grant: AccessGrant | None,
    engineer: str,
    command: str,
    cluster_id: str,
    decision: Decision,
    now: datetime,
    *,
    arguments: dict[str, JsonValue] | None = None,
    result_summary: str | None = None,
) -> AuditEvent:
    """The audit event for a command attempt (refused or run), naming the engineer.

    Arguments and the summary are redacted before they are recorded; a user tag is recorded
    as a hash.
    """
    detail: dict[str, JsonValue] = {
        "command": command,
        "allowed": decision.allowed,
        "reason": decision.reason,
        "grant": grant.grant_id if grant is not None else None,
        "role": grant.role.value if grant is not None else None,
        "arguments": redact_config(_tag_hashed(arguments or {})),
    }
    if result_summary is not None:
        detail["result"] = redact(result_summary)
    action = "support.command" if decision.allowed else "support.command.refused"
    subject = grant.request_id if grant is not None else "-"
    return AuditEvent(now, Actor(engineer, ActorKind.ENGINEER), action, cluster_id, subject, detail)
