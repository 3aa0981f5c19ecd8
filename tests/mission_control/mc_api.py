"""The HTTP API as a client sees it: JSON calls with an optional bearer, enrollment, counts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from mc_kit import FakeClock, make_settings, running
from sqlalchemy import func, select

from mission_control.app import create_app
from mission_control.db.engine import create_engine
from mission_control.db.schema import messages
from mission_control.service.context import ServiceContext
from mission_control.service.fleet import enrollment


@dataclass
class Api:
    url: str
    http: aiohttp.ClientSession
    admin: ServiceContext

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        async with self.http.request(
            method, self.url + path, data=data, headers=headers
        ) as response:
            text = await response.text()
            assert response.content_type == "application/json", text
            return response.status, json.loads(text)

    async def enroll(self, name: str) -> tuple[str, str]:
        created = await enrollment.create_cluster(self.admin, name, "EU")
        status, reply = await self.call(
            "POST", "/api/v1/enroll", {"token": created.enrollment_token}
        )
        assert status == 200, reply
        return reply["cluster_id"], reply["credential"]

    async def stored_messages(self) -> int:
        async with self.admin.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(messages)) or 0)


@asynccontextmanager
async def serving_api(db_url: str, clock: FakeClock, **settings: object) -> AsyncIterator[Api]:
    """An in-process server with these settings (no background sweep), and its client."""
    engine = create_engine(db_url)
    try:
        app = create_app(make_settings(db_url, **settings), clock=clock, background=False)
        async with running(app) as url, aiohttp.ClientSession() as http:
            yield Api(url, http, ServiceContext(engine=engine, clock=clock))
    finally:
        await engine.dispose()
