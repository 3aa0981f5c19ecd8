"""`make screenshots`: every console page in a real Chromium, saved as docs/screenshots/*.png.

Everything is real: a Mission Control (`mission-control serve`, HTTPS with a throwaway CA) on a
database seeded with a fleet of 240 clusters and one showcase cluster with a week of history,
plus a real cluster of three nodes on a ZooKeeper ensemble, enrolled there. Staff accounts are
made with `mission-control users add`; the cluster operator approves and denies with
`managed support`. Everything is stopped by PID at the end.

    .venv/bin/python tests/console/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(HERE.parent), str(ROOT)]

from clusterkit import ClusterUnderTest  # noqa: E402
from console_stack import SHOWCASE, chromium, prepare  # noqa: E402
from live_console import (  # noqa: E402
    Account,
    add_account,
    approve,
    browser_context,
    log_in,
    reload_until,
)
from mc_postgres import run_async  # noqa: E402
from playwright.sync_api import Browser, Page, expect  # noqa: E402

from cluster.dev.mcserver import MissionControlServer  # noqa: E402
from cluster.dev.zookeeper import Ensemble  # noqa: E402

REAL_CLUSTER = "initech-prod-eu"
WAIT_MS = 60_000


@contextmanager
def real_world(base: Path) -> Iterator[tuple[MissionControlServer, ClusterUnderTest]]:
    """A seeded Mission Control and an enrolled 3-node cluster; all stopped afterwards."""
    os.environ["MISSION_CONTROL_SWEEP_INTERVAL_S"] = "3600"  # keep the seeded alerts as seeded
    os.environ["MISSION_CONTROL_CONSOLE_REFRESH_S"] = "2"
    with ExitStack() as stack:
        ensemble = Ensemble(base / "zk")
        stack.callback(ensemble.stop)
        ensemble.start()
        ensemble.wait_ready(60)
        mc = MissionControlServer(base / "mc")
        (base / "mc").mkdir(parents=True)
        run_async(lambda: prepare(mc.db_url, fleet=240, seed=7))
        stack.callback(mc.stop)
        mc.start()
        cluster = ClusterUnderTest(ensemble.connect_string, REAL_CLUSTER, base / "cluster")
        stack.callback(cluster.stop)
        cluster.enroll(mc)
        cluster.start_nodes(3)
        yield mc, cluster


def shoot(page: Page, out: Path, name: str) -> None:
    page.screenshot(path=str(out / f"console-{name}.png"), full_page=True)


def ask(page: Page, reason: str, role: str, duration: str) -> str:
    form = page.locator("form.request-access")
    form.locator("textarea[name=reason]").fill(reason)
    form.locator("select[name=role]").select_option(role)
    form.locator("select[name=duration]").select_option(duration)
    form.locator("button[type=submit]").click()
    expect(page.locator("h1 .badge")).to_have_text("pending")
    return page.url.rsplit("/", 1)[1]


def engineer_pages(
    browser: Browser, mc: MissionControlServer, cluster: ClusterUnderTest, dana: Account, out: Path
) -> None:
    used: set[str] = set()
    with browser_context(browser, WAIT_MS) as context:
        page = context.new_page()
        page.goto(mc.url + "/console/")
        page.screenshot(path=str(out / "console-login.png"))
        log_in(page, mc, dana, dana.next_code(used))
        shoot(page, out, "fleet")
        page.goto(mc.url + "/console/?q=acme&geography=EU")
        shoot(page, out, "fleet-search")
        page.goto(mc.url + "/console/alerts")
        shoot(page, out, "alerts")
        page.goto(mc.url + f"/console/clusters/{SHOWCASE}")
        shoot(page, out, "cluster")

        cluster_url = f"{mc.url}/console/clusters/{REAL_CLUSTER}"
        page.goto(cluster_url)
        assert reload_until(page, "table.nodes tbody tr", 3), cluster.logs()
        first = ask(page, "ticket 4711: ingest is slow since the upgrade", "viewer", "2h")
        shoot(page, out, "access-pending")
        approve(cluster, first, "carol")
        expect(page.locator("h1 .badge")).to_have_text("approved", timeout=WAIT_MS)
        page.click("form.cmd-diagnostics button")
        expect(page.locator("li.command .badge").first).to_have_text("ok", timeout=WAIT_MS)
        page.click("form.cmd-config-get button")
        expect(page.locator("li.command .badge").first).to_have_text("ok", timeout=WAIT_MS)
        shoot(page, out, "access-grant")

        page.goto(cluster_url)
        second = ask(page, "ticket 4720: change the retention of raw data", "user", "4h")
        r = cluster.cli(
            "support",
            "deny",
            second,
            "--reason",
            "not during the quarter close",
            "--operator",
            "carol",
        )
        assert r.returncode == 0, r.stderr
        expect(page.locator("h1 .badge")).to_have_text("denied", timeout=WAIT_MS)
        page.goto(f"{mc.url}/console/access/{first}")
        page.click("button:text-is('End the grant now')")
        expect(page.locator("h1 .badge")).to_have_text("ended")
        page.goto(cluster_url)
        shoot(page, out, "cluster-engineer")
        page.goto(mc.url + "/console/access")
        shoot(page, out, "access-list")


def operator_pages(browser: Browser, mc: MissionControlServer, opal: Account, out: Path) -> None:
    with browser_context(browser, WAIT_MS) as context:
        page = context.new_page()
        log_in(page, mc, opal, opal.next_code(set()))
        page.goto(f"{mc.url}/console/clusters/{REAL_CLUSTER}")
        shoot(page, out, "cluster-operator")
        page.goto(f"{mc.url}/console/audit?cluster={REAL_CLUSTER}")
        shoot(page, out, "audit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mc-shots-") as tmp, real_world(Path(tmp)) as world:
        mc, cluster = world
        dana = add_account(mc, "dana", "support-l3")
        opal = add_account(mc, "opal", "operator")
        with chromium() as browser:
            engineer_pages(browser, mc, cluster, dana, args.out)
            operator_pages(browser, mc, opal, args.out)
    for png in sorted(args.out.glob("console-*.png")):
        print(png.relative_to(ROOT) if png.is_relative_to(ROOT) else png)


if __name__ == "__main__":
    main()
