"""Mounting the console on the Mission Control application.

`setup_console(app)` adds the console as a sub-application under ``/console/`` (its own
middleware, templates and static files, so the JSON API is untouched), redirects ``/`` to it,
and adds a cleanup context that, once the database is open, builds the `StaffDirectory` and
prunes expired sessions and old health samples every `prune_interval_s`.

Bad console settings (environment) or an unknown staff directory stop the server at start with
one line (`ConsoleMisconfigured`, a `ServiceError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from pydantic import ValidationError

from contract.validation import first_error
from mission_control.app_keys import CONTEXT
from mission_control.console import (
    access_pages,
    audit_page,
    license_edit,
    login,
    oidc_login,
    pages,
    rollouts_page,
    saml_login,
    tokens_page,
)
from mission_control.console.directory import (
    DirectoryFactory,
    DirectoryNotFound,
    StaffDirectory,
    account_directory,
    load_factory,
)
from mission_control.console.guard import guard
from mission_control.console.keys import CONSOLE_SETTINGS, DIRECTORY, PREFIX, SESSION_POLICY
from mission_control.console.render import setup_templates
from mission_control.console.settings import ConsoleSettings
from mission_control.errors import ServiceError
from mission_control.service.accounts.console_sessions import SessionPolicy, prune_sessions
from mission_control.service.context import ServiceContext
from mission_control.service.fleet.history import prune_samples
from mission_control.staff.identity import StaffIdentity

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent.parent / "static"


class ConsoleMisconfigured(ServiceError):
    code = "console_misconfigured"


class LateDirectory:
    """The directory, built once the database is open; refuses logins until then."""

    def __init__(self) -> None:
        self.inner: StaffDirectory | None = None

    async def verify(
        self, username: str, password: str, totp_code: str, *, source: str | None
    ) -> StaffIdentity | str:
        if self.inner is None:
            return "the server is still starting: try again in a moment"
        return await self.inner.verify(username, password, totp_code, source=source)


def _settings(settings: ConsoleSettings | None) -> ConsoleSettings:
    if settings is not None:
        return settings
    try:
        return ConsoleSettings()
    except ValidationError as error:
        where, message = first_error(error, "console")
        raise ConsoleMisconfigured(f"invalid console setting {where}: {message}") from None


def _factory(settings: ConsoleSettings, given: DirectoryFactory | None) -> DirectoryFactory:
    if given is not None:
        return given
    if settings.staff_directory is None:
        return account_directory
    try:
        return load_factory(settings.staff_directory)
    except DirectoryNotFound as error:
        raise ConsoleMisconfigured(str(error)) from None


async def prune_once(ctx: ServiceContext, settings: ConsoleSettings, policy: SessionPolicy) -> None:
    now = ctx.clock()
    sessions = await prune_sessions(ctx.engine, now, policy)
    samples = await prune_samples(ctx.engine, now - timedelta(days=settings.sample_retention_days))
    if sessions or samples:
        log.info("console: pruned %d sessions and %d health samples", sessions, samples)


def setup_console(
    app: web.Application,
    *,
    settings: ConsoleSettings | None = None,
    directory: DirectoryFactory | None = None,
) -> web.Application:
    """Mount the console on `app` (call after the database cleanup context is added)."""
    config = _settings(settings)
    factory = _factory(config, directory)
    policy = SessionPolicy(
        idle_timeout=timedelta(seconds=config.idle_timeout_s),
        max_age=timedelta(seconds=config.session_max_age_s),
        touch_interval=timedelta(seconds=config.touch_interval_s),
    )
    late = LateDirectory()
    console = web.Application(middlewares=[guard])
    console[CONSOLE_SETTINGS] = config
    console[SESSION_POLICY] = policy
    console[DIRECTORY] = late
    setup_templates(console)
    console.router.add_get("/", pages.fleet, name="console.fleet")
    console.router.add_get("/clusters/{cluster}", pages.cluster, name="console.cluster")
    console.router.add_post(
        "/clusters/{cluster}/license", license_edit.license_submit, name="console.license"
    )
    console.router.add_get("/alerts", pages.alert_list, name="console.alerts")
    console.router.add_post(
        "/alerts/{alert_id}/acknowledge", pages.acknowledge, name="console.alerts.acknowledge"
    )
    console.router.add_get("/access", access_pages.access_list, name="console.access")
    console.router.add_post("/access", access_pages.access_create, name="console.access.create")
    console.router.add_get(
        "/access/{request_id}", access_pages.access_detail, name="console.access.detail"
    )
    console.router.add_post(
        "/access/{request_id}/commands", access_pages.command_submit, name="console.command"
    )
    console.router.add_post("/access/{request_id}/end", access_pages.end_submit, name="console.end")
    console.router.add_post(
        "/access/{request_id}/revoke", access_pages.revoke_submit, name="console.revoke"
    )
    console.router.add_get("/rollouts", rollouts_page.rollout_list, name="console.rollouts")
    console.router.add_post(
        "/rollouts/{rollout_id}/pause", rollouts_page.pause, name="console.rollouts.pause"
    )
    console.router.add_post(
        "/rollouts/{rollout_id}/resume", rollouts_page.resume, name="console.rollouts.resume"
    )
    console.router.add_get("/audit", audit_page.audit, name="console.audit")
    console.router.add_get("/tokens", tokens_page.tokens, name="console.tokens")
    console.router.add_post("/tokens", tokens_page.token_create, name="console.tokens.create")
    console.router.add_get("/login", login.login_form, name="console.login")
    console.router.add_post("/login", login.login_submit, name="console.login.submit")
    console.router.add_post("/logout", login.logout, name="console.logout")
    console.router.add_get("/login/oidc", oidc_login.start_sign_in, name="console.login.oidc")
    console.router.add_get(
        "/login/oidc/callback", oidc_login.callback, name="console.login.oidc.callback"
    )
    console.router.add_post(
        "/login/oidc/totp", oidc_login.second_factor, name="console.login.oidc.totp"
    )
    console.router.add_get("/login/saml", saml_login.start_sign_in, name="console.login.saml")
    console.router.add_post(
        "/login/saml/acs", saml_login.assertion_consumer, name="console.login.saml.acs"
    )
    console.router.add_post(
        "/login/saml/totp", saml_login.second_factor, name="console.login.saml.totp"
    )
    console.router.add_get(
        "/login/saml/metadata", saml_login.metadata, name="console.login.saml.metadata"
    )
    console.router.add_static("/static", STATIC, name="console.static")
    app.add_subapp(PREFIX + "/", console)

    async def to_console(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(PREFIX + "/")

    app.router.add_get("/", to_console)

    async def runtime(app: web.Application) -> AsyncIterator[None]:
        ctx = app[CONTEXT]
        late.inner = factory(ctx)

        async def prune_forever() -> None:
            while True:
                try:
                    await prune_once(ctx, config, policy)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("console: pruning failed; retrying later")
                await asyncio.sleep(config.prune_interval_s)

        task = asyncio.create_task(prune_forever())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(runtime)
    return console
