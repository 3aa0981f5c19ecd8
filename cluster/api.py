"""The node's small HTTP API: `/status`, `/health` (200/503), `/leader` (200 only on the
leader that may act, for load balancers) and `/metrics` (Prometheus)."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class NodeView(Protocol):
    @property
    def healthy(self) -> bool: ...

    @property
    def leading(self) -> bool: ...

    def status(self) -> dict[str, Any]: ...

    @property
    def metrics(self) -> Any: ...


NODE: web.AppKey[NodeView] = web.AppKey("node")


async def _status(request: web.Request) -> web.Response:
    return web.json_response(request.app[NODE].status())


async def _health(request: web.Request) -> web.Response:
    node = request.app[NODE]
    ok = node.healthy
    return web.json_response({"healthy": ok}, status=200 if ok else 503)


async def _leader(request: web.Request) -> web.Response:
    node = request.app[NODE]
    ok = node.leading
    return web.json_response({"leader": ok}, status=200 if ok else 503)


async def _metrics(request: web.Request) -> web.Response:
    registry: CollectorRegistry = request.app[NODE].metrics.registry
    body = generate_latest(registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(node: NodeView) -> web.Application:
    app = web.Application()
    app[NODE] = node
    app.router.add_get("/status", _status)
    app.router.add_get("/health", _health)
    app.router.add_get("/leader", _leader)
    app.router.add_get("/metrics", _metrics)
    return app


async def start(node: NodeView, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(create_app(node), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
