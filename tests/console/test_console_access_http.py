"""Remote access, audit and license editing over HTTP (a real in-process Mission Control on
loopback, the real staff accounts and `staff.login`, an injected clock): what each role sees
and may do, CSRF on every new form, bad input refused before anything is stored, the audit
page's filters, and pages that reload themselves without keeping a session alive."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import aiohttp
import pyotp
import pytest
from aiohttp import web
from argon2 import PasswordHasher
from console_helpers import Clock, running
from sqlalchemy import func, select

from contract.messages import StaffRole
from mission_control.app import create_app
from mission_control.db.engine import create_engine
from mission_control.db.schema import access_requests, licenses, metadata
from mission_control.service.accounts import users
from mission_control.service.accounts.audit_log import cli_actor
from mission_control.service.context import ServiceContext
from mission_control.service.fleet import enrollment
from mission_control.service.support.settings import SupportSettings
from mission_control.settings import Settings
from mission_control.staff.totp import code_at_step, time_step

PASSWORD = "Velvet-Compass-93"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
CHEAP = {"password_time_cost": 1, "password_memory_kib": 8192, "password_parallelism": 1}


@dataclass
class Site:
    base: str
    db_url: str
    clock: Clock
    secrets: dict[str, str]
    cluster_id: str

    async def count(self, table: object) -> int:
        engine = create_engine(self.db_url)
        try:
            async with engine.connect() as conn:
                return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]
        finally:
            await engine.dispose()

    async def license(self) -> tuple[float, date] | None:
        engine = create_engine(self.db_url)
        try:
            async with engine.connect() as conn:
                row = (
                    await conn.execute(select(licenses.c.host_units, licenses.c.expires))
                ).first()
                return None if row is None else (row.host_units, row.expires)
        finally:
            await engine.dispose()


async def _prepare(db_url: str, clock: Clock) -> tuple[dict[str, str], str]:
    engine = create_engine(db_url)
    ctx = ServiceContext(
        engine=engine,
        clock=clock,
        support=SupportSettings(
            hasher=PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
        ),
    )
    try:
        secrets = {}
        roles = {"sam": StaffRole.SUPPORT_L2, "olga": StaffRole.OPERATOR}
        for name, role in roles.items():
            added = await users.add_user(ctx, name, role, PASSWORD, by=cli_actor("root"))
            secrets[name] = pyotp.parse_uri(added.totp_uri).secret
        created = await enrollment.create_cluster(ctx, "beta-eu", "EU")
        reply = await enrollment.enroll(ctx, created.enrollment_token)
        return secrets, reply.cluster_id
    finally:
        await engine.dispose()


@pytest.fixture
async def site(sqlite_db: str, clock: Clock) -> AsyncIterator[Site]:
    secrets, cluster_id = await _prepare(sqlite_db, clock)
    app = create_app(Settings(db_url=sqlite_db, sweep_interval_s=3600, **CHEAP), clock=clock)
    async with running(app) as base:
        yield Site(base, sqlite_db, clock, secrets, cluster_id)


def browser(base: str) -> aiohttp.ClientSession:
    # Keeps Secure cookies for http://127.0.0.1, as browsers do for loopback.
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=base)
    return aiohttp.ClientSession(cookie_jar=jar)


async def token_of(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as reply:
        text = await reply.text()
        match = TOKEN.search(text)
        assert match is not None, text
        return match.group(1)


async def log_in(http: aiohttp.ClientSession, site: Site, name: str) -> None:
    token = await token_of(http, site.base + "/console/login")
    code = code_at_step(site.secrets[name], time_step(site.clock()))
    form = {"csrf_token": token, "username": name, "password": PASSWORD, "totp": code}
    async with http.post(site.base + "/console/login", data=form, allow_redirects=False) as r:
        assert r.status == 303, await r.text()


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url, allow_redirects=False) as reply:
        return reply.status, await reply.text()


async def post(http: aiohttp.ClientSession, url: str, form: dict[str, str]) -> tuple[int, str, str]:
    async with http.post(url, data=form, allow_redirects=False) as reply:
        return reply.status, reply.headers.get("Location", ""), await reply.text()


async def post_license(
    http: aiohttp.ClientSession, cluster_url: str, token: str, host_units: str, expires: str
) -> tuple[int, str, str]:
    form = {"csrf_token": token, "host_units": host_units, "expires": expires}
    return await post(http, cluster_url + "/license", form)


async def test_an_engineer_requests_access_and_sees_no_license_editing(site: Site) -> None:
    cluster_url = f"{site.base}/console/clusters/{site.cluster_id}"
    async with browser(site.base) as http:
        await log_in(http, site, "sam")
        status, html = await get(http, cluster_url)
        assert status == 200
        assert 'class="request-access"' in html and 'class="license-edit"' not in html
        token = await token_of(http, cluster_url)
        form = {"cluster": site.cluster_id, "reason": "ticket 88", "role": "viewer"}

        # No token, a blank reason, a too long duration: refused, nothing stored.
        status, _, html = await post(
            http, site.base + "/console/access", {**form, "duration": "1h"}
        )
        assert status == 403 and "security token" in html
        bad = {**form, "csrf_token": token, "reason": "  ", "duration": "1h"}
        status, _, html = await post(http, site.base + "/console/access", bad)
        assert status == 400 and "invalid reason" in html
        status, _, html = await post(
            http, site.base + "/console/access", {**form, "csrf_token": token, "duration": "9d"}
        )
        assert status == 400 and "invalid duration: at most 7d" in html
        assert await site.count(access_requests) == 0

        status, where, _ = await post(
            http, site.base + "/console/access", {**form, "csrf_token": token, "duration": "1h"}
        )
        assert status == 303 and where.startswith("/console/access/")
        status, html = await get(http, site.base + where)
        assert status == 200 and "pending" in html and "ticket 88" in html
        assert f'http-equiv="refresh" content="5; url={where}?auto=1"' in html
        assert "Run diagnostics" not in html  # no grant yet
        assert await site.count(access_requests) == 1

        # Commands and the end of a grant need a running grant.
        token = await token_of(http, site.base + where)
        status, _, html = await post(
            http, site.base + where + "/commands", {"csrf_token": token, "command": "diagnostics"}
        )
        assert status == 409 and "commands need a running grant" in html
        status, _, html = await post(http, site.base + where + "/end", {"csrf_token": token})
        assert status == 409

        # The license form is not for support engineers, even when posted by hand.
        status, _, html = await post_license(http, cluster_url, token, "5", "2031-01-01")
        assert status == 403 and "operators and admins" in html
        assert await site.license() is None


async def test_an_operator_edits_the_license_and_sees_no_access_controls(site: Site) -> None:
    async with browser(site.base) as engineer:
        await log_in(engineer, site, "sam")
        token = await token_of(engineer, f"{site.base}/console/clusters/{site.cluster_id}")
        form = {"csrf_token": token, "cluster": "beta-eu", "reason": "slow ingest", "role": "user"}
        _, where, _ = await post(
            engineer, site.base + "/console/access", {**form, "duration": "2h"}
        )
    cluster_url = f"{site.base}/console/clusters/{site.cluster_id}"
    async with browser(site.base) as http:
        await log_in(http, site, "olga")
        status, html = await get(http, cluster_url)
        assert status == 200
        assert 'class="license-edit"' in html and 'class="request-access"' not in html
        assert "slow ingest" in html  # requests are visible read-only
        status, html = await get(http, site.base + "/console/access")
        assert "Access requests" in html and "slow ingest" in html and "sam" in html
        status, html = await get(http, site.base + where)
        assert status == 200 and "End the grant" not in html and "Run " not in html
        token = await token_of(http, cluster_url)
        status, _, html = await post(
            http,
            site.base + "/console/access",
            {
                "csrf_token": token,
                "cluster": "beta-eu",
                "reason": "x",
                "role": "viewer",
                "duration": "1h",
            },
        )
        assert status == 403

        status, _, html = await post_license(http, cluster_url, token, "-1", "2031-01-01")
        assert status == 400 and "invalid host_units" in html
        status, _, html = await post_license(http, cluster_url, token, "40", "soon")
        assert status == 400 and "invalid expires" in html
        assert await site.license() is None
        status, where, _ = await post_license(http, cluster_url, token, "40", "2031-01-31")
        assert status == 303 and where.endswith("?saved=license#license")
        assert await site.license() == (40.0, date(2031, 1, 31))
        status, html = await get(http, site.base + where.split("#")[0])
        assert "License saved." in html and 'value="40"' in html and 'value="2031-01-31"' in html


async def test_the_audit_page_filters_by_who_cluster_action_and_time(site: Site) -> None:
    async with browser(site.base) as http:
        await log_in(http, site, "sam")
        token = await token_of(http, f"{site.base}/console/clusters/{site.cluster_id}")
        form = {"csrf_token": token, "cluster": "beta-eu", "reason": "audit me", "role": "viewer"}
        await post(http, site.base + "/console/access", {**form, "duration": "1h"})
        # An engineer sees only what they did or what is about them: not olga's account.
        _, html = await get(http, site.base + "/console/audit?action=staff.user.created")
        assert html.count("<tr>") == 1 + 1
    async with browser(site.base) as http:
        await log_in(http, site, "olga")
        audit = site.base + "/console/audit"
        status, html = await get(http, audit)
        assert status == 200
        for action in ("staff.user.created", "staff.login", "support.requested"):
            assert f"<code>{action}</code>" in html
        _, html = await get(http, audit + "?actor=sam")
        assert "<code>support.requested</code>" in html
        assert "<code>staff.user.created</code>" not in html
        _, html = await get(http, audit + "?cluster=beta-eu")
        assert "<code>support.requested</code>" in html and "<code>staff.login</code>" not in html
        assert ">beta-eu</a>" in html  # the id is shown with the cluster's name
        _, html = await get(http, audit + "?action=staff.user.created")
        assert html.count("<tr>") == 1 + 2  # header row, olga and sam
        site.clock.advance(minutes=20)
        later = site.clock().strftime("%Y-%m-%dT%H:%M")
        _, html = await get(http, audit + f"?since={later}")
        assert "No audit entries match these filters." in html
        status, html = await get(http, audit + "?since=yesterday")
        assert status == 400 and "invalid since" in html


async def test_a_self_refreshing_page_does_not_keep_the_session_alive(site: Site) -> None:
    async with browser(site.base) as http:
        await log_in(http, site, "sam")
        site.clock.advance(minutes=20)
        assert (await get(http, site.base + "/console/access"))[0] == 200  # a click: activity
        site.clock.advance(minutes=20)
        assert (await get(http, site.base + "/console/access?auto=1"))[0] == 200
        site.clock.advance(minutes=11)  # refreshed all along, but 31 min since the last click
        status, _ = await get(http, site.base + "/console/access?auto=1")
        assert status == 303


#: POSTs that come from another site by design and so cannot carry the console's token: the
#: SAML provider's answer, held instead to the sealed flow cookie and a signed assertion that
#: answers that flow's own request (tests/mission_control/test_saml_login.py).
CROSS_SITE_POSTS = ("/console/login/saml/acs",)


def console_posts(app: web.Application) -> list[str]:
    """The path pattern of every POST route of the console, as its router has them (a new
    form is covered the day it is added), but the `CROSS_SITE_POSTS`."""
    found = []
    for resource in app.router.resources():
        info = resource.get_info()
        if "app" not in info:
            continue
        for route in info["app"].router.routes():  # a sub-app's paths include its prefix
            resource = route.resource
            if route.method == "POST" and resource and resource.canonical not in CROSS_SITE_POSTS:
                found.append(resource.canonical)
    return sorted(found)


async def database_rows(db_url: str) -> dict[str, list[str]]:
    """Every row of every table, as text: what "nothing changed" compares."""
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return {
                table.name: sorted(repr(tuple(row)) for row in await conn.execute(select(table)))
                for table in metadata.sorted_tables
            }
    finally:
        await engine.dispose()


async def test_every_console_post_refuses_a_missing_or_wrong_token_and_changes_nothing(
    site: Site,
) -> None:
    app = create_app(Settings(db_url=site.db_url, sweep_interval_s=3600, **CHEAP))
    routes = console_posts(app)
    assert "/console/clusters/{cluster}/license" in routes and "/console/login" in routes
    async with browser(site.base) as engineer:  # a real request, for the forms that need one
        await log_in(engineer, site, "sam")
        token = await token_of(engineer, f"{site.base}/console/clusters/{site.cluster_id}")
        form = {"csrf_token": token, "cluster": "beta-eu", "reason": "probe", "role": "user"}
        _, where, _ = await post(
            engineer, site.base + "/console/access", {**form, "duration": "2h"}
        )
    ids = {"cluster": site.cluster_id, "request_id": where.rsplit("/", 1)[1], "alert_id": "1"}
    ids["rollout_id"] = "1"
    # Fields that would make each form valid with the right token: a form whose CSRF check
    # were skipped would act (or be refused for another reason, with another message).
    fields = {
        "cluster": "beta-eu",
        "reason": "forged",
        "role": "viewer",
        "duration": "1h",
        "host_units": "7",
        "expires": "2031-01-01",
        "command": "diagnostics",
    }
    for name in ("sam", "olga"):  # one who requests access, one who runs Mission Control
        site.clock.advance(seconds=30)  # a new TOTP step: a code is never accepted twice
        async with browser(site.base) as http:
            await log_in(http, site, name)
            before = await database_rows(site.db_url)
            for pattern in routes:
                url = site.base + pattern.format(**ids)
                for token_field in ({}, {"csrf_token": "wrong-" + "x" * 40}):
                    status, _, html = await post(http, url, {**fields, **token_field})
                    expected = (
                        "did not come from this page"
                        if pattern.startswith("/console/login")  # before a session exists
                        else "security token"
                    )
                    assert status == 403 and expected in html, (name, pattern, token_field, html)
            assert await database_rows(site.db_url) == before, (name, "a refused post changed")
            assert (await get(http, site.base + "/console/"))[0] == 200  # still logged in
