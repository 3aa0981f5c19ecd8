"""A recording reverse proxy in front of Mission Control: what it received, every delivery.

The cluster is enrolled with the proxy's URL, so every request its leader sends passes here
(over TLS, with Mission Control's own certificate, so the cluster's CA check is the real one).
Each cluster message (a body with `message_id` and `epoch`) is recorded with its outcome:
status, and whether Mission Control answered it as a duplicate. That is the evidence for
exactly-once: a row keyed on (cluster, message id) can never show a duplicate; this log shows
each one. While Mission Control is down the proxy answers 502, as a load balancer would.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from soak_history import History

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


class RecordingProxy:
    def __init__(
        self,
        history: History,
        listen_port: int,
        upstream: str,
        cert: Path,
        key: Path,
        ca_file: Path,
    ) -> None:
        self.history = history
        self.port = listen_port
        self.upstream = upstream
        self._server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_tls.load_cert_chain(str(cert), str(key))
        self._client_tls = ssl.create_default_context(cafile=str(ca_file))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._client_tls, limit=64),
            timeout=aiohttp.ClientTimeout(total=30),
            auto_decompress=False,
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self._server_tls)
        await site.start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        sent = time.time()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        status, reply, reply_headers = 502, b'{"error": "bad_gateway"}', {}
        try:
            async with self._session.request(
                request.method,
                self.upstream + request.rel_url.path_qs,
                data=body,
                headers=headers,
                allow_redirects=False,
            ) as upstream:
                reply = await upstream.read()
                status = upstream.status
                reply_headers = {
                    k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS
                }
        except (aiohttp.ClientError, TimeoutError, OSError):
            reply_headers = {"Content-Type": "application/json"}
        self._record(request, body, sent, status, reply)
        return web.Response(status=status, body=reply, headers=reply_headers)

    def _record(
        self, request: web.Request, body: bytes, sent: float, status: int, reply: bytes
    ) -> None:
        message = _json(body)
        if not isinstance(message, dict) or "message_id" not in message:
            return
        answer = _json(reply)
        parts = request.path.split("/clusters/", 1)
        kind = parts[1].split("/", 1)[1] if len(parts) == 2 and "/" in parts[1] else request.path
        self.history.record(
            "mc-proxy",
            "deliver",
            "ok" if 200 <= status < 300 else "fail",
            {
                "kind": kind,
                "message_id": message.get("message_id"),
                "epoch": message.get("epoch"),
                "status": status,
                "duplicate": bool(isinstance(answer, dict) and answer.get("duplicate")),
                "error": answer.get("error") if isinstance(answer, dict) else None,
                "t0": round(sent, 6),
            },
        )


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
