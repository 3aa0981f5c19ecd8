"""The cluster's support setting (`support.mode` and its limits) and duration parsing.

Guarantees: a `SupportPolicy` that exists is valid (positive limits, at least one role allowed,
no grant longer than `HARD_MAX_GRANT`). It is parsed from, and written back to, the plain mapping
stored in the cluster config; every error is a single `PolicyError` line naming the setting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from contract.support.errors import PolicyError
from contract.validation import first_error

HARD_MAX_GRANT = timedelta(days=7)
DEFAULT_PENDING_TTL = timedelta(days=4)

_DURATION_PART = re.compile(r"(\d+)([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class SupportMode(StrEnum):
    OFF = "off"
    APPROVAL = "approval"
    ALLOWED = "allowed"


class AccessRole(StrEnum):
    """Application roles a grant can carry, from least to most powerful."""

    VIEWER = "viewer"
    USER = "user"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    def covers(self, other: AccessRole) -> bool:
        """True when this role is at least as powerful as `other`."""
        return self.rank >= other.rank


_ROLE_RANK = {AccessRole.VIEWER: 0, AccessRole.USER: 1, AccessRole.ADMIN: 2}


def parse_duration(text: str) -> timedelta:
    """Parse `30m`, `4h`, `2d`, `1h30m` (units d, h, m, s); refuse zero, signs and junk."""
    cleaned = text.strip().lower()
    if not cleaned or _DURATION_PART.sub("", cleaned):
        raise PolicyError(f"invalid duration {text!r}: use a number and a unit, like 30m, 4h, 2d")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(cleaned))
    if seconds <= 0:
        raise PolicyError(f"invalid duration {text!r}: must be longer than zero")
    return timedelta(seconds=seconds)


def format_duration(duration: timedelta) -> str:
    """The shortest `parse_duration` text for a whole number of seconds (`1d2h`, `90s`)."""
    remaining = int(duration.total_seconds())
    if remaining <= 0:
        return "0s"
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _as_duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    return value


class SupportPolicy(BaseModel):
    """`support.*` in the cluster config.

    - `mode`: off (refuse every request, still logged), approval (an operator decides),
      allowed (approve at once, logged).
    - `max_grant`: longest window a grant may have; longer requests are capped, not refused.
    - `allowed_roles`: roles that may be requested at all.
    - `preapproved`: engineers whose requests are approved at once in `approval` mode.
    - `pending_ttl`: how long a request may wait for a decision.
    - `approver_groups`: when set, approving, denying and revoking need the operator's
      `managed login` at `approver_issuer` (client `approver_client_id`), verified, in one of
      these groups; the decision then names the verified person.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: SupportMode = SupportMode.APPROVAL
    max_grant: timedelta = HARD_MAX_GRANT
    allowed_roles: frozenset[AccessRole] = frozenset(AccessRole)
    preapproved: frozenset[str] = frozenset()
    pending_ttl: timedelta = DEFAULT_PENDING_TTL
    approver_groups: frozenset[str] = frozenset()
    approver_issuer: str = ""
    approver_client_id: str = ""

    @field_validator("max_grant", "pending_ttl", mode="before")
    @classmethod
    def _parse_durations(cls, value: Any) -> Any:
        return _as_duration(value)

    @field_validator("max_grant")
    @classmethod
    def _check_max_grant(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0) or value > HARD_MAX_GRANT:
            raise ValueError(f"must be between 1s and {format_duration(HARD_MAX_GRANT)}")
        return value

    @field_validator("pending_ttl")
    @classmethod
    def _check_pending_ttl(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value

    @field_validator("allowed_roles")
    @classmethod
    def _check_roles(cls, value: frozenset[AccessRole]) -> frozenset[AccessRole]:
        if not value:
            raise ValueError("at least one role must be allowed (use mode off to refuse all)")
        return value

    @field_validator("preapproved")
    @classmethod
    def _check_names(cls, value: frozenset[str]) -> frozenset[str]:
        if any(not name.strip() for name in value):
            raise ValueError("engineer names must not be empty")
        return value

    @model_validator(mode="after")
    def _check_approvers(self) -> SupportPolicy:
        if self.approver_groups and not (
            self.approver_issuer.startswith("https://") and self.approver_client_id
        ):
            raise ValueError(
                "approver groups need approver_issuer (https://...) and approver_client_id"
            )
        return self

    @field_serializer("max_grant", "pending_ttl")
    def _write_duration(self, value: timedelta) -> str:
        return format_duration(value)

    @field_serializer("allowed_roles", "preapproved", "approver_groups")
    def _write_set(self, value: frozenset[str]) -> list[str]:
        return sorted(str(v) for v in value)

    @classmethod
    def from_config(cls, data: Mapping[str, Any] | None) -> SupportPolicy:
        """Parse the stored mapping (missing keys take defaults); one-line `PolicyError` if bad."""
        try:
            return cls.model_validate(dict(data or {}))
        except ValidationError as exc:
            where, message = first_error(exc, "support")
            raise PolicyError(f"invalid support setting {where}: {message}") from None

    def to_config(self) -> dict[str, Any]:
        """The mapping to store; `from_config(to_config())` returns an equal policy."""
        return self.model_dump(mode="json")

    def cap_duration(self, requested: timedelta) -> timedelta:
        return min(requested, self.max_grant)
