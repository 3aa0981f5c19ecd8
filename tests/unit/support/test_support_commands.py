"""The command gate: role/command matrix, grant checks, secret settings, audit of commands."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from contract.audit.events import Actor, ActorKind
from contract.support.commands import (
    ROLE_COMMANDS,
    SupportCommand,
    authorize,
    check_config_key,
    command_event,
)
from contract.support.policy import AccessRole
from contract.support.requests import AccessGrant

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=30)


def grant(role: AccessRole = AccessRole.VIEWER, **changes: object) -> AccessGrant:
    base = AccessGrant(
        grant_id="g1",
        request_id="r1",
        cluster_id="c1",
        engineer="erik",
        role=role,
        starts_at=T0,
        ends_at=T0 + timedelta(hours=1),
        approved_by=Actor("olga", ActorKind.OPERATOR),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


EXPECTED = {
    (AccessRole.VIEWER, SupportCommand.DIAGNOSTICS): True,
    (AccessRole.VIEWER, SupportCommand.CONFIG_GET): True,
    (AccessRole.VIEWER, SupportCommand.LOGS_TAIL): True,
    (AccessRole.VIEWER, SupportCommand.CONFIG_SET): False,
    (AccessRole.USER, SupportCommand.DIAGNOSTICS): True,
    (AccessRole.USER, SupportCommand.CONFIG_GET): True,
    (AccessRole.USER, SupportCommand.LOGS_TAIL): True,
    (AccessRole.USER, SupportCommand.CONFIG_SET): True,
    (AccessRole.ADMIN, SupportCommand.DIAGNOSTICS): True,
    (AccessRole.ADMIN, SupportCommand.CONFIG_GET): True,
    (AccessRole.ADMIN, SupportCommand.LOGS_TAIL): True,
    (AccessRole.ADMIN, SupportCommand.CONFIG_SET): True,
}


@pytest.mark.parametrize(("role", "command"), list(EXPECTED))
def test_role_command_matrix(role: AccessRole, command: SupportCommand) -> None:
    decision = authorize(grant(role), command.value, "c1", NOW)
    assert decision.allowed is EXPECTED[(role, command)]
    assert (command in ROLE_COMMANDS[role]) is decision.allowed
    if not decision.allowed:
        assert decision.reason == f"role {role.value} does not allow {command.value}"


@pytest.mark.parametrize(
    ("the_grant", "cluster", "now", "fragment"),
    [
        (None, "c1", NOW, "no access grant"),
        (grant(), "c2", NOW, "is for cluster c1"),
        (grant(closed_at=NOW, close_reason="revoked"), "c1", NOW, "closed at"),
        (grant(), "c1", T0 - timedelta(seconds=1), "starts at"),
        (grant(), "c1", T0 + timedelta(hours=1), "expired at"),
    ],
)
def test_grant_checks(
    the_grant: AccessGrant | None, cluster: str, now: datetime, fragment: str
) -> None:
    decision = authorize(the_grant, "diagnostics", cluster, now)
    assert not decision.allowed and fragment in decision.reason


@pytest.mark.parametrize("command", ["shell", "bash -c id", "keys export", "config  get", ""])
def test_unknown_commands_are_refused(command: str) -> None:
    decision = authorize(grant(AccessRole.ADMIN), command, "c1", NOW)
    assert not decision.allowed and "unknown command" in decision.reason


def test_allowed_decision_says_until_when() -> None:
    decision = authorize(grant(AccessRole.USER), "config set", "c1", NOW)
    assert decision.allowed
    assert decision.reason == "erik may run config set as user until 2025-03-01T13:00:00.000000Z"


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("backup.schedule", True),
        ("support.mode", True),
        ("health.interval", True),
        ("backup.s3.secret_access_key", False),
        ("mission_control.credential", False),
        ("smtp.password", False),
        ("apiToken", False),
        (" ", False),
    ],
)
def test_config_set_never_touches_secrets(key: str, allowed: bool) -> None:
    assert check_config_key(key).allowed is allowed


def test_command_event_names_engineer_and_redacts() -> None:
    decision = authorize(grant(AccessRole.USER), "config set", "c1", NOW)
    event = command_event(
        grant(AccessRole.USER),
        "erik",
        "config set",
        "c1",
        decision,
        NOW,
        arguments={"key": "smtp.host", "value": "smtp://u:hunter2@mail", "password": "x"},
        result_summary="set ok; token=abc123",
    )
    assert event.actor == Actor("erik", ActorKind.ENGINEER)
    assert event.action == "support.command" and event.subject == "r1"
    assert event.detail["arguments"] == {
        "key": "smtp.host",
        "value": "smtp://u:[REDACTED]@mail",
        "password": "[REDACTED]",
    }
    assert event.detail["result"] == "set ok; token=[REDACTED]"
    refused = command_event(None, "erik", "shell", "c1", authorize(None, "shell", "c1", NOW), NOW)
    assert refused.action == "support.command.refused" and refused.detail["grant"] is None


def test_results_always_fit_mission_controls_message() -> None:
    """A log line with NUL or an engineer's value with control characters must not make Mission
    Control refuse the result (it would be set aside and never reach the engineer)."""
    from cluster.support.runner import (
        MAX_OUTPUT_BYTES,
        CommandResult,
        CommandStatus,
        limit_output,
    )
    from contract.messages import MAX_OUTPUT_BYTES as MC_MAX_OUTPUT
    from contract.messages import SupportCommandResult

    assert MAX_OUTPUT_BYTES == MC_MAX_OUTPUT
    result = CommandResult(
        CommandStatus.REFUSED,
        "bad value 'a\x01b\x1b[31m'\tend\n" + "x" * 20_000,
        limit_output("\x00" * (MAX_OUTPUT_BYTES + 10), keep_end=True),
    )
    assert "\x01" not in result.summary and "\x1b" not in result.summary
    assert "\t" in result.summary and "\n" in result.summary
    assert "\x00" not in result.output and len(result.output.encode()) <= MAX_OUTPUT_BYTES
    SupportCommandResult.model_validate(
        {
            "epoch": 1,
            "message_id": "00000000-0000-0000-0000-000000000001",
            "command_id": "c1",
            "request_id": "r1",
            "status": result.status.value,
            "summary": result.summary,
            "output": result.output,
            "at": NOW,
        }
    )
