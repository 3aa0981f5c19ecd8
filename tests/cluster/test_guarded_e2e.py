"""A holder of the credential changing what matters, and an epoch set back: real nodes, a real
Mission Control over HTTPS, a real ensemble.

- Changing the backup key is audited on the cluster and raises a setting_changed alert.
- Pointing the cluster at another Mission Control whose certificate does not chain to the
  configured CA: the credential is never sent there, and the change is alerted.
- ZooKeeper's epoch set back (as a restore from an older backup does): Mission Control refuses
  the new leader's epoch and names its newest; the leader moves past it and delivers the outbox,
  with no manual step and nothing lost.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from clusterkit import ZK_AUTH, ClusterUnderTest
from mc_exchange_kit import count, exchange_state

from backup.keys import generate_private_key, public_key_pem
from cluster import zk
from cluster.audit.store import AuditLog
from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import free_port, wait_until
from contract.certs import write_dev_ca


def alerts(mc: MissionControlServer, cluster: ClusterUnderTest) -> str:
    r = mc.cli("alerts", "list", "--cluster", cluster.name)
    assert r.returncode == 0, r.stderr
    return r.stdout


def edit_config(cluster: ClusterUnderTest, change: dict[str, object]) -> None:
    """As a holder of the credential would: straight into ZooKeeper, no command involved."""
    owner = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        data, stat = owner.get(cluster.paths.config)
        config = json.loads(data or b"{}")
        for dotted, value in change.items():
            section, key = dotted.split(".")
            config.setdefault(section, {})[key] = value
        owner.set(cluster.paths.config, json.dumps(config).encode(), stat.version)
    finally:
        zk.close(owner)


def audited(cluster: ClusterUnderTest, setting: str) -> bool:
    owner = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        return any(
            e.action == "setting.changed" and e.detail.get("setting") == setting
            for e in AuditLog(owner, cluster.paths).entries()
        )
    finally:
        zk.close(owner)


class Eavesdropper:
    """An HTTPS server with its own CA: records every Authorization header it is sent."""

    def __init__(self, base: Path) -> None:
        self.tls = write_dev_ca(base, ["127.0.0.1"])
        self.port = free_port()
        self.seen: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def _any(self, request: web.Request) -> web.Response:
        self.seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"duplicate": False, "support_requests": [], "commands": []})

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls.server_cert, self.tls.server_key)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", self.port, ssl_context=context)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> Eavesdropper:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def enrolled(cluster: ClusterUnderTest, mc: MissionControlServer) -> Iterator[ClusterUnderTest]:
    cluster.enroll(mc)
    cluster.start_nodes(3)
    assert wait_until(lambda: exchange_state(cluster).get("link", {}).get("state") == "ok", 60)
    yield cluster


def test_a_new_backup_key_is_audited_and_alerted(
    enrolled: ClusterUnderTest, mc: MissionControlServer
) -> None:
    first = public_key_pem(generate_private_key("x25519").public_key()).decode()
    edit_config(enrolled, {"backup.public_key": first})
    assert wait_until(lambda: audited(enrolled, "backup.public_key"), 20), enrolled.logs()
    assert "setting_changed" not in alerts(mc, enrolled)  # a first key is audited only
    other = public_key_pem(generate_private_key("x25519").public_key()).decode()
    edit_config(enrolled, {"backup.public_key": other})
    assert wait_until(lambda: "backup key changed" in alerts(mc, enrolled), 30), enrolled.logs()


def test_the_credential_never_goes_to_a_server_the_ca_does_not_vouch_for(
    enrolled: ClusterUnderTest, mc: MissionControlServer, tmp_path: Path
) -> None:
    with Eavesdropper(tmp_path / "evil") as evil:
        edit_config(enrolled, {"mission_control.url": evil.url})
        assert wait_until(lambda: "Mission Control URL changed" in alerts(mc, enrolled), 30)
        assert audited(enrolled, "mission_control.url")
        # The leader keeps trying the new URL: its certificate does not chain to the CA.
        assert wait_until(
            lambda: exchange_state(enrolled).get("link", {}).get("state") == "unreachable", 30
        ), enrolled.logs()
        assert evil.seen == []


def set_epoch_and_restart(cluster: ClusterUnderTest, epoch: int) -> None:
    """Stop every node, set ZooKeeper's epoch as a restore would, start them again."""
    cluster.stop()
    cluster.processes.clear()
    owner = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        owner.set(cluster.paths.epoch, str(epoch).encode())
    finally:
        zk.close(owner)
    for node in ("n1", "n2", "n3"):
        cluster.run(node)


def test_an_epoch_set_back_heals_and_nothing_is_lost(
    enrolled: ClusterUnderTest, mc: MissionControlServer
) -> None:
    health = "SELECT count(*) FROM messages WHERE kind = 'health'"
    # Mission Control first sees this cluster at a high epoch (11)...
    set_epoch_and_restart(enrolled, 10)
    assert wait_until(lambda: enrolled.snapshot().epoch.value == 11, 30), enrolled.logs()
    seen = count(mc, health)
    assert wait_until(lambda: count(mc, health) > seen, 60), enrolled.logs()
    newest = enrolled.snapshot().epoch.value
    # ...then ZooKeeper comes back from an older backup, at epoch 0: the new leader takes 1.
    set_epoch_and_restart(enrolled, 0)
    before = count(mc, health)
    # Mission Control refuses epoch 1 and names `newest`; the leader moves past it and the
    # health checks flow again, with no manual step.
    assert wait_until(lambda: count(mc, health) > before, 90), enrolled.logs()
    assert enrolled.snapshot().epoch.value > newest
    assert wait_until(lambda: exchange_state(enrolled).get("link", {}).get("state") == "ok", 30)
    log = "".join(p.log_tail(400) for p in enrolled.processes.values())
    assert "past the one Mission Control has seen" in log
