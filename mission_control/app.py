"""The aiohttp application factory.

`create_app(settings)` returns an application whose cleanup contexts open the database (running
migrations first unless `migrate_on_start` is off) and run the alert sweep, the support sweep
(expired requests, elapsed grants) and the fleet rollouts' steps in the background; all are
closed in reverse order on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from mission_control.api.auth import CredentialCache
from mission_control.api.keys import CREDENTIALS, LEAK_REPORTERS
from mission_control.api.middleware import json_errors
from mission_control.api.protocol_errors import answer_in_json
from mission_control.api.routes import ROUTES
from mission_control.app_keys import CONTEXT, OPENAPI, SETTINGS
from mission_control.console.mount import setup_console
from mission_control.db.engine import create_engine
from mission_control.db.migrate import ensure_current, upgrade
from mission_control.openapi import build_document, register
from mission_control.secrets_key import SecretsKey
from mission_control.service.accounts import users
from mission_control.service.context import Clock, ServiceContext, utc_now
from mission_control.service.exchange.monitor import run_forever
from mission_control.service.fleet.leak_reporters import load_reporter_keys
from mission_control.service.releases.rollouts import advance_forever
from mission_control.service.support.access_requests import sweep_support_forever
from mission_control.service.support.approvers import TrustedApprovers
from mission_control.service.support.settings import SupportSettings
from mission_control.settings import Settings

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("managed-orchestrator")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def service_context(
    settings: Settings, engine: AsyncEngine, clock: Clock = utc_now
) -> ServiceContext:
    """The service context the settings describe (also used by the CLI)."""
    return ServiceContext(
        engine=engine,
        clock=clock,
        sizing=settings.sizing,
        alerts=settings.alerts,
        health_interval=timedelta(seconds=settings.health_interval_s),
        dedupe_retention=timedelta(days=settings.dedupe_retention_days),
        enrollment_token_ttl=timedelta(days=settings.enrollment_token_ttl_days),
        secrets=SecretsKey(file=settings.secrets_key_file),
        support=SupportSettings(
            pending_ttl=timedelta(seconds=settings.support_pending_ttl_s),
            session_ttl=timedelta(seconds=settings.staff_session_s),
            hasher=PasswordHasher(
                time_cost=settings.password_time_cost,
                memory_cost=settings.password_memory_kib,
                parallelism=settings.password_parallelism,
            ),
            approvers=TrustedApprovers(settings.operator_providers),
        ),
    )


def create_app(
    settings: Settings, *, clock: Clock = utc_now, background: bool = True
) -> web.Application:
    """The application; `background=False` leaves the sweeps to another worker process."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[json_errors])
    app[SETTINGS] = settings
    app[CREDENTIALS] = CredentialCache(settings.credential_cache_s)
    app[LEAK_REPORTERS] = load_reporter_keys(settings.leak_reporter_keys_file)
    app[OPENAPI] = json.dumps(build_document(ROUTES, _version())).encode()
    register(app, ROUTES)
    answer_in_json(app)

    async def database(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(settings.db_url, pool_size=settings.db_pool_size)
        try:
            if settings.migrate_on_start:
                await upgrade(engine)
            else:
                await ensure_current(engine)
            context = service_context(settings, engine, clock)
            # No key, no start: a server that cannot open TOTP secrets cannot log anyone in.
            sealed = await users.seal_totp_secrets(context)
            if sealed:
                log.info("sealed %d TOTP secrets stored in the clear", sealed)
            app[CONTEXT] = context
            yield
        finally:
            await engine.dispose()

    async def sweeper(app: web.Application) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(run_forever(app[CONTEXT], settings.sweep_interval_s)),
            asyncio.create_task(sweep_support_forever(app[CONTEXT], settings.sweep_interval_s)),
            asyncio.create_task(
                advance_forever(app[CONTEXT], settings.sweep_interval_s, settings.releases_repo)
            ),
        ]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(database)
    if background:
        app.cleanup_ctx.append(sweeper)
    setup_console(app)
    return app
