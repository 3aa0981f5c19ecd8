"""Reading query strings and posted forms into pydantic models (pure but for the 400 it raises).

Guarantees: a field that does not validate gets a 400 page naming it and its problem, before
any service is called, so bad input changes nothing. Forms reuse the staff API's own request
models (`mission_control.staff_protocol`), so the console accepts exactly what the API accepts.
Empty form fields count as absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from contract.validation import first_error
from mission_control.service.fleet.admin import MAX_HOST_UNITS
from mission_control.staff_protocol import AccessRequestCreate, CommandCreate

M = TypeVar("M", bound=BaseModel)


def parse_fields(model: type[M], fields: Mapping[str, Any]) -> M:
    """`fields` as `model`, or a 400 naming the first bad field."""
    try:
        return model.model_validate(dict(fields))
    except ValidationError as error:
        where, message = first_error(error, "form")
        raise web.HTTPBadRequest(text=f"invalid {where}: {message}") from None


def pick(form: Mapping[str, Any], names: Iterable[str]) -> dict[str, str]:
    """The named text fields of a posted form that are present and not blank."""
    picked: dict[str, str] = {}
    for name in names:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            picked[name] = value.strip()
    return picked


def access_request(form: Mapping[str, Any]) -> AccessRequestCreate:
    return parse_fields(AccessRequestCreate, pick(form, ("cluster", "reason", "role", "duration")))


def command(form: Mapping[str, Any]) -> CommandCreate:
    fields: dict[str, Any] = pick(form, ("command",))
    arguments: dict[str, Any] = pick(form, ("key", "value", "lines", "env", "user_tag"))
    # A form carries text; the API's model takes the number of lines as a JSON number would.
    lines = arguments.get("lines")
    if isinstance(lines, str) and lines.isdigit():
        arguments["lines"] = int(lines)
    fields["arguments"] = arguments
    return parse_fields(CommandCreate, fields)


class LicenseForm(BaseModel):
    """The cluster page's license form: host units and the last valid day."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    host_units: float = Field(ge=0, le=MAX_HOST_UNITS, allow_inf_nan=False)
    expires: date


def license_form(form: Mapping[str, Any]) -> LicenseForm:
    return parse_fields(LicenseForm, pick(form, ("host_units", "expires")))


def parse_time(text: str) -> datetime:
    """A time typed in the console (UTC): ISO 8601 with an offset, or without one."""
    text = text.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("expected a UTC time such as 2030-06-10T14:00") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class AuditFilter(BaseModel):
    """The audit page's query string: who, cluster, action, and a time window (UTC): from
    `since` (inclusive) to `until` (exclusive)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    actor: str = Field(default="", max_length=128)
    cluster: str = Field(default="", max_length=128)
    action: str = Field(default="", max_length=64)
    since: datetime | None = None
    until: datetime | None = None

    @field_validator("actor", "cluster", "action")
    @classmethod
    def _trim(cls, value: str) -> str:
        return value.strip()

    @field_validator("since", "until", mode="before")
    @classmethod
    def _time(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_time(value) if value.strip() else None
        return value

    @field_validator("until")
    @classmethod
    def _after_since(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        since = info.data.get("since")
        if value is not None and since is not None and value <= since:
            raise ValueError("must be later than since")
        return value

    @property
    def active(self) -> bool:
        return bool(self.actor or self.cluster or self.action or self.since or self.until)
