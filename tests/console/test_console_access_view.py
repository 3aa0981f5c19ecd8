"""Pure rules of the remote-access and audit pages: who sees which controls, which commands a
grant can run now, when a page reloads itself, and how forms are read."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from mission_control.console import forms
from mission_control.console.abilities import Abilities
from mission_control.console.access_view import is_running, refresh_after, runnable_commands
from mission_control.console.audit_page import detail_items
from mission_control.staff_protocol import AccessRequestView, CommandView

NOW = datetime(2030, 6, 10, 12, 0, tzinfo=UTC)


def refusal(call: Callable[..., object], *args: object) -> str:
    """The text of the 400 page `call(*args)` raises."""
    with pytest.raises(web.HTTPBadRequest) as raised:
        call(*args)
    return str(raised.value.text)


def view(state: str = "approved", role: str = "viewer", **changes: Any) -> AccessRequestView:
    grant = None
    if state in ("approved", "revoked", "ended"):
        grant = {
            "id": "g1",
            "role": role,
            "starts_at": NOW - timedelta(minutes=10),
            "ends_at": NOW + timedelta(minutes=50),
            "approved_by": "carol",
            "closed_at": None if state == "approved" else NOW,
            "closed_by": None if state == "approved" else "carol",
            "close_reason": None,
        }
    data = {
        "id": "r1",
        "cluster_id": "c1",
        "cluster_name": "acme",
        "engineer": "alice",
        "engineer_role": "support-l2",
        "reason": "ticket",
        "role": role,
        "duration_seconds": 3600,
        "requested_at": NOW - timedelta(hours=1),
        "state": state,
        "pending_until": NOW + timedelta(days=3),
        "decided_at": None,
        "decided_by": None,
        "note": None,
        "grant": grant,
        "awaiting_cluster": False,
        **changes,
    }
    return AccessRequestView.model_validate(data)


def command(status: str) -> CommandView:
    return CommandView.model_validate(
        {
            "id": "k1",
            "request_id": "r1",
            "cluster_id": "c1",
            "engineer": "alice",
            "command": "diagnostics",
            "arguments": {},
            "issued_at": NOW,
            "status": status,
            "summary": None,
            "output": None,
            "answered_at": None,
        }
    )


@pytest.mark.parametrize(
    ("role", "request_access", "edit_license", "see_every_request", "acknowledge"),
    [
        ("support-l2", True, False, False, False),
        ("support-l3", True, False, False, False),
        ("operator", False, True, True, True),
        ("admin", False, True, True, True),
        ("nobody", False, False, True, False),
    ],
)
def test_abilities_follow_the_role(
    role: str, request_access: bool, edit_license: bool, see_every_request: bool, acknowledge: bool
) -> None:
    # steering rollouts goes with editing licenses: operators and admins
    expected = Abilities(request_access, edit_license, see_every_request, acknowledge, edit_license)
    assert Abilities.of(role) == expected


def test_only_the_engineer_runs_commands_the_grant_role_allows_inside_the_window() -> None:
    assert runnable_commands(view(role="viewer"), "alice", NOW) == [
        "diagnostics",
        "config get",
        "logs tail",
        "data sessions",
        "data actions",
        "data logs",
    ]
    assert runnable_commands(view(role="user"), "alice", NOW)[-1] == "config set"
    assert runnable_commands(view(), "bob", NOW) == []
    assert runnable_commands(view("pending"), "alice", NOW) == []
    assert runnable_commands(view("revoked"), "alice", NOW) == []
    assert runnable_commands(view(), "alice", NOW + timedelta(hours=1)) == []  # window over
    assert not is_running(view(), NOW - timedelta(minutes=11))  # before the window
    assert is_running(view(), NOW)


def test_pages_refresh_quickly_while_waiting_slowly_while_running_never_when_final() -> None:
    def after(v: AccessRequestView, *cmds: CommandView, at: datetime = NOW) -> int | None:
        return refresh_after(v, cmds, at, quick_s=5, slow_s=60)

    assert after(view("pending")) == 5
    assert after(view()) == 60
    assert after(view(), command("queued")) == 5
    assert after(view(), command("ok")) == 60
    assert after(view(), at=NOW + timedelta(minutes=49, seconds=30)) == 31  # the window's end
    assert after(view("ended", awaiting_cluster=True)) == 5
    for final in ("denied", "expired", "revoked", "ended"):
        assert after(view(final), command("queued")) is None


def test_forms_reuse_the_api_rules_and_name_the_bad_field() -> None:
    body = forms.access_request(
        {"cluster": " acme ", "reason": "ticket 1", "role": "user", "duration": "1h30m", "x": "y"}
    )
    assert body.cluster == "acme" and body.duration_delta == timedelta(minutes=90)
    assert re.search(
        "invalid reason: Field required",
        refusal(
            lambda: forms.access_request(
                {"cluster": "acme", "reason": "  ", "role": "user", "duration": "1h"}
            )
        ),
    )
    assert re.search(
        "invalid role",
        refusal(
            lambda: forms.access_request(
                {"cluster": "acme", "reason": "r", "role": "root", "duration": "1h"}
            )
        ),
    )
    tail = forms.command({"command": "logs tail", "lines": "200", "key": ""})
    assert tail.argument_map() == {"lines": 200}
    data = forms.command({"command": "data sessions", "env": "prod", "user_tag": " "})
    assert data.argument_map() == {"env": "prod"}
    assert re.search("needs arguments.env", refusal(forms.command, {"command": "data logs"}))
    assert re.search(
        "config set needs", refusal(lambda: forms.command({"command": "config set", "key": "a.b"}))
    )
    assert re.search("invalid command", refusal(forms.command, {"command": "shell"}))
    assert forms.license_form({"host_units": "12.5", "expires": "2031-02-28"}).host_units == 12.5
    for bad in ({"host_units": "nan", "expires": "2031-02-28"}, {"host_units": "1"}):
        assert re.search("invalid (host_units|expires)", refusal(forms.license_form, bad))


def test_audit_filter_times_are_utc() -> None:
    query = forms.parse_fields(forms.AuditFilter, {"since": "2030-06-10T14:00", "actor": " a "})
    assert query.since == datetime(2030, 6, 10, 14, 0, tzinfo=UTC) and query.actor == "a"
    offset = forms.parse_fields(forms.AuditFilter, {"since": "2030-06-10T16:00+02:00"})
    assert offset.since == datetime(2030, 6, 10, 14, 0, tzinfo=UTC)
    assert forms.parse_fields(forms.AuditFilter, {"since": ""}).since is None
    assert not forms.parse_fields(forms.AuditFilter, {}).active
    assert re.search(
        "invalid since: expected a UTC time",
        refusal(lambda: forms.parse_fields(forms.AuditFilter, {"since": "last week"})),
    )


def test_audit_details_read_as_sorted_pairs() -> None:
    assert detail_items({"role": "viewer", "arguments": {"lines": 5}, "allowed": True}) == [
        ("allowed", "true"),
        ("arguments", '{"lines": 5}'),
        ("role", "viewer"),
    ]
