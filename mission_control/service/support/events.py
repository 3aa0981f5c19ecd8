"""Audit events Mission Control records for remote support; each names the person who acted.

Pure functions: they build `AuditEvent`s, the caller appends them in its transaction.
"""

from __future__ import annotations

from datetime import datetime

from contract.audit.canonical import JsonValue
from contract.audit.events import SYSTEM, Actor, ActorKind, AuditEvent
from contract.support.redaction import redact


def cluster_person(name: str) -> Actor:
    """The person a cluster names as decider: an operator, or `system` for automatic steps."""
    automatic = name == SYSTEM.name or name.startswith("support policy")
    kind = ActorKind.SYSTEM if automatic else ActorKind.OPERATOR
    return Actor(name, kind, via="cluster")


def system_event(
    cluster_id: str, subject: str, action: str, now: datetime, **detail: JsonValue
) -> AuditEvent:
    """An automatic step of Mission Control about a cluster (a key pinned, a message refused)."""
    return AuditEvent(now, SYSTEM, action, cluster_id, subject, dict(detail))


def result_event(
    engineer: str,
    cluster_id: str,
    request_id: str,
    command_id: str,
    command: str,
    status: str,
    summary: str,
    output_bytes: int,
    now: datetime,
) -> AuditEvent:
    """The cluster's answer to an engineer's command (summary redacted once more)."""
    detail: dict[str, JsonValue] = {
        "command_id": command_id,
        "command": command,
        "status": status,
        "summary": redact(summary),
        "output_bytes": output_bytes,
    }
    actor = Actor(engineer, ActorKind.ENGINEER, via="cluster")
    return AuditEvent(now, actor, "support.command.result", cluster_id, request_id, detail)
