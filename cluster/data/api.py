"""The node's data API, served over HTTPS on every node (`data_listen`): ingest, reads and
`/rum.js`. Handlers only translate HTTP to `cluster.data.ingest` and the store.

Routes (docs/monitoring-data.md has the formats):
    GET  /rum.js?app=A&token=T          the browser script, with the app's privacy settings
    POST /v1/beacon                     a browser beacon (ingest token: Authorization or body)
    POST /v1/logs                       log records as JSON lines (ingest token)
    POST /v1/otlp/logs                  OTLP/HTTP logs in JSON (ingest token)
    GET  /v1/capture-rules              the environment's processing rules (ingest token)
    GET  /v1/data/{kind}?env=E&...      sessions | actions | logs held by THIS node (read token)

Guarantees: every data route needs a token of the right scope (401 without one, 403 for the
wrong scope or environment); bad input gets one 4xx JSON error line and nothing is stored;
bodies over the limit get 413 before they are parsed. Reads show sensitive fields as `*****`
unless the token's operator holds `sensitive-data`. Fan-out across nodes is the reader's job
(the CLI asks every serving node), so nodes never call each other.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Protocol, TypeVar

from aiohttp import web

from cluster.data.ingest import (
    MAX_BEACON_BYTES,
    MAX_LOG_BYTES,
    BadInput,
    parse_json_object,
    prepare_beacon,
    prepare_log_lines,
    prepare_otlp,
)
from cluster.data.settings import DataSettings, DataSettingsError, Environment, check_data_name
from cluster.data.store import KINDS, SENSITIVE, MonitoringStore
from cluster.data.tokens import (
    INTERNAL_PREFIX,
    ParsedToken,
    Scope,
    TokenRecord,
    parse_token,
    verify,
    verify_internal,
)
from contract.privacy.display import PERMISSION, shown_record

T = TypeVar("T")
MAX_READ = 5000


class DataState(Protocol):
    """What the API reads: settings and tokens as last refreshed, and the node's store."""

    @property
    def node(self) -> str: ...

    def settings(self) -> DataSettings: ...

    def token(self, token_id: str) -> TokenRecord | None: ...

    @property
    def internal_key(self) -> bytes | None:
        """The key of internal read tokens (`cluster.data.tokens.verify_internal`)."""
        ...

    async def run(self, fn: Callable[[MonitoringStore], T]) -> T:
        """`fn(store)` in the store's own thread."""
        ...


STATE: web.AppKey[DataState] = web.AppKey("data-state")
CORS = {"Access-Control-Allow-Origin": "*"}


def _error(status: int, message: str, cors: bool = False) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=CORS if cors else None)


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    for prefix in ("Bearer ", "Api-Token "):
        if header.startswith(prefix):
            return header[len(prefix) :].strip()
    return None


def authorize(state: DataState, token: str | None, scope: Scope) -> TokenRecord:
    """The token's record if it is a live token of `scope`; `Refused` (401/403) otherwise."""
    if not token:
        raise Refused(401, f"an {scope} token is required (Authorization: Bearer TOKEN)")
    if token.startswith(INTERNAL_PREFIX):
        internal = verify_internal(token, state.internal_key, time.time())
        if internal is None:
            raise Refused(401, "unknown, forged or expired internal token")
        if scope != "read":
            raise Refused(403, f"this token is not an {scope} token")
        return internal
    parsed: ParsedToken | None = parse_token(token)
    record = state.token(parsed.id) if parsed else None
    if parsed is None or record is None or not verify(parsed, record):
        raise Refused(401, "unknown or revoked token")
    if record.scope != scope:
        raise Refused(403, f"this token is not an {scope} token")
    return record


def _environment(state: DataState, name: str | None) -> Environment:
    if name is None:
        raise Refused(400, "env is required")
    try:
        return state.settings().environment(name)
    except DataSettingsError as e:
        raise Refused(404, str(e)) from None


async def _body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise Refused(413, f"the body exceeds {limit} bytes")
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise Refused(413, f"the body exceeds {limit} bytes")
    return body


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guarded(handler: Handler, cors: bool = False) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as e:
            return _error(e.status, str(e), cors)
        except BadInput as e:
            return _error(400, str(e), cors)

    return wrapped


def _client_ip(request: web.Request) -> str:
    return request.remote or "0.0.0.0"


async def beacon(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await _body(request, MAX_BEACON_BYTES)
    doc = parse_json_object(body, "beacon")
    token = _bearer(request) or doc.get("token")
    record = authorize(state, token if isinstance(token, str) else None, "ingest")
    env = _environment(state, record.env)
    prepared = prepare_beacon(
        doc,
        env,
        _client_ip(request),
        request.headers.get("User-Agent"),
        request.headers.get("DNT") == "1",
        time.time(),
    )
    if prepared is not None:
        await state.run(lambda s: s.add_beacon(prepared.session, prepared.actions, time.time()))
    return web.Response(status=204, headers=CORS)


async def preflight(_request: web.Request) -> web.StreamResponse:
    return web.Response(
        status=204,
        headers={
            **CORS,
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type, Authorization",
            "Access-Control-Max-Age": "600",
        },
    )


def _log_handler(prepare: Callable[[bytes, Environment, float], list[Any]]) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        record = authorize(state, _bearer(request), "ingest")
        env = _environment(state, record.env)
        rows = prepare(await _body(request, MAX_LOG_BYTES), env, time.time())
        await state.run(lambda s: s.add_logs(rows))
        return web.json_response({"stored": len(rows), "node": state.node})

    return handle


async def capture_rules(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    record = authorize(state, _bearer(request), "ingest")
    env = _environment(state, record.env)
    return web.json_response({"env": env.name, "rules": [r.to_json() for r in env.rules]})


def _float(request: web.Request, name: str) -> float | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise Refused(400, f"{name} must be a number") from None


async def read(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    record = authorize(state, _bearer(request), "read")
    kind = request.match_info["kind"]
    if kind not in KINDS:
        raise Refused(404, f"no such data: {kind} (one of {', '.join(KINDS)})")
    env_name = request.query.get("env")
    if record.env is not None and env_name != record.env:
        raise Refused(403, f"this token reads environment {record.env} only")
    env = _environment(state, env_name)
    limit = int(_float(request, "limit") or 1000)
    if not 1 <= limit <= MAX_READ:
        raise Refused(400, f"limit must be 1 to {MAX_READ}")
    user_tag, since = request.query.get("user_tag"), _float(request, "since")
    rows = await state.run(lambda s: s.read(kind, env.name, user_tag, since, limit))
    may_see = record.sensitive or record.operator in state.settings().sensitive_data
    shown = [shown_record(r, SENSITIVE[kind], may_see) for r in rows]
    return web.json_response(
        {"node": state.node, "env": env.name, PERMISSION: may_see, "rows": shown}
    )


def rum_script() -> str:
    return (resources.files("cluster.data") / "rum.js").read_text()


async def rum(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    record = authorize(state, request.query.get("token"), "ingest")
    env = _environment(state, record.env)
    app_name = request.query.get("app")
    if not app_name:
        raise Refused(400, "app is required (/rum.js?app=NAME&token=TOKEN)")
    try:
        app = env.app(check_data_name("application", app_name))
    except DataSettingsError as e:
        raise Refused(400, str(e)) from None
    config = {
        "endpoint": f"https://{request.host}/v1/beacon",
        "token": request.query["token"],
        "app": app_name,
        "optIn": app.opt_in,
        "dnt": app.dnt,
        "userTags": app.user_tags,
    }
    script = request.app[SCRIPT].replace("__CONFIG__", json.dumps(config))
    return web.Response(
        text=script,
        content_type="application/javascript",
        headers={**CORS, "Cache-Control": "no-store"},
    )


SCRIPT: web.AppKey[str] = web.AppKey("rum-script")


def create_app(state: DataState) -> web.Application:
    app = web.Application(client_max_size=MAX_LOG_BYTES + 1)
    app[STATE] = state
    app[SCRIPT] = rum_script()
    app.router.add_get("/rum.js", _guarded(rum))
    app.router.add_post("/v1/beacon", _guarded(beacon, cors=True))
    app.router.add_route("OPTIONS", "/v1/beacon", preflight)
    app.router.add_post("/v1/logs", _guarded(_log_handler(prepare_log_lines)))
    app.router.add_post("/v1/otlp/logs", _guarded(_log_handler(prepare_otlp)))
    app.router.add_get("/v1/capture-rules", _guarded(capture_rules))
    app.router.add_get("/v1/data/{kind}", _guarded(read))
    return app
