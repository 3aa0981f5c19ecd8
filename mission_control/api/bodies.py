"""Reading request bodies and query strings into pydantic models, writing replies as JSON.

Guarantees: a body that is not JSON is 400, a body that does not fit the model (wrong types,
unknown fields, out of range) is 422, a body over the size limit is 413 (aiohttp's
`client_max_size`); the message names the first offending fields. Nothing is stored before a
request has been fully validated.
"""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
_MAX_LISTED = 3


class RequestRejected(Exception):
    """A request refused before it reaches the domain; rendered as a JSON error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:_MAX_LISTED]:
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - _MAX_LISTED
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _invalid(error: ValidationError) -> RequestRejected:
    if any(item["type"] == "json_invalid" for item in error.errors()):
        return RequestRejected(400, "malformed_json", "the body is not valid JSON")
    return RequestRejected(422, "invalid_request", describe(error))


async def read_body(request: web.Request, model: type[M]) -> M:
    body = await request.read()
    if not body:
        raise RequestRejected(400, "malformed_json", "a JSON body is required")
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise _invalid(error) from None


def read_query(request: web.Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as error:
        raise _invalid(error) from None


def json_reply(reply: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        body=reply.model_dump_json().encode(), status=status, content_type="application/json"
    )
