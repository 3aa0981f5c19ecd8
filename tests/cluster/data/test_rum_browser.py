"""`/rum.js` in real Chromium against a real node: Do Not Track on and off (both choices),
opt-in before and after `enable()` and after `disable()`, and a typed password never captured.
Beacons are inspected as the browser sends them and as the node stored them; cookies as the
browser holds them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from clusterkit import ClusterUnderTest
from datakit import DataCluster
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from cluster.dev.processes import wait_until

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
PASSWORD = "hunter2-Secret!"
DNT_ON = "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'});"

PAGE = """<!doctype html><html><head><title>shop</title>
<script src="{script}"></script></head><body>
<form onsubmit="return false"><input id="email" type="email">
<input id="password" type="password"><button id="buy" type="button">Buy now</button></form>
</body></html>"""


class ShopSite:
    """The customer's page, on a loopback HTTP server of its own: /APP loads /rum.js for APP."""

    def __init__(self, script_base: str) -> None:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                app = self.path.strip("/").split("?")[0]
                body = PAGE.format(script=f"{site.script_base}&app={app}").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.script_base = script_base
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


class Visit:
    """One browser context on one app's page, recording every beacon it sends."""

    def __init__(self, browser: Browser, site: ShopSite, app: str, dnt: bool) -> None:
        headers = {"DNT": "1"} if dnt else {}
        self.context: BrowserContext = browser.new_context(
            ignore_https_errors=True, extra_http_headers=headers
        )
        if dnt:
            self.context.add_init_script(DNT_ON)
        self.beacons: list[dict[str, Any]] = []
        self.done: list[str] = []
        self.page: Page = self.context.new_page()
        self.page.on("request", self._sent)
        self.page.on("requestfinished", lambda r: self.done.append(r.url))
        self.page.goto(f"{site.origin}/{app}")
        self.page.wait_for_function("window.managedRum !== undefined", timeout=10_000)

    def _sent(self, request: Any) -> None:
        if request.url.endswith("/v1/beacon") and request.method == "POST":
            self.beacons.append(json.loads(request.post_data))

    def names(self) -> list[str]:
        return [e["name"] for b in self.beacons for e in b["events"]]

    def wait_for(self, name: str) -> None:
        assert wait_until(lambda: name in self.names(), 10), self.names()

    def settle(self) -> None:
        """Every request the page started has ended (what it would send, it has sent)."""
        self.page.wait_for_load_state("networkidle", timeout=10_000)

    def cookie(self) -> str | None:
        found = [c["value"] for c in self.context.cookies() if c["name"] == "mrum_session"]
        return found[0] if found else None

    def type_and_buy(self) -> None:
        self.page.fill("#email", "ann@example.com")
        self.page.fill("#password", PASSWORD)
        self.page.click("#password")
        self.page.click("#buy")

    def close(self) -> None:
        self.context.close()


def test_rum_js_privacy_in_chromium(cluster: ClusterUnderTest, browser: Browser) -> None:
    dc = DataCluster.create(cluster)
    dc.start(1)
    dc.cli("env", "create", "prod")
    dc.cli("env", "app", "prod", "shop", "--user-tags")  # DNT: anonymous session (default)
    dc.cli("env", "app", "prod", "quiet", "--dnt", "nothing")
    dc.cli("env", "app", "prod", "consent", "--opt-in")
    ingest = dc.cli("token", "create", "--env", "prod", "--scope", "ingest").strip()
    reader = dc.cli("token", "create", "--scope", "read", "--for", "alice").strip()
    dc.cli("data", "sensitive-data", "grant", "alice")
    assert wait_until(lambda: dc.request("n1", "/v1/capture-rules", token=reader)[0] == 403, 10)
    site = ShopSite(f"https://{dc.data['n1']}/rum.js?token={ingest}")
    try:
        # DNT off: a session with a cookie, the page load and clicks; the password never.
        v = Visit(browser, site, "shop", dnt=False)
        v.page.evaluate("managedRum.identify('ann@example.com')")
        v.type_and_buy()
        v.wait_for("click on button 'Buy now'")
        assert "click on input[password]" in v.names()
        session = v.cookie()
        assert session and {b["session"] for b in v.beacons} == {session}
        assert not any(b["dnt"] for b in v.beacons)
        v.close()

        # DNT on, choice "anonymous": captured without cookie and without user tag.
        v = Visit(browser, site, "shop", dnt=True)
        v.page.evaluate("managedRum.identify('bob@example.com')")
        v.type_and_buy()
        v.wait_for("click on button 'Buy now'")
        assert v.cookie() is None
        assert all(b["dnt"] and b["user_tag"] is None for b in v.beacons)
        anonymous = v.beacons[0]["session"]
        v.close()

        # DNT on, choice "nothing": nothing sent, no cookie.
        v = Visit(browser, site, "quiet", dnt=True)
        v.type_and_buy()
        v.settle()
        assert v.beacons == [] and v.cookie() is None
        assert v.page.evaluate("managedRum.capturing()") is False
        v.close()

        # DNT off, choice "nothing" does not matter: captured as usual.
        v = Visit(browser, site, "quiet", dnt=False)
        v.wait_for("page load")
        v.close()

        # Opt-in: nothing and no cookie before enable(); both after; none after disable().
        v = Visit(browser, site, "consent", dnt=False)
        v.type_and_buy()
        v.settle()
        assert v.beacons == [] and v.cookie() is None
        v.page.evaluate("managedRum.enable()")
        v.wait_for("monitoring enabled")
        assert v.names()[0] == "monitoring enabled"  # nothing from before enable()
        v.page.click("#buy")
        v.wait_for("click on button 'Buy now'")
        opted = v.cookie()
        assert opted and all(b["consent"] for b in v.beacons)
        sent = len(v.beacons)
        v.page.evaluate("managedRum.disable()")
        assert v.cookie() is None
        v.page.click("#buy")
        v.settle()
        assert len(v.beacons) == sent
        # A new page: the cookie is gone, so capture stays off until enable() again.
        v.page.reload()
        v.page.wait_for_function("window.managedRum !== undefined")
        v.page.click("#buy")
        v.settle()
        assert len(v.beacons) == sent and v.cookie() is None
        v.close()
    finally:
        site.close()

    # What the node stored: the tagged session, the anonymous one, the opted-in one; no
    # password and no typed e-mail anywhere; the anonymous session has no tag.
    stored = dc.read("sessions", "--env", "prod", token=reader)["rows"]
    by_id = {r["id"]: r for r in stored}
    assert by_id[session]["user_tag"] == "ann@example.com"
    assert by_id[anonymous]["user_tag"] is None and by_id[anonymous]["anonymous"] is True
    assert opted in by_id
    everything = json.dumps([stored, dc.read("actions", "--env", "prod", token=reader)])
    assert PASSWORD not in everything and "bob@example.com" not in everything
