"""One line for a pydantic `ValidationError`: where the first problem is and what it is.

Every place that turns a settings file, a form or a stored document into a model reports bad
input the same way ("<what> <where>: <message>"), naming the first problem only: one clear
error, not pydantic's multi-line dump.
"""

from __future__ import annotations

from pydantic import ValidationError


def first_error(error: ValidationError, whole: str) -> tuple[str, str]:
    """(where, message) of `error`'s first problem: `where` is its dotted location, `whole`
    when the problem is the input as a whole; `message` without pydantic's "Value error, "."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or whole
    return where, str(first["msg"]).removeprefix("Value error, ")
