"""Masking at display: sensitive fields are stored intact and shown as `*****` to every
reader who does not hold the `sensitive-data` permission, on every read path.

Guarantees: `shown` hides the whole value (its length and first letters too), and `None` stays
`None` (nothing to hide, and "no user tag" is not sensitive).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

HIDDEN = "*****"
PERMISSION = "sensitive-data"


def shown(value: str | None, may_see: bool) -> str | None:
    return value if may_see or value is None else HIDDEN


def shown_record(
    record: Mapping[str, Any], sensitive: Iterable[str], may_see: bool
) -> dict[str, Any]:
    """A copy of `record` with its `sensitive` fields as the reader may see them."""
    out = dict(record)
    if not may_see:
        for name in sensitive:
            if out.get(name) is not None:
                out[name] = HIDDEN
    return out
