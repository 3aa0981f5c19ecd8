"""Remote access through the console, end to end in a real browser (Playwright + Debian's
Chromium) against a real Mission Control (HTTPS, SQLite) and a real enrolled cluster of three
nodes on a ZooKeeper ensemble: an engineer logs in with TOTP, sees the cluster's nodes, asks
for access; the cluster operator approves with `managed support approve`; the request's page
shows the decision by itself; the engineer runs `diagnostics`, reads the answer and ends the
grant; an operator finds no remote-access controls but a license form, and the whole story in
the audit page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clusterkit import ClusterUnderTest
from console_stack import chromium
from live_console import (
    add_account,
    approve,
    browser_context,
    log_in,
    reload_until,
)
from playwright.sync_api import Browser, expect

from cluster.dev.mcserver import MissionControlServer

pytestmark = pytest.mark.xdist_group("console-remote-access")
STATE_TIMEOUT_MS = 45_000


@pytest.fixture(autouse=True)
def quick_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages awaiting the cluster reload every 2 s (autouse: set before `mc` starts)."""
    monkeypatch.setenv("MISSION_CONTROL_CONSOLE_REFRESH_S", "2")


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_request_approve_run_diagnostics_end_and_audit(
    cluster: ClusterUnderTest, mc: MissionControlServer, browser: Browser
) -> None:
    cluster.enroll(mc)
    cluster.start_nodes(3)
    erin = add_account(mc, "erin", "support-l2")
    opal = add_account(mc, "opal", "operator")
    used: set[str] = set()

    with browser_context(browser) as engineer:
        page = engineer.new_page()
        log_in(page, mc, erin, erin.next_code(used))
        expect(page.locator(".who .role")).to_have_text("support-l2")
        page.click(f"a.name:text-is('{cluster.name}')")
        assert reload_until(page, "table.nodes tbody tr", 3), cluster.logs()
        nodes = page.locator("table.nodes td.name").all_inner_texts()
        assert sorted(nodes) == ["n1", "n2", "n3"]
        expect(page.locator("form.license-edit")).to_have_count(0)

        form = page.locator("form.request-access")
        form.locator("textarea[name=reason]").fill("ticket 4711: slow ingest")
        form.locator("select[name=role]").select_option("viewer")
        form.locator("select[name=duration]").select_option("1h")
        form.locator("button[type=submit]").click()
        expect(page.locator("h1 .badge")).to_have_text("pending")
        expect(page.locator(".state-line")).to_contain_text("waiting for the cluster's operator")
        request_id = page.url.rsplit("/", 1)[1]

        approve(cluster, request_id, "carol")
        # No click: the page reloads itself until the decision arrives.
        expect(page.locator("h1 .badge")).to_have_text("approved", timeout=STATE_TIMEOUT_MS)
        expect(page.locator(".state-line")).to_contain_text("approved by carol as viewer")
        expect(page.locator("form.cmd-config-set")).to_have_count(0)  # a viewer's grant

        page.click("form.cmd-diagnostics button")
        answer = page.locator("li.command").first
        expect(answer.locator(".badge")).to_have_text("ok", timeout=STATE_TIMEOUT_MS)
        expect(answer.locator("pre.output")).to_contain_text("n1")

        page.click("button:text-is('End the grant now')")
        expect(page.locator("h1 .badge")).to_have_text("ended")
        expect(page.locator(".state-line")).to_contain_text("by erin")
        expect(page.locator("form.run")).to_have_count(0)

    with browser_context(browser) as operator:
        page = operator.new_page()
        log_in(page, mc, opal, opal.next_code(used))
        expect(page.locator("nav.nav")).to_contain_text("Access requests")
        page.click(f"a.name:text-is('{cluster.name}')")
        expect(page.locator("table.nodes tbody tr")).to_have_count(3)
        expect(page.locator("form.request-access")).to_have_count(0)
        expect(page.locator("form.license-edit")).to_have_count(1)
        expect(page.locator("#remote-access")).to_contain_text("ticket 4711")
        page.goto(f"{mc.url}/console/access/{request_id}")
        expect(page.locator("h1 .badge")).to_have_text("ended")
        expect(page.locator("form")).to_have_count(1)  # logout only: nothing to act on

        page.click("nav.nav a:text-is('Audit')")
        page.fill("input[name=cluster]", cluster.name)
        page.click("form.filters button[type=submit]")
        actions = set(page.locator("table.audit td.action").all_inner_texts())
        for done in ("support.requested", "support.approved", "support.command", "support.ended"):
            assert done in actions, actions
        page.fill("input[name=cluster]", "")
        page.fill("input[name=actor]", "erin")
        page.fill("input[name=action]", "staff.login")
        page.click("form.filters button[type=submit]")
        expect(page.locator("table.audit tbody tr")).to_have_count(1)
        expect(page.locator("table.audit td.actor")).to_contain_text("erin")
