"""The console over HTTP (a real in-process server on loopback, injected clock): login,
cookies, CSRF, idle expiry, headers and error pages."""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner
from console_helpers import Clock, running
from sqlalchemy import func, select
from staff_store import CHEAP, add_account

from contract.certs import write_dev_ca
from mission_control.app import create_app
from mission_control.cli import main as cli
from mission_control.console.mount import ConsoleMisconfigured, setup_console
from mission_control.db.engine import create_engine
from mission_control.db.schema import console_sessions
from mission_control.service.context import ServiceContext
from mission_control.service.fleet.enrollment import create_cluster
from mission_control.settings import Settings
from mission_control.staff.totp import code_at_step, time_step
from mission_control.tls import server_context

PASSWORD = "Quiet-Harbour-77"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Console:
    base: str
    db_url: str
    clock: Clock
    secret: str = ""

    def code(self, ahead: int = 0) -> str:
        return code_at_step(self.secret, time_step(self.clock()) + ahead)

    async def sessions(self) -> int:
        engine = create_engine(self.db_url)
        try:
            async with engine.connect() as conn:
                return int(await conn.scalar(select(func.count()).select_from(console_sessions)))
        finally:
            await engine.dispose()


async def add_staff(db_url: str, clock: Clock, name: str = "ann", role: str = "support-l2") -> str:
    engine = create_engine(db_url)
    try:
        return await add_account(engine, name, role, PASSWORD, clock)
    finally:
        await engine.dispose()


def mission_control(db_url: str, clock: Clock) -> web.Application:
    return create_app(Settings(db_url=db_url, sweep_interval_s=3600, **CHEAP), clock=clock)


@pytest.fixture
async def console(sqlite_db: str, clock: Clock) -> AsyncIterator[Console]:
    secret = await add_staff(sqlite_db, clock)
    async with running(mission_control(sqlite_db, clock)) as base:
        yield Console(base, sqlite_db, clock, secret)


def browser(base: str) -> aiohttp.ClientSession:
    """A client that keeps cookies as a browser does for http://127.0.0.1: Secure ones too
    (browsers treat loopback as a secure context); aiohttp needs `unsafe` for IP hosts."""
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=base)
    return aiohttp.ClientSession(cookie_jar=jar)


async def login_form(http: aiohttp.ClientSession, base: str) -> str:
    async with http.get(base + "/console/login") as reply:
        assert reply.status == 200
        match = TOKEN.search(await reply.text())
        assert match is not None
        return match.group(1)


async def log_in(
    http: aiohttp.ClientSession, console: Console, code: str | None = None, **extra: str
) -> aiohttp.ClientResponse:
    token = await login_form(http, console.base)
    form = {
        "csrf_token": token,
        "username": "ann",
        "password": PASSWORD,
        "totp": code or console.code(),
        **extra,
    }
    return await http.post(console.base + "/console/login", data=form, allow_redirects=False)


async def page_token(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as reply:
        match = TOKEN.search(await reply.text())
        assert match is not None, await reply.text()
        return match.group(1)


async def test_login_opens_a_strict_session_and_logout_ends_it(console: Console) -> None:
    async with browser(console.base) as http:
        reply = await log_in(http, console, next="/console/alerts")
        assert reply.status == 303 and reply.headers["Location"] == "/console/alerts"
        cookie = next(c for c in reply.headers.getall("Set-Cookie") if c.startswith("mc_session="))
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console/" in cookie
        # Secure although this listener speaks plain HTTP: in production a TLS proxy sits in
        # front of it, and browsers keep Secure cookies for http://127.0.0.1 anyway.
        assert "Secure" in cookie
        async with http.get(console.base + "/console/") as fleet:
            assert fleet.status == 200 and "Fleet" in await fleet.text()
        assert await console.sessions() == 1
        token = await page_token(http, console.base + "/console/")
        async with http.post(
            console.base + "/console/logout", data={"csrf_token": token}, allow_redirects=False
        ) as out:
            assert out.status == 303 and out.headers["Location"] == "/console/login"
        assert await console.sessions() == 0
        async with http.get(console.base + "/console/", allow_redirects=False) as again:
            assert again.status == 303
            assert again.headers["Location"] == "/console/login?next=/console/"


async def test_a_wrong_code_is_refused_and_creates_nothing(console: Console) -> None:
    async with browser(console.base) as http:
        reply = await log_in(http, console, code="000000" if console.code() != "000000" else "1")
        assert reply.status == 401
        assert "invalid username, password or code" in await reply.text()
        assert "mc_session" not in reply.cookies
    assert await console.sessions() == 0


async def test_unknown_names_read_as_known_ones_and_are_throttled_alike(console: Console) -> None:
    async def refusal(username: str) -> tuple[int, str]:
        async with browser(console.base) as http:
            reply = await log_in(http, console, code="000000", username=username)
            found = re.search(r'class="error" role="alert">([^<]*)<', await reply.text())
            assert found is not None
            return reply.status, re.sub(r"\d{4}-\d\d-\d\dT\S+Z", "<time>", found.group(1))

    answers = {}
    for name in ("ann", "nobody"):
        answers[name] = [await refusal(name) for _ in range(5)]
        console.clock.advance(hours=2)  # forgiven
    assert answers["ann"] == answers["nobody"]
    assert answers["ann"][0] == (401, "invalid username, password or code")
    assert answers["ann"][4] == (401, "too many failed attempts; try again after <time>")


async def test_a_code_is_never_accepted_twice(console: Console) -> None:
    code = console.code()
    async with browser(console.base) as http:
        assert (await log_in(http, console, code=code)).status == 303
    async with browser(console.base) as http:
        assert (await log_in(http, console, code=code)).status == 401
    assert await console.sessions() == 1


async def test_login_without_its_csrf_pair_is_refused(console: Console) -> None:
    async with browser(console.base) as http:
        form = {"username": "ann", "password": PASSWORD, "totp": console.code()}
        reply = await http.post(console.base + "/console/login", data=form)
        assert reply.status == 403 and "did not come from this page" in await reply.text()
        forged = {**form, "csrf_token": "forged"}
        await login_form(http, console.base)  # the browser holds a real cookie, the form lies
        assert (await http.post(console.base + "/console/login", data=forged)).status == 403
    assert await console.sessions() == 0


async def test_posts_without_the_session_token_do_nothing(console: Console) -> None:
    async with browser(console.base) as http:
        await log_in(http, console)
        for form in ({}, {"csrf_token": "wrong"}):
            async with http.post(console.base + "/console/logout", data=form) as reply:
                assert reply.status == 403 and "security token" in await reply.text()
        assert await console.sessions() == 1
        async with http.get(console.base + "/console/") as still:
            assert still.status == 200


async def test_an_idle_session_expires_on_the_injected_clock(console: Console) -> None:
    async with browser(console.base) as http:
        await log_in(http, console)
        for _ in range(3):  # activity keeps it alive well past 30 min in total
            console.clock.advance(minutes=29)
            async with http.get(console.base + "/console/alerts", allow_redirects=False) as r:
                assert r.status == 200
        console.clock.advance(minutes=30, seconds=1)
        async with http.get(console.base + "/console/alerts", allow_redirects=False) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/console/login?expired=1&next=/console/alerts"
        assert await console.sessions() == 0
        async with http.get(console.base + "/console/login?expired=1") as r:
            assert "Your session expired (after 30 min without activity)" in await r.text()


async def test_unauthenticated_requests_go_to_the_login(console: Console) -> None:
    async with browser(console.base) as http:
        async with http.get(console.base + "/", allow_redirects=True) as r:
            assert str(r.url).startswith(console.base + "/console/login?next=/console/")
        async with http.post(console.base + "/console/logout", data={}) as r:
            assert r.status == 403 and "not logged in" in await r.text()
        async with http.get(console.base + "/console/clusters/x", allow_redirects=False) as r:
            assert r.headers["Location"] == "/console/login?next=/console/clusters/x"


async def test_headers_and_html_error_pages(console: Console) -> None:
    async with browser(console.base) as http:
        await log_in(http, console)
        async with http.get(console.base + "/console/") as r:
            csp = r.headers["Content-Security-Policy"]
            assert "default-src 'none'" in csp and "script-src" not in csp
            assert r.headers["X-Frame-Options"] == "DENY"
            assert r.headers["Cache-Control"] == "no-store"
        async with http.get(console.base + "/console/static/console.css") as r:
            assert r.status == 200 and "no-store" not in r.headers.get("Cache-Control", "")
        async with http.get(console.base + "/console/clusters/missing") as r:
            assert r.status == 404 and r.content_type == "text/html"
            assert "no cluster &#39;missing&#39;" in await r.text()
        async with http.get(console.base + "/console/?page=x") as r:
            assert r.status == 400 and "invalid page" in await r.text()
        async with http.get(console.base + "/console/alerts?kind=bogus") as r:
            assert r.status == 400 and "invalid kind" in await r.text()
        async with http.get(console.base + "/console/no/such/page") as r:
            assert r.status == 404 and r.content_type == "text/html"
        async with http.get(console.base + "/api/v1/nope") as r:  # the API still speaks JSON
            assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
        async with http.put(console.base + "/console/login") as r:
            assert r.status == 405 and "POST" in r.headers["Allow"]


@pytest.mark.parametrize(
    "target",
    [
        "/console/../../evil",
        "/console/%2e%2e/%2E%2E/evil",
        "/console/./../evil",
        "/console//evil.example",
        "/console/%2f%2fevil.example",
        "/console/\\evil.example",
        "https://evil.example/console/",
        "//evil.example/console/",
    ],
)
async def test_after_login_the_browser_stays_under_the_console(
    console: Console, target: str
) -> None:
    async with browser(console.base) as http:
        reply = await log_in(http, console, next=target)
        assert reply.status == 303 and reply.headers["Location"] == "/console/"


async def test_behind_a_tls_proxy_every_cookie_is_secure(console: Console) -> None:
    # Production: nginx ends TLS and proxies plain HTTP to this listener (docs/deployment.md).
    proxied = {"X-Forwarded-Proto": "https", "Host": "mc.example.com"}
    async with browser(console.base) as http:
        async with http.get(console.base + "/console/login", headers=proxied) as form:
            page = await form.text()
            login_cookie = form.headers.getone("Set-Cookie")
            assert "plain HTTP" not in page
        reply = await log_in(http, console)
        cookies = reply.headers.getall("Set-Cookie")
        for cookie in [login_cookie, *cookies]:
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        token = await page_token(http, console.base + "/console/")
        async with http.post(
            console.base + "/console/logout", data={"csrf_token": token}, allow_redirects=False
        ) as out:
            cleared = out.headers.getone("Set-Cookie")
            assert cleared.startswith("mc_session=") and "Secure" in cleared


async def test_the_login_page_warns_when_reached_over_plain_http(console: Console) -> None:
    async with browser(console.base) as http:
        async with http.get(
            console.base + "/console/login", headers={"Host": "mc.example.com"}
        ) as reply:
            assert "reached over plain HTTP" in await reply.text()
        async with http.get(console.base + "/console/login") as reply:  # 127.0.0.1: fine
            assert "plain HTTP" not in await reply.text()


async def test_over_tls_the_cookie_is_secure(sqlite_db: str, clock: Clock, tmp_path: Path) -> None:
    secret = await add_staff(sqlite_db, clock)
    ca = write_dev_ca(tmp_path / "ca", ["127.0.0.1"])
    runner = web.AppRunner(mission_control(sqlite_db, clock), access_log=None, shutdown_timeout=1)
    await runner.setup()
    try:
        tls = server_context(ca.server_cert, ca.server_key)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        base = f"https://127.0.0.1:{runner.addresses[0][1]}"
        client_tls = ssl.create_default_context(cafile=str(ca.ca_cert))
        connector = aiohttp.TCPConnector(ssl=client_tls)
        async with aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as http:
            reply = await log_in(http, Console(base, sqlite_db, clock, secret))
            cookies = reply.headers.getall("Set-Cookie")
            session_cookie = next(c for c in cookies if c.startswith("mc_session="))
            assert "Secure" in session_cookie and "HttpOnly" in session_cookie
    finally:
        await runner.cleanup()


async def test_a_configured_staff_directory_decides_logins(
    sqlite_db: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISSION_CONTROL_CONSOLE_STAFF_DIRECTORY", "staff_store:refusing")
    secret = await add_staff(sqlite_db, clock)
    async with running(mission_control(sqlite_db, clock)) as base, browser(base) as http:
        # A real account, but the configured directory, not the staff accounts, decides.
        reply = await log_in(http, Console(base, sqlite_db, clock, secret))
        assert reply.status == 401 and "refused by the test directory" in await reply.text()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MISSION_CONTROL_CONSOLE_IDLE_TIMEOUT_S", "-5", "invalid console setting idle_timeout_s"),
        ("MISSION_CONTROL_CONSOLE_STAFF_DIRECTORY", "nowhere:thing", "staff directory"),
        ("MISSION_CONTROL_CONSOLE_STAFF_DIRECTORY", "no-colon", "expected module:factory"),
    ],
)
def test_a_misconfigured_console_stops_the_server_with_one_line(
    variable: str, value: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    from aiohttp import web

    with pytest.raises(ConsoleMisconfigured, match=message):
        setup_console(web.Application())
    db = tmp_path / "mc.db"
    result = CliRunner().invoke(
        cli, ["serve", "--db", f"sqlite:///{db}", "--listen", "127.0.0.1:0"]
    )
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


async def test_a_cluster_without_any_data_renders(console: Console) -> None:
    engine = create_engine(console.db_url)
    try:
        created = await create_cluster(
            ServiceContext(engine=engine, clock=console.clock), "new", "AU"
        )
    finally:
        await engine.dispose()
    async with browser(console.base) as http:
        await log_in(http, console)
        async with http.get(f"{console.base}/console/clusters/{created.id}") as r:
            page = await r.text()
            assert r.status == 200 and "pending" in page
            assert page.count("no data yet") == 2 and "No health check received yet" in page
        async with http.get(console.base + "/console/?q=nothing-like-this") as r:
            assert "No cluster matches" in await r.text()
        async with http.get(console.base + "/console/alerts?state=all&cluster=new") as r:
            assert "No alerts match these filters" in await r.text()
