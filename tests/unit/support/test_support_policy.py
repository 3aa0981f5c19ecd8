"""Support policy: durations, validation with one-line errors, and the stored mapping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.support.errors import PolicyError
from contract.support.policy import (
    DEFAULT_PENDING_TTL,
    HARD_MAX_GRANT,
    AccessRole,
    SupportMode,
    SupportPolicy,
    format_duration,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("4h", timedelta(hours=4)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(minutes=90)),
        (" 90S ", timedelta(seconds=90)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "4", "h", "4 h", "-4h", "4hours", "0m", "1.5h", "4h!"])
def test_parse_duration_refuses_junk(text: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_duration(text)
    assert "\n" not in str(err.value)


@given(st.integers(min_value=1, max_value=10**7))
def test_format_then_parse_round_trips(seconds: int) -> None:
    duration = timedelta(seconds=seconds)
    assert parse_duration(format_duration(duration)) == duration


def test_defaults() -> None:
    policy = SupportPolicy.from_config(None)
    assert policy.mode is SupportMode.APPROVAL
    assert policy.pending_ttl == DEFAULT_PENDING_TTL == timedelta(days=4)
    assert policy.max_grant == HARD_MAX_GRANT
    assert policy.allowed_roles == frozenset(AccessRole)
    assert policy.preapproved == frozenset()


def test_from_config_parses_and_round_trips() -> None:
    policy = SupportPolicy.from_config(
        {
            "mode": "allowed",
            "max_grant": "4h",
            "allowed_roles": ["viewer", "user"],
            "preapproved": ["bob"],
            "pending_ttl": "1d",
        }
    )
    assert policy.max_grant == timedelta(hours=4)
    assert policy.allowed_roles == {AccessRole.VIEWER, AccessRole.USER}
    stored = policy.to_config()
    assert stored == {
        "mode": "allowed",
        "max_grant": "4h",
        "allowed_roles": ["user", "viewer"],
        "preapproved": ["bob"],
        "pending_ttl": "1d",
        "approver_groups": [],
        "approver_issuer": "",
        "approver_client_id": "",
    }
    assert SupportPolicy.from_config(stored) == policy


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"mode": "sometimes"}, "mode"),
        ({"max_grant": "8d"}, "max_grant"),
        ({"max_grant": "soon"}, "max_grant"),
        ({"pending_ttl": "0s"}, "pending_ttl"),
        ({"allowed_roles": []}, "allowed_roles"),
        ({"allowed_roles": ["root"]}, "allowed_roles"),
        ({"preapproved": [" "]}, "preapproved"),
        ({"colour": "blue"}, "colour"),
        ({"approver_groups": ["ops"], "approver_client_id": "cli"}, "approver_issuer"),
        ({"approver_groups": ["ops"], "approver_issuer": "http://idp"}, "approver_issuer"),
    ],
)
def test_bad_settings_give_one_line(config: dict[str, object], fragment: str) -> None:
    with pytest.raises(PolicyError) as err:
        SupportPolicy.from_config(config)
    message = str(err.value)
    assert fragment in message and "\n" not in message
    assert message.startswith("invalid support setting")


def test_roles_are_ordered() -> None:
    assert AccessRole.ADMIN.covers(AccessRole.USER)
    assert AccessRole.USER.covers(AccessRole.USER)
    assert not AccessRole.VIEWER.covers(AccessRole.USER)


def test_cap_duration() -> None:
    policy = SupportPolicy(max_grant=timedelta(hours=2))
    assert policy.cap_duration(timedelta(hours=5)) == timedelta(hours=2)
    assert policy.cap_duration(timedelta(hours=1)) == timedelta(hours=1)
