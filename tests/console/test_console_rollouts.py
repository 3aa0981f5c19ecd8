"""The Rollouts page in a real browser (Debian's Chromium through Playwright) against a real
`mission-control serve` with a small seeded fleet: an operator sees a rollout, its waves and its
clusters, pauses and resumes it with the page's buttons (CSRF-protected forms); a support
engineer sees the page without the buttons. The server has no release repository, so it takes
no step: the rollout stays as created."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from console_stack import Stack, chromium, console_stack
from mc_postgres import run_async
from playwright.sync_api import Browser, Page, expect

from contract.audit.events import Actor, ActorKind
from contract.messages import StaffRole
from mission_control.app import service_context
from mission_control.cli_common import settings_from
from mission_control.db.engine import create_engine
from mission_control.service.releases import rollouts

pytestmark = pytest.mark.xdist_group("console-browser")
TIMEOUT_MS = 15_000
VERSION = "2.0.0"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with console_stack(tmp_path_factory.mktemp("rollouts-stack"), fleet=6) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _create_rollout(stack: Stack) -> int:
    async def create() -> int:
        engine = create_engine(stack.db_url)
        try:
            ctx = service_context(settings_from(db_url=stack.db_url), engine)
            made = await rollouts.create(
                ctx,
                VERSION,
                "all",
                "1,50%,100%",
                timedelta(hours=1),
                [VERSION],
                Actor("vendor-ops", ActorKind.STAFF),
            )
            return made.id
        finally:
            await engine.dispose()

    return run_async(create)


def _log_in(page: Page, stack: Stack, role: StaffRole, name: str) -> None:
    user = stack.add_user(name, role)
    page.goto(stack.base_url + "/console/login")
    page.fill("input[name=username]", user.name)
    page.fill("input[name=password]", user.password)
    page.fill("input[name=totp]", user.code())
    page.click("button[type=submit]")
    expect(page.locator("nav.nav")).to_be_visible()


def test_operators_see_and_steer_rollouts_engineers_only_see(
    stack: Stack, browser: Browser
) -> None:
    rollout = _create_rollout(stack)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        _log_in(page, stack, StaffRole.OPERATOR, "rollout-operator")
        page.click("nav.nav a:text-is('Rollouts')")
        card = page.locator(f"#rollout-{rollout}")
        expect(card.locator("h2")).to_contain_text(f"Rollout {rollout}: {VERSION}")
        expect(card.locator("h2 .pill")).to_have_text("active")
        rows = card.locator("tbody tr")
        assert rows.count() >= 1
        expect(rows.first.locator("td.state")).to_have_text("waiting")
        expect(rows.first.locator("td").first).to_have_text("1")

        card.locator("button:text-is('Pause')").click()
        expect(card.locator("h2 .pill")).to_have_text("paused")
        expect(card.locator(".reason")).to_contain_text("paused by rollout-operator")
        card.locator("button:text-is('Resume')").click()
        expect(card.locator("h2 .pill")).to_have_text("active")
    finally:
        context.close()

    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        _log_in(page, stack, StaffRole.SUPPORT_L2, "rollout-engineer")
        page.goto(stack.base_url + "/console/rollouts")
        card = page.locator(f"#rollout-{rollout}")
        expect(card.locator("h2")).to_contain_text(VERSION)
        expect(card.locator("button")).to_have_count(0)
        # the handler checks the role too, whatever the page shows
        token = page.locator("form[action='/console/logout'] input[name=csrf_token]")
        csrf = token.get_attribute("value") if token.count() else ""
        answer = page.request.post(
            f"{stack.base_url}/console/rollouts/{rollout}/pause",
            form={"csrf_token": csrf or ""},
            max_redirects=0,
        )
        assert answer.status == 403
    finally:
        context.close()
