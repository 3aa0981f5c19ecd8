"""Wire models of the staff API for remote support: login, access requests, commands, audit.

Same rules as `contract.messages`: requests refuse unknown fields and validate ranges
before anything is stored; replies ignore unknown fields.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

from contract.limits import MAX_LOG_LINES
from contract.messages import (
    AccessRoleName,
    CommandName,
    Reply,
    Request,
    StaffRole,
    Time,
)
from contract.support.errors import PolicyError
from contract.support.policy import HARD_MAX_GRANT, format_duration, parse_duration
from contract.support.settable import MAX_VALUE_LENGTH

RequestState = Literal["pending", "approved", "denied", "expired", "revoked", "ended"]


def _named(value: str) -> str:
    """A username with a character that is not white space: the audit log names who tried
    (an actor's name must not be blank), so a blank one is refused as invalid."""
    if not value.strip():
        raise ValueError("a username needs a character that is not white space")
    return value


class LoginRequest(Request):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    totp: str = Field(min_length=1, max_length=16, description="The current 6-digit TOTP code.")

    _username = field_validator("username")(_named)


class DirectoryLoginRequest(Request):
    username: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
    password: str = Field(min_length=1, max_length=1024)
    totp: str = Field(
        default="", max_length=16, description="The TOTP code: required for support roles."
    )

    _username = field_validator("username")(_named)


class LoginReply(Reply):
    token: str = Field(description="Bearer token for the staff API; shown once.")
    user: str
    role: StaffRole
    expires_at: datetime


class LogoutReply(Reply):
    logged_out: bool


class AccessRequestCreate(Request):
    cluster: str = Field(min_length=1, max_length=128, description="Cluster id or name.")
    reason: str = Field(min_length=1, max_length=2000)
    role: AccessRoleName
    duration: str | StrictInt = Field(description="Seconds, or a duration such as 4h or 1h30m.")

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason is required: say what you need to look at")
        return value

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | int) -> int:
        try:
            if isinstance(value, int) or value.isdigit():
                seconds = int(value)
            else:
                seconds = int(parse_duration(value).total_seconds())
        except PolicyError as error:
            raise ValueError(str(error)) from None
        if seconds <= 0:
            raise ValueError("must be longer than zero")
        if seconds > HARD_MAX_GRANT.total_seconds():
            raise ValueError(f"at most {format_duration(HARD_MAX_GRANT)}")
        return seconds

    @property
    def duration_delta(self) -> timedelta:
        return timedelta(seconds=int(self.duration))


class AccessRequestQuery(Request):
    cluster: str | None = Field(default=None, max_length=128, description="Cluster id or name.")


class GrantView(Reply):
    id: str
    role: AccessRoleName
    starts_at: datetime
    ends_at: datetime
    approved_by: str
    closed_at: datetime | None
    closed_by: str | None
    close_reason: str | None
    sensitive_data: bool = Field(
        default=False, description="The approval lets the engineer see sensitive data."
    )


class AccessRequestView(Reply):
    id: str
    cluster_id: str
    cluster_name: str
    engineer: str
    engineer_role: StaffRole
    reason: str
    role: AccessRoleName
    duration_seconds: int
    requested_at: datetime
    state: RequestState
    pending_until: datetime
    decided_at: datetime | None
    decided_by: str | None
    note: str | None = Field(description="The decision's reason (a denial's, for example).")
    grant: GrantView | None
    awaiting_cluster: bool = Field(
        description="True while the cluster has not yet confirmed a state set here."
    )


class AccessRequestList(Reply):
    requests: list[AccessRequestView]


#: A `config set` value: the same rule as the cluster's (`contract.support.settable`).
ConfigValue = str | StrictBool | StrictInt | None
ArgumentValue = str | StrictBool | StrictInt | None


class RevokeRequest(Request):
    reason: str | None = Field(default=None, max_length=2000, description="Shown to the engineer.")


class CommandArguments(Request):
    key: str | None = Field(default=None, min_length=1, max_length=256)
    value: ConfigValue = Field(
        default=None,
        description="config set: a string (at most 1024 characters), an integer, a boolean or "
        "null (null clears the setting).",
    )
    lines: StrictInt | None = Field(default=None, ge=1, le=MAX_LOG_LINES)
    env: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9-]{0,31}$",
        description="data sessions|actions|logs: the environment (required).",
    )
    user_tag: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="data sessions|actions: only this person's (shown masked unless the grant "
        "includes sensitive data).",
    )

    @field_validator("value")
    @classmethod
    def _value(cls, value: ConfigValue) -> ConfigValue:
        if isinstance(value, str) and (
            len(value) > MAX_VALUE_LENGTH or any(ord(c) < 32 for c in value)
        ):
            raise ValueError(f"at most {MAX_VALUE_LENGTH} printable characters")
        return value


class CommandCreate(Request):
    command: CommandName
    arguments: CommandArguments = Field(default_factory=CommandArguments)

    @model_validator(mode="after")
    def _needed_arguments(self) -> CommandCreate:
        args = self.arguments
        has_value = "value" in args.model_fields_set
        if self.command == "config set":
            if args.key is None or not has_value:
                raise ValueError("config set needs arguments.key and arguments.value")
        elif has_value:
            raise ValueError(f"{self.command} takes no value")
        is_data = self.command.startswith("data ")
        if is_data and args.env is None:
            raise ValueError(f"{self.command} needs arguments.env")
        if not is_data and (args.env is not None or args.user_tag is not None):
            raise ValueError(f"{self.command} takes no env or user_tag")
        return self

    def argument_map(self) -> dict[str, ArgumentValue]:
        """The arguments given (a `config set` null value is kept: it clears the setting)."""
        return self.arguments.model_dump(exclude_unset=True)


class CommandView(Reply):
    id: str
    request_id: str
    cluster_id: str
    engineer: str
    command: CommandName
    arguments: dict[str, ArgumentValue]
    issued_at: datetime
    status: Literal["queued", "ok", "refused", "error"]
    summary: str | None
    output: str | None = Field(description="As the cluster sent it (already redacted).")
    answered_at: datetime | None


class CommandList(Reply):
    commands: list[CommandView]


class AuditQuery(Request):
    actor: str | None = Field(default=None, max_length=128)
    cluster: str | None = Field(default=None, max_length=128, description="Cluster id or name.")
    action: str | None = Field(default=None, max_length=64)
    since: Time | None = None
    limit: int = Field(default=1000, ge=1, le=10_000)


class AuditActor(Reply):
    name: str
    kind: str
    via: str | None


class AuditEntryView(Reply):
    seq: int
    at: datetime
    actor: AuditActor
    action: str
    cluster: str
    subject: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditList(Reply):
    entries: list[AuditEntryView] = Field(description="Newest first.")
