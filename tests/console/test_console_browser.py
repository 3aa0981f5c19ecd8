"""The console in a real browser (Debian's Chromium through Playwright) against a real
`mission-control serve` subprocess with a seeded fleet: log in, search and page the fleet, a
cluster's nodes and plots, alert filters; a wrong code, a missing CSRF token and an expired
session are refused. Each test logs in as its own user (a TOTP code is accepted only once)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from console_stack import SHOWCASE, Stack, StaffUser, chromium, console_stack
from mc_postgres import run_async
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select, update
from staff_store import cli_disable_account

from mission_control.db.engine import create_engine
from mission_control.db.schema import console_sessions

pytestmark = pytest.mark.xdist_group("console-browser")
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with console_stack(tmp_path_factory.mktemp("console-stack"), fleet=240) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


def log_in(page: Page, stack: Stack, user: StaffUser, code: str | None = None) -> None:
    page.goto(stack.base_url + "/console/")
    expect(page).to_have_url(stack.base_url + "/console/login?next=/console/")
    page.fill("input[name=username]", user.name)
    page.fill("input[name=password]", user.password)
    page.fill("input[name=totp]", code or user.code())
    page.click("button[type=submit]")


def session_cookie(context: BrowserContext) -> dict[str, object] | None:
    found = [c for c in context.cookies() if c["name"] == "mc_session"]
    return dict(found[0]) if found else None


def test_log_in_search_and_page_the_fleet(stack: Stack, context: BrowserContext) -> None:
    page = context.new_page()
    log_in(page, stack, stack.add_user("fleet-viewer", "operator"))
    expect(page.locator("h1")).to_have_text("Fleet")
    cookie = session_cookie(context)
    # Secure although the server speaks plain HTTP: Chromium keeps it for http://127.0.0.1.
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["secure"]
    expect(page.locator(".who .role")).to_have_text("operator")
    rows = page.locator("table.fleet tbody tr")
    expect(rows).to_have_count(50)
    expect(page.locator(".pager .where")).to_have_text("Page 1 of 5")
    first_page = rows.first.locator("a.name").inner_text()

    page.click("a[rel=next]")
    expect(page.locator(".pager .where")).to_have_text("Page 2 of 5")
    assert rows.first.locator("a.name").inner_text() > first_page

    page.fill("input[name=q]", "ACME")
    page.select_option("select[name=geography]", "EU")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(stack.base_url + "/console/?q=ACME&geography=EU&status=")
    names = rows.locator("a.name").all_inner_texts()
    assert names and all("acme" in n for n in names)
    assert set(rows.locator(".geo").all_inner_texts()) == {"EU"}
    expect(page.locator("table.fleet")).to_contain_text(SHOWCASE)

    page.click("a.clear")
    page.click(".tile.st-silent")
    expect(page.locator(".tile.st-silent")).to_have_class("tile st-silent selected")
    statuses = rows.locator("td:nth-child(2) .badge").all_inner_texts()
    assert statuses and set(statuses) == {"Silent"}


def test_cluster_page_shows_nodes_advice_and_plots(stack: Stack, context: BrowserContext) -> None:
    page = context.new_page()
    log_in(page, stack, stack.add_user("cluster-viewer", "support-l2"))
    page.fill("input[name=q]", SHOWCASE)
    page.click("form.filters button[type=submit]")
    page.click(f"a.name:text-is('{SHOWCASE}')")
    expect(page).to_have_url(f"{stack.base_url}/console/clusters/{stack.showcase_id}")
    expect(page.locator("h1 .badge")).to_have_text("undersized")
    nodes = page.locator("table.nodes tbody tr")
    expect(nodes).to_have_count(5)
    expect(nodes.nth(2)).to_contain_text("900 GiB / 1000 GiB")
    expect(nodes.nth(2).locator(".fill.crit")).to_have_count(1)
    datacenters = nodes.locator("td:nth-child(2)").all_inner_texts()
    assert datacenters == ["fra-1", "fra-2", "ams-1", "fra-1", "fra-2"]
    expect(page.locator("table.nodes .badge.leader")).to_have_count(1)
    expect(nodes.nth(1).locator(".badge.leader")).to_have_text("leader")
    expect(page.locator("table.advice")).to_contain_text("Advised minimum")
    expect(page.locator("ul.reasons")).to_contain_text("disk of node-3 at 90%")
    plots = page.locator("svg.plot")
    expect(plots).to_have_count(2)
    assert plots.nth(0).locator("polyline").count() >= 3  # CPU, memory, disk (with a gap)
    assert plots.nth(1).locator("rect.bar").count() > 300  # 7 days x 24 h, stacked
    box = plots.nth(0).bounding_box()
    assert box is not None and box["width"] > 500 and box["height"] > 150
    expect(page.locator("dl.facts").first).to_contain_text("48 in use of 64 licensed")
    backups = page.locator("dl.backups")
    expect(backups.locator("dd.last-failure")).to_contain_text(
        "node-3: NFS mount /backup is read-only"
    )
    expect(backups.locator("dd.last-success")).to_contain_text("ago")
    expect(backups.locator("dd").first).to_have_text("ok")
    drills = page.locator("dl.drills")
    expect(drills.locator("dd.last-drill")).to_contain_text("proven")
    expect(drills.locator("dd.drill-rto")).to_have_text("61.5 s")
    expect(drills.locator("dd.drill-rpo")).to_have_text("2 h")
    expect(drills.locator("dd.drill-trend")).to_contain_text("slower: 1.43x the median before")
    expect(drills.locator("svg.sparkline circle")).to_have_count(4)
    expect(plots.nth(0).locator("line.threshold")).to_have_count(1)
    expect(plots.nth(1).locator("text.axis-title")).to_have_text("host-unit hours")


def test_alerts_filter_by_kind_and_cluster(stack: Stack, context: BrowserContext) -> None:
    page = context.new_page()
    log_in(page, stack, stack.add_user("alert-watcher", "operator"))
    page.click("nav.nav a:text-is('Alerts')")
    expect(page.locator("h1")).to_have_text("Alerts")
    page.select_option("select[name=kind]", "cluster_silent")
    page.click("form.filters button[type=submit]")
    kinds = page.locator("table.alerts td.kind").all_inner_texts()
    assert kinds and set(kinds) == {"Cluster silent"}

    page.goto(stack.base_url + "/console/alerts")
    page.check("input[name=state][value=all]")
    page.fill("input[name=cluster]", SHOWCASE)
    page.click("form.filters button[type=submit]")
    table = page.locator("table.alerts")
    expect(table).to_contain_text("Backup failed")
    expect(table.locator("tr.cleared")).to_contain_text("cleared")
    clusters = table.locator("tbody td:nth-child(3)").all_inner_texts()
    assert set(clusters) == {SHOWCASE}


def test_a_wrong_code_is_refused(stack: Stack, context: BrowserContext) -> None:
    # An account made as an administrator makes it: `mission-control users add`.
    user = stack.add_cli_user("wrong-code", "support-l3")
    page = context.new_page()
    wrong = "111111" if user.code() != "111111" else "222222"
    log_in(page, stack, user, code=wrong)
    expect(page.locator("p.error")).to_have_text("invalid username, password or code")
    expect(page.locator("h1")).to_have_text("Log in")
    assert session_cookie(context) is None


def test_a_post_without_its_csrf_token_is_refused(stack: Stack, context: BrowserContext) -> None:
    page = context.new_page()
    log_in(page, stack, stack.add_user("csrf-target", "operator"))
    expect(page.locator("h1")).to_have_text("Fleet")
    # The browser's own request context sends the session cookie, but not the form's token.
    refused = context.request.post(stack.base_url + "/console/logout", form={})
    assert refused.status == 403 and "security token" in refused.text()
    forged = context.request.post(stack.base_url + "/console/logout", form={"csrf_token": "x"})
    assert forged.status == 403
    page.reload()
    expect(page.locator("h1")).to_have_text("Fleet")  # still logged in: nothing was done
    page.click("button:text-is('Log out')")  # the real form carries the token
    expect(page.locator("h1")).to_have_text("Log in")
    assert session_cookie(context) is None


def age_sessions(db_url: str, by: timedelta) -> None:
    async def work() -> None:
        engine = create_engine(db_url)
        try:
            async with engine.begin() as conn:
                rows = (await conn.execute(select(console_sessions))).all()
                for row in rows:
                    await conn.execute(
                        update(console_sessions)
                        .where(console_sessions.c.id_hash == row.id_hash)
                        .values(last_seen_at=row.last_seen_at - by, created_at=row.created_at - by)
                    )
        finally:
            await engine.dispose()

    run_async(work)


def test_an_expired_session_is_refused(stack: Stack, context: BrowserContext) -> None:
    page = context.new_page()
    log_in(page, stack, stack.add_user("sleepy", "support-l2"))
    expect(page.locator("h1")).to_have_text("Fleet")
    age_sessions(stack.db_url, timedelta(minutes=31))  # idle for longer than 30 min
    page.goto(stack.base_url + "/console/alerts")
    expect(page).to_have_url(stack.base_url + "/console/login?expired=1&next=/console/alerts")
    expect(page.locator("p.notice")).to_contain_text("Your session expired")
    assert session_cookie(context) is None


def test_disabling_an_account_ends_its_session(stack: Stack, context: BrowserContext) -> None:
    user = stack.add_cli_user("leaver", "operator")
    page = context.new_page()
    log_in(page, stack, user)
    expect(page.locator("h1")).to_have_text("Fleet")
    cli_disable_account(stack.db_url, user.name)  # `mission-control users disable leaver`
    page.goto(stack.base_url + "/console/alerts")
    expect(page).to_have_url(stack.base_url + "/console/login?next=/console/alerts")
    expect(page.locator("h1")).to_have_text("Log in")
    assert session_cookie(context) is None
    log_in(page, stack, user)  # and it cannot log in again
    expect(page.locator("p.error")).to_have_text("invalid username, password or code")
