"""Who may still use a session, who sees which audit entries, and what gets audited: over HTTP
against a real in-process Mission Control (real staff accounts and `staff.login`, an injected
clock). Also: hostile text (``<script>``) in names, reasons and command output is shown
escaped."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from console_helpers import Clock, running
from sqlalchemy import insert, update
from staff_store import CHEAP, add_account

from mission_control.app import create_app
from mission_control.db.engine import create_engine
from mission_control.db.schema import clusters, support_commands, users
from mission_control.service.accounts.audit_log import cli_actor
from mission_control.service.accounts.users import disable_user
from mission_control.service.context import ServiceContext
from mission_control.service.fleet import enrollment
from mission_control.settings import Settings
from mission_control.staff.totp import code_at_step, time_step

PASSWORD = "Silver-Orchard-64"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
STAFF = {"sam": "support-l2", "lena": "support-l3", "olga": "operator", "ada": "admin"}
HOSTILE = "<script>alert(1)</script>"


@dataclass
class Site:
    base: str
    db_url: str
    clock: Clock
    secrets: dict[str, str]
    cluster_id: str

    def code(self, name: str) -> str:
        return code_at_step(self.secrets[name], time_step(self.clock()))

    def next_step(self) -> None:
        """Move to the next TOTP step: a code is accepted only once per account."""
        self.clock.advance(seconds=30)

    async def run(self, work: Any) -> Any:
        engine = create_engine(self.db_url)
        try:
            return await work(ServiceContext(engine=engine, clock=self.clock))
        finally:
            await engine.dispose()


@pytest.fixture
async def site(sqlite_db: str, clock: Clock) -> AsyncIterator[Site]:
    engine = create_engine(sqlite_db)
    try:
        secrets = {n: await add_account(engine, n, r, PASSWORD, clock) for n, r in STAFF.items()}
        ctx = ServiceContext(engine=engine, clock=clock)
        created = await enrollment.create_cluster(ctx, "gamma-eu", "EU")
        cluster_id = (await enrollment.enroll(ctx, created.enrollment_token)).cluster_id
    finally:
        await engine.dispose()
    app = create_app(Settings(db_url=sqlite_db, sweep_interval_s=3600, **CHEAP), clock=clock)
    async with running(app) as base:
        yield Site(base, sqlite_db, clock, secrets, cluster_id)


def browser(base: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=base)
    )


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with http.get(url, allow_redirects=False) as reply:
        return reply.status, reply.headers.get("Location", ""), await reply.text()


async def token_of(http: aiohttp.ClientSession, url: str) -> str:
    _, _, html = await get(http, url)
    match = TOKEN.search(html)
    assert match is not None, html
    return match.group(1)


async def post(http: aiohttp.ClientSession, url: str, form: dict[str, str]) -> tuple[int, str]:
    async with http.post(url, data=form, allow_redirects=False) as reply:
        return reply.status, reply.headers.get("Location", "")


async def log_in(http: aiohttp.ClientSession, site: Site, name: str, code: str = "") -> int:
    token = await token_of(http, site.base + "/console/login")
    form = {"csrf_token": token, "username": name, "password": PASSWORD}
    status, _ = await post(
        http, site.base + "/console/login", {**form, "totp": code or site.code(name)}
    )
    return status


async def test_disabling_an_account_ends_its_open_session(site: Site) -> None:
    async with browser(site.base) as http:
        assert await log_in(http, site, "sam") == 303
        assert (await get(http, site.base + "/console/alerts"))[0] == 200
        await site.run(lambda ctx: disable_user(ctx, "sam", by=cli_actor("root")))
        status, where, _ = await get(http, site.base + "/console/alerts")
        assert status == 303 and where == "/console/login?next=/console/alerts"
        # The session is gone for good: the account coming back does not revive it.
        await site.run(lambda ctx: _enable(ctx, "sam"))
        assert (await get(http, site.base + "/console/alerts"))[0] == 303
        token = await token_of(http, site.base + "/console/login")
        status, _ = await post(http, site.base + "/console/logout", {"csrf_token": token})
        assert status == 403  # no session left to post with


async def _enable(ctx: ServiceContext, name: str) -> None:
    async with ctx.engine.begin() as conn:
        await conn.execute(update(users).where(users.c.name == name).values(disabled=False))


async def test_a_role_change_applies_to_the_next_page(site: Site) -> None:
    cluster_url = f"{site.base}/console/clusters/{site.cluster_id}"
    async with browser(site.base) as http:
        assert await log_in(http, site, "sam") == 303
        _, _, html = await get(http, cluster_url)
        assert 'class="request-access"' in html and 'class="license-edit"' not in html

        async def promote(ctx: ServiceContext) -> None:
            async with ctx.engine.begin() as conn:
                await conn.execute(
                    update(users).where(users.c.name == "sam").values(role="operator")
                )

        await site.run(promote)
        _, _, html = await get(http, cluster_url)
        assert 'class="license-edit"' in html and 'class="request-access"' not in html
        assert '<span class="role">operator</span>' in html


async def audit_rows(http: aiohttp.ClientSession, site: Site, query: str = "") -> str:
    status, _, html = await get(http, site.base + "/console/audit" + query)
    assert status == 200, html
    return html


async def api_audit(site: Site, name: str) -> list[dict[str, Any]]:
    site.next_step()
    async with aiohttp.ClientSession() as http:
        body = {"username": name, "password": PASSWORD, "totp": site.code(name)}
        async with http.post(site.base + "/api/v1/login", json=body) as reply:
            assert reply.status == 200, await reply.text()
            token = (await reply.json())["token"]
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(site.base + "/api/v1/audit", headers=headers) as reply:
            assert reply.status == 200, await reply.text()
            return list((await reply.json())["entries"])


async def test_engineers_see_their_own_entries_and_only_admins_why_a_login_failed(
    site: Site,
) -> None:
    async with browser(site.base) as http:  # a wrong password for sam, then a wrong code
        assert await log_in(http, site, "sam", code="000000") == 401
        token = await token_of(http, site.base + "/console/login")
        form = {"csrf_token": token, "username": "sam", "password": "nope", "totp": "123456"}
        assert (await post(http, site.base + "/console/login", form))[0] == 401
    site.next_step()
    async with browser(site.base) as http:
        assert await log_in(http, site, "lena") == 303
        html = await audit_rows(http, site)
        assert "entries you acted in or that are about you" in html
        assert ">lena</a>" in html and ">sam</a>" not in html and ">olga</a>" not in html
    async with browser(site.base) as http:
        assert await log_in(http, site, "sam") == 303
        html = await audit_rows(http, site, "?action=staff.login.failed")
        assert html.count("<dd>login refused</dd>") == 2
        assert "wrong password" not in html and "TOTP" not in html
    async with browser(site.base) as http:
        assert await log_in(http, site, "olga") == 303
        html = await audit_rows(http, site)
        assert ">sam</a>" in html and ">lena</a>" in html  # the whole log
        assert "wrong password" not in html and "login refused" in html
    async with browser(site.base) as http:
        assert await log_in(http, site, "ada") == 303
        html = await audit_rows(http, site, "?action=staff.login.failed")
        assert "wrong password" in html and "TOTP refused" in html

    # The API applies the same rule (one query: `audit_log.list_entries(viewer=...)`).
    mine = await api_audit(site, "lena")
    assert mine and all("lena" in (e["actor"]["name"], e["subject"]) for e in mine)
    everything = await api_audit(site, "olga")
    failed = [e for e in everything if e["action"] == "staff.login.failed"]
    assert len(failed) == 2 and all(e["detail"] == {"reason": "login refused"} for e in failed)
    names = {e["actor"]["name"] for e in everything}
    assert {"sam", "lena", "olga"} <= names
    admin = await api_audit(site, "ada")
    reasons = {e["detail"]["reason"] for e in admin if e["action"] == "staff.login.failed"}
    assert "wrong password" in reasons


async def test_license_edits_and_logouts_are_audited(site: Site) -> None:
    cluster_url = f"{site.base}/console/clusters/{site.cluster_id}"
    async with browser(site.base) as http:
        assert await log_in(http, site, "olga") == 303
        token = await token_of(http, cluster_url)
        for units, expires in (("40", "2031-01-31"), ("48.5", "2031-06-30")):
            form = {"csrf_token": token, "host_units": units, "expires": expires}
            assert (await post(http, cluster_url + "/license", form))[0] == 303
        html = await audit_rows(http, site, "?action=license.set")
        assert html.count("<code>license.set</code>") == 2 and ">gamma-eu</a>" in html
        assert ">olga</a>" in html
        for shown in ("48.5", "2031-06-30", "40", "2031-01-31"):
            assert f"<dd>{shown}</dd>" in html
        site.next_step()
        status, _ = await post(http, site.base + "/console/logout", {"csrf_token": token})
        assert status == 303
    async with browser(site.base) as http:
        assert await log_in(http, site, "ada") == 303
        html = await audit_rows(http, site, "?action=staff.logout&actor=olga")
        assert html.count("<code>staff.logout</code>") == 1 and "<dd>console</dd>" in html


async def test_the_audit_page_filters_a_time_window(site: Site) -> None:
    start = site.clock()
    site.clock.advance(hours=1)
    async with browser(site.base) as http:
        assert await log_in(http, site, "olga") == 303
        since, until = start.strftime("%Y-%m-%dT%H:%M"), site.clock().strftime("%Y-%m-%dT%H:%M")
        html = await audit_rows(http, site, f"?since={since}&until={until}")
        assert "<code>staff.user.created</code>" in html and "<code>staff.login</code>" not in html
        html = await audit_rows(http, site, f"?since={until}")
        assert "<code>staff.login</code>" in html
        assert "<code>staff.user.created</code>" not in html
        assert f'name="until" value="{until}"' in await audit_rows(http, site, f"?until={until}")
        status, _, html = await get(http, site.base + f"/console/audit?since={until}&until={since}")
        assert status == 400 and "invalid until: must be later than since" in html


async def test_hostile_text_is_shown_escaped(site: Site) -> None:
    hostile_id = str(uuid.uuid4())

    async def plant(ctx: ServiceContext) -> None:
        async with ctx.engine.begin() as conn:
            # Names are validated where clusters are created; the console must not rely on it.
            await conn.execute(
                insert(clusters).values(
                    id=hostile_id, name=f"evil{HOSTILE}", geography="EU", created_at=ctx.clock()
                )
            )

    await site.run(plant)
    async with browser(site.base) as http:
        assert await log_in(http, site, "sam") == 303
        cluster_url = f"{site.base}/console/clusters/{site.cluster_id}"
        token = await token_of(http, cluster_url)
        form = {"csrf_token": token, "cluster": site.cluster_id, "role": "viewer"}
        status, where = await post(
            http, site.base + "/console/access", {**form, "reason": HOSTILE, "duration": "1h"}
        )
        assert status == 303
        request_id = where.rsplit("/", 1)[1]

        async def answer(ctx: ServiceContext) -> None:
            async with ctx.engine.begin() as conn:
                await conn.execute(
                    insert(support_commands).values(
                        id=str(uuid.uuid4()),
                        request_id=request_id,
                        cluster_id=site.cluster_id,
                        engineer="sam",
                        command="diagnostics",
                        arguments={},
                        issued_at=ctx.clock(),
                        status="ok",
                        summary=f"summary {HOSTILE}",
                        output=f"output {HOSTILE}",
                        answered_at=ctx.clock(),
                        received_at=ctx.clock(),
                    )
                )

        await site.run(answer)
        pages = [
            f"{site.base}/console/?q=evil",
            f"{site.base}/console/clusters/{hostile_id}",
            cluster_url,
            site.base + where,
            site.base + "/console/access",
            site.base + "/console/audit?actor=sam",
        ]
        for url in pages:
            status, _, html = await get(http, url)
            assert status == 200, url
            assert "<script>" not in html, url
        _, _, detail = await get(http, site.base + where)
        assert "output &lt;script&gt;alert(1)&lt;/script&gt;" in detail
        assert "summary &lt;script&gt;" in detail and "&lt;script&gt;alert(1)" in detail
        _, _, fleet = await get(http, f"{site.base}/console/?q=evil")
        assert "evil&lt;script&gt;alert(1)&lt;/script&gt;" in fleet
