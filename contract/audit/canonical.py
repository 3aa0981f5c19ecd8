"""Canonical byte encodings shared by everything that is hashed or signed.

Guarantees: the same logical value always encodes to the same bytes, on every node and in every
process, so a hash or signature computed on the cluster verifies on Mission Control.

- JSON: keys sorted, no insignificant whitespace, UTF-8, no NaN/Infinity. Only str, int, bool,
  None, lists and string-keyed objects are accepted; floats are refused because their textual
  form is not portable across implementations (store amounts as integers or strings).
- Times: timezone-aware datetimes only, rendered in UTC with microseconds and a `Z` suffix
  (`2024-05-01T12:00:00.000000Z`). Naive datetimes are refused: their meaning depends on the host.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

JsonValue = str | int | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


class CanonicalFormError(ValueError):
    """A value cannot be encoded canonically (float, naive datetime, non-string key...)."""


def check_json_value(value: Any, path: str = "detail") -> JsonValue:
    """Return a deep copy of `value` after checking it holds only canonical JSON types."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, list | tuple):
        return [check_json_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        copied: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalFormError(f"{path}: keys must be strings, got {key!r}")
            copied[key] = check_json_value(item, f"{path}.{key}")
        return copied
    raise CanonicalFormError(
        f"{path}: {type(value).__name__} is not allowed (use str, int, bool, None, list, dict)"
    )


def canonical_json(value: Any) -> bytes:
    """Encode `value` as canonical JSON bytes (see the module docstring)."""
    checked = check_json_value(value, "value")
    return json.dumps(
        checked, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def format_time(moment: datetime) -> str:
    """Render an aware datetime in canonical UTC form; refuse naive datetimes."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CanonicalFormError(f"time {moment.isoformat()} has no timezone; use UTC")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse a time written by `format_time` (any ISO 8601 with an offset is accepted)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CanonicalFormError(f"not an ISO 8601 time: {text!r}") from exc
    if moment.tzinfo is None:
        raise CanonicalFormError(f"time {text!r} has no timezone; use UTC")
    return moment.astimezone(UTC)
