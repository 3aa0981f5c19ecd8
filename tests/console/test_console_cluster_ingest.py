"""What a cluster reports over the real API shows on the console: the nodes table with each
node's datacenter and the leader, the last backup success and failure on the cluster and fleet
pages, and the last restore drill (a failed one with its badge and reason). A real in-process
Mission Control on loopback; the "cluster" speaks HTTP to it exactly as a leader does (enroll,
then bearer-authenticated messages)."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from console_helpers import Clock, running
from staff_store import CHEAP, add_account

from mission_control.app import create_app
from mission_control.db.engine import create_engine
from mission_control.service.context import ServiceContext
from mission_control.service.fleet import enrollment
from mission_control.settings import Settings
from mission_control.staff.totp import code_at_step, time_step

PASSWORD = "Copper-Beacon-19"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
GIB = 1024**3
FIRST_BACKUP = "20300610T020000Z-0a1b2c3d"
SECOND_BACKUP = "20300610T080000Z-4e5f6a7b"


@dataclass
class Site:
    base: str
    clock: Clock
    secret: str
    cluster_id: str
    credential: str

    async def send(self, kind: str, body: dict[str, Any], message_id: str = "") -> int:
        """One message from the cluster's leader (epoch 1)."""
        message = {"message_id": message_id or str(uuid.uuid4()), "epoch": 1, **body}
        headers = {"Authorization": f"Bearer {self.credential}"}
        url = f"{self.base}/api/v1/clusters/{self.cluster_id}/{kind}"
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, json=message, headers=headers) as reply,
        ):
            assert reply.status == 200, await reply.text()
            return reply.status


@pytest.fixture
async def site(sqlite_db: str, clock: Clock) -> AsyncIterator[Site]:
    engine = create_engine(sqlite_db)
    try:
        secret = await add_account(engine, "otto", "operator", PASSWORD, clock)
        ctx = ServiceContext(engine=engine, clock=clock)
        created = await enrollment.create_cluster(ctx, "delta-eu", "EU")
    finally:
        await engine.dispose()
    app = create_app(Settings(db_url=sqlite_db, sweep_interval_s=3600, **CHEAP), clock=clock)
    async with running(app) as base, aiohttp.ClientSession() as http:
        async with http.post(
            base + "/api/v1/enroll", json={"token": created.enrollment_token}
        ) as reply:
            assert reply.status == 200, await reply.text()
            credential = (await reply.json())["credential"]
        yield Site(base, clock, secret, created.id, credential)


def node(name: str, datacenter: str, leader: bool) -> dict[str, Any]:
    return {
        "node": name,
        "datacenter": datacenter,
        "leader": leader,
        "version": "1.42.3",
        "state": "healthy",
        "cpu_cores": 8,
        "cpu_percent": 30.0,
        "memory_total_bytes": 32 * GIB,
        "memory_used_bytes": 12 * GIB,
        "disk_total_bytes": 500 * GIB,
        "disk_used_bytes": 200 * GIB,
    }


@contextlib.asynccontextmanager
async def logged_in(site: Site) -> AsyncIterator[aiohttp.ClientSession]:
    """A browser logged in to the console as the operator otto."""
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=site.base)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(site.base + "/console/login") as reply:
            match = TOKEN.search(await reply.text())
            assert match is not None
        code = code_at_step(site.secret, time_step(site.clock()))
        form = {"csrf_token": match.group(1), "username": "otto", "password": PASSWORD}
        async with http.post(site.base + "/console/login", data={**form, "totp": code}) as r:
            assert r.status == 200 and str(r.url).endswith("/console/")
        yield http
        site.clock.advance(seconds=30)  # the next login needs the next TOTP code


async def console_pages(site: Site, *paths: str) -> list[str]:
    pages = []
    async with logged_in(site) as http:
        for path in paths:
            async with http.get(site.base + path) as reply:
                assert reply.status == 200, path
                pages.append(await reply.text())
    return pages


def nodes_table(html: str) -> list[str]:
    body = html.split('<table class="grid nodes">', 1)[1].split("<tbody>", 1)[1]
    return body.split("</tbody>", 1)[0].split("<tr>")[1:]


async def test_the_nodes_table_shows_datacenters_and_the_leader(site: Site) -> None:
    nodes = [node("n1", "fra-1", False), node("n2", "fra-2", True), node("n3", "fra-1", False)]
    await site.send("health", {"nodes": nodes})
    (html,) = await console_pages(site, f"/console/clusters/{site.cluster_id}")
    rows = nodes_table(html)
    assert len(rows) == 3
    for row, (name, datacenter, leader) in zip(
        rows, [("n1", "fra-1", False), ("n2", "fra-2", True), ("n3", "fra-1", False)], strict=True
    ):
        assert f'<td class="name">{name}</td>' in row and f"<td>{datacenter}</td>" in row
        assert ('<span class="badge leader">leader</span>' in row) is leader
        assert "—" not in row  # nothing unknown: the cluster sends both fields


async def test_backups_last_success_and_failure_from_the_clusters_events(site: Site) -> None:
    cluster_path = f"/console/clusters/{site.cluster_id}"
    (html,) = await console_pages(site, cluster_path)
    assert "no backup reported" in html

    ok = {"kind": "backup_succeeded", "detail": f"backup {FIRST_BACKUP}: ok"}
    ok_id = str(uuid.uuid4())
    await site.send("events", ok, ok_id)
    succeeded_at = site.clock()
    site.clock.advance(hours=6)
    failed = {"kind": "backup_failed", "detail": f"backup {SECOND_BACKUP}: NFS mount is read-only"}
    await site.send("events", failed)
    site.clock.advance(hours=1)
    await site.send("events", ok, ok_id)  # a resend: answered as a duplicate, changes nothing
    html, fleet = await console_pages(site, cluster_path, "/console/?q=delta")
    assert '<span class="badge sev-critical">failing</span> since 1 h ago' in html
    success = html.split('<dd class="last-success">', 1)[1].split("</dd>", 1)[0]
    assert "7 h ago" in success and f"<code>{FIRST_BACKUP}</code>" in success
    assert succeeded_at.strftime("%Y-%m-%d %H:%M UTC") in success
    failure = html.split('<dd class="last-failure">', 1)[1].split("</dd>", 1)[0]
    assert "1 h ago" in failure and f"<code>{SECOND_BACKUP}</code>" in failure
    assert "NFS mount is read-only" in failure
    assert '<span class="failed"' in fleet and "failed 1 h ago" in fleet

    site.clock.advance(hours=1)
    await site.send("events", {"kind": "backup_succeeded", "detail": "backup x: ok"})
    html, fleet = await console_pages(site, cluster_path, "/console/?q=delta")
    assert '<span class="badge ok">ok</span>' in html and "failing" not in html
    assert "<code>x</code>" in html.split('<dd class="last-success">', 1)[1].split("</dd>")[0]
    assert "NFS mount is read-only" in html  # the last failure stays on record
    backup_cell = fleet.split('<td class="backup">', 1)[1].split("</td>", 1)[0]
    assert "just now" in backup_cell and "failed" not in backup_cell


async def test_a_changed_setting_shows_on_the_alerts_page_until_acknowledged(site: Site) -> None:
    detail = "fingerprint SHA256:9f8e"
    body = {"kind": "setting_changed", "detail": detail, "setting": "backup.public_key"}
    await site.send("events", body)
    async with logged_in(site) as http:
        async with http.get(site.base + "/console/alerts?kind=setting_changed") as reply:
            page = await reply.text()
        assert "Setting changed" in page and f"backup key changed: {detail}" in page
        action = re.search(r'action="(/console/alerts/\d+/acknowledge)"', page)
        token = TOKEN.search(page)
        assert action is not None and token is not None
        async with http.post(
            site.base + action.group(1), data={"csrf_token": token.group(1)}
        ) as reply:
            assert reply.status == 200 and str(reply.url).endswith("/console/alerts")
            assert detail not in await reply.text()
        async with http.post(
            site.base + action.group(1), data={"csrf_token": token.group(1)}
        ) as reply:
            assert reply.status == 409 and "was closed at" in await reply.text()


def last_drill(html: str) -> str:
    return html.split('<dd class="last-drill">', 1)[1].split("</dd>", 1)[0]


async def test_a_failed_drill_shows_a_failed_badge_with_its_reason(site: Site) -> None:
    cluster_path = f"/console/clusters/{site.cluster_id}"
    proven = {
        "drill_id": "drill-20300610T040000Z-0a0b0c0d", "backup_id": FIRST_BACKUP, "ok": True,
        "rto_seconds": 42.0, "rpo_seconds": 7200.0, "bytes": GIB, "files": 12, "decrypted": True,
    }  # fmt: skip
    ok = {"kind": "drill_succeeded", "detail": "drill ok", "drill": proven}
    await site.send("events", ok)
    (html,) = await console_pages(site, cluster_path)
    assert '<span class="badge ok">proven</span>' in last_drill(html)
    assert '<dd class="drill-rto">42.0 s</dd>' in html

    site.clock.advance(hours=2)
    reason = "part n1: ciphertext digest does not match the manifest"
    broken = {"drill_id": "drill-20300610T060000Z-1a1b1c1d", "backup_id": SECOND_BACKUP}
    failed = {"kind": "drill_failed", "detail": reason, "drill": {**broken, "ok": False}}
    await site.send("events", failed)
    (html,) = await console_pages(site, cluster_path)
    shown = last_drill(html)
    assert '<span class="badge sev-critical">failed</span>' in shown and "proven" not in shown
    assert f"<code>{SECOND_BACKUP}</code>" in shown and reason in shown and "just now" in shown
    assert '<dd class="drill-rto"><span class="muted">-</span></dd>' in html
