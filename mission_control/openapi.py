"""The route table and the OpenAPI 3.1 document generated from it.

Guarantees: routes are registered on the aiohttp router FROM this table, and the document is
built from the same table, so they cannot disagree; request, reply and error schemas come from
the pydantic models (`models_json_schema`), never written by hand.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from contract.messages import ErrorReply

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Auth = Literal["none", "cluster", "staff"]
_REF = "#/components/schemas/{model}"
_ERROR_TEXT = {
    400: "Malformed JSON",
    401: "Missing or bad credential",
    403: "Credential of another cluster",
    404: "No such record",
    409: "Conflict (stale epoch, reused message_id, existing name)",
    413: "Body over the size limit",
    422: "Body or query does not match the schema",
    503: "Database unavailable: retry later",
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    reply: type[BaseModel] | None
    request: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    auth: Auth = "none"
    errors: tuple[int, ...] = ()
    #: The reply's media type: JSON (`reply`'s schema), or a file (`application/octet-stream`).
    content: str = "application/json"


def register(app: web.Application, routes: Sequence[Route]) -> None:
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)


def _schemas(routes: Sequence[Route]) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (ErrorReply, "serialization")
    ]
    for route in routes:
        if route.request is not None:
            models.append((route.request, "validation"))
        if route.reply is not None:
            models.append((route.reply, "serialization"))
    _, top = models_json_schema(models, ref_template=_REF)
    defs: dict[str, Any] = top.get("$defs", {})
    return defs


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _parameters(route: Route) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    if route.query is not None:
        schema = route.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            params.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    return params


def _operation(route: Route) -> dict[str, Any]:
    reply = _ref(route.reply) if route.reply is not None else {"type": "object"}
    content = _json(reply)
    if route.content != "application/json":
        content = {route.content: {"schema": {"type": "string", "format": "binary"}}}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": content}}
    for status in route.errors:
        responses[str(status)] = {
            "description": _ERROR_TEXT.get(status, "Error"),
            "content": _json(_ref(ErrorReply)),
        }
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "parameters": _parameters(route),
        "responses": responses,
        "security": [] if route.auth == "none" else [{f"{route.auth}Bearer": []}],
    }
    if route.request is not None:
        operation["requestBody"] = {"required": True, "content": _json(_ref(route.request))}
    return operation


def build_document(routes: Sequence[Route], version: str) -> dict[str, Any]:
    """The OpenAPI document describing exactly `routes`."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Mission Control API", "version": version},
        "paths": paths,
        "components": {
            "schemas": _schemas(routes),
            "securitySchemes": {
                "clusterBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The cluster credential returned by enrollment.",
                },
                "staffBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A staff token from `mission-control tokens create`.",
                },
            },
        },
    }
