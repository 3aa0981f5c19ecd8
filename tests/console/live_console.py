"""Helpers for driving the console against a real Mission Control (`cluster.dev.mcserver`,
HTTPS with a dev CA) and a real enrolled cluster: staff accounts made with
`mission-control users add` (TOTP from the printed otpauth URI), a Chromium login, and the
cluster operator's side of an access request. Shared by the browser test and `make screenshots`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyotp
from clusterkit import ClusterUnderTest
from playwright.sync_api import Browser, BrowserContext, Page

from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import wait_until

PASSWORD = "Granite-Meadow-58"


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    totp: pyotp.TOTP

    def next_code(self, used: set[str]) -> str:
        """A code not used before by this account (waits for the next step if needed): Mission
        Control never accepts a code twice. `used` may be shared between accounts."""

        def key() -> str:
            return f"{self.name}:{self.totp.now()}"

        assert wait_until(lambda: key() not in used, 35, 0.5), "no fresh TOTP code"
        used.add(key())
        return key().split(":", 1)[1]


def add_account(mc: MissionControlServer, name: str, role: str) -> Account:
    """`mission-control users add NAME --role ROLE`, the password twice on stdin."""
    r = mc.cli("users", "add", name, "--role", role, stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert r.returncode == 0, r.stderr
    return Account(name, role, pyotp.parse_uri(r.stdout.strip()))


@contextmanager
def browser_context(browser: Browser, timeout_ms: int = 20_000) -> Iterator[BrowserContext]:
    # The server's certificate comes from the test's throwaway CA, unknown to Chromium.
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, ignore_https_errors=True)
    ctx.set_default_timeout(timeout_ms)
    try:
        yield ctx
    finally:
        ctx.close()


def log_in(page: Page, mc: MissionControlServer, account: Account, code: str) -> None:
    page.goto(mc.url + "/console/")
    page.fill("input[name=username]", account.name)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=totp]", code)
    page.click("button[type=submit]")
    page.wait_for_url(mc.url + "/console/")


def reload_until(page: Page, selector: str, count: int, timeout_s: float = 30) -> bool:
    """Reload `page` until `selector` matches `count` elements (for pages without refresh)."""

    def ready() -> bool:
        if page.locator(selector).count() == count:
            return True
        page.reload()
        return False

    return wait_until(ready, timeout_s, 0.5)


def pending_on_cluster(cluster: ClusterUnderTest, request_id: str) -> bool:
    r = cluster.cli("support", "requests", "--json")
    return r.returncode == 0 and any(
        x.get("id") == request_id and x.get("state") == "pending" for x in json.loads(r.stdout)
    )


def approve(cluster: ClusterUnderTest, request_id: str, operator: str) -> None:
    """The cluster operator approves, once the request has reached the cluster."""
    assert wait_until(lambda: pending_on_cluster(cluster, request_id), 60), cluster.logs()
    r = cluster.cli("support", "approve", request_id, "--operator", operator)
    assert r.returncode == 0, r.stderr
