"""Mission Control test kit: a hand-moved clock, settings, and an in-process server.

Imported by name (`mc_kit`), never through `conftest`, which is ambiguous across test folders.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from aiohttp import web

from contract.certs import DevCA
from mission_control.secrets_key import ENV_KEY
from mission_control.settings import Settings
from mission_control.staff.secretbox import encode_key
from mission_control.tls import server_context


def share_a_secrets_key() -> None:
    """One secrets key for every process of a test run (in-process servers, `mission-control`
    subprocesses), on both back ends; tests of where the key comes from unset it."""
    os.environ.setdefault(ENV_KEY, encode_key(bytes(range(32))))


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2030, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@contextlib.asynccontextmanager
async def running(
    app: web.Application, *, tls: DevCA | None = None, min_version: str = "1.2", ciphers: str = ""
) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port; yields its base URL; always shuts down."""
    ssl_context = (
        server_context(tls.server_cert, tls.server_key, min_version=min_version, ciphers=ciphers)  # type: ignore[arg-type]
        if tls
        else None
    )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        port = runner.addresses[0][1]
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def make_settings(db_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"db_url": db_url, "sweep_interval_s": 3600, **overrides}
    return Settings(**values)  # type: ignore[arg-type]
