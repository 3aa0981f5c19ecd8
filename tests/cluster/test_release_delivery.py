"""Releases delivered by Mission Control, for real: a `mission-control serve` process serving
a release repository signed with `mission-control releases` (the project's real wheel made on
this machine), clusters on the shared TLS ensemble fetching it over HTTPS with their
credential, verifying it with the same TUF client and trusted state as a bundle.

Covered: the routes answer only the cluster's own credential (outsiders get nothing, paths
outside the repository are 404); `releases offer` refuses an unknown version or cluster;
`managed upgrade apply V` fetches, verifies and plans, and each node fetches the release into
its own data directory; a file tampered on Mission Control's disk is refused (audit entry,
alert, no plan); the leader installs an offer only inside the maintenance window, fetching
nothing outside it; a refused offer is not fetched again after a leader change. No rolling
upgrade is carried out here (test_release_rollout.py does one): the release holds only the
project's wheel, so a node's install stops at pip, quickly.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import sqlite3
import ssl
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clusterkit import ZK_AUTH, ClusterUnderTest
from releasekit import Vendor, stored_plan
from wheelhouse import project_wheel

from cluster import zk
from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import wait_until
from cluster.upgrade.plan import MISSION_CONTROL
from cluster.upgrade.window import DAYS

FETCHED, TAMPERED, OFFERED = "0.1.1", "0.1.2", "0.1.3"


@dataclass
class Delivery:
    vendor: Vendor
    mc: MissionControlServer
    wheels: dict[str, Path]  # version -> the published file (in the repository)

    def target(self, version: str) -> Path:
        return self.vendor.repo / "targets" / "releases" / version / self.wheels[version].name


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delivery]:
    base = tmp_path_factory.mktemp("delivery")
    vendor = Vendor(base / "vendor")
    wheels = {}
    for version in (FETCHED, TAMPERED, OFFERED):
        wheel = project_wheel(base / "dist" / version, version)
        r = vendor.publish(version, files=[wheel])
        assert r.returncode == 0, r.stderr
        wheels[version] = wheel
    mc = MissionControlServer(base / "mc", access_log=True, releases_repo=vendor.repo)
    mc.start()
    try:
        yield Delivery(vendor, mc, wheels)
    finally:
        mc.stop()


def _context(mc: MissionControlServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(mc.ca_file))


def _enroll_directly(mc: MissionControlServer, name: str) -> tuple[str, str]:
    """A cluster record enrolled over the API: (cluster id, credential)."""
    token = mc.create_cluster(name)
    request = urllib.request.Request(
        f"{mc.url}/api/v1/enroll",
        data=json.dumps({"token": token}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10, context=_context(mc)) as reply:
        enrolled = json.load(reply)
    return enrolled["cluster_id"], enrolled["credential"]


def _get(mc: MissionControlServer, path: str, credential: str | None) -> tuple[int, bytes, str]:
    """GET `path` exactly as written (no client-side normalisation of `..`)."""
    conn = http.client.HTTPSConnection("127.0.0.1", mc.port, context=_context(mc), timeout=10)
    try:
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        conn.request("GET", path, headers=headers)
        reply = conn.getresponse()
        return reply.status, reply.read(), reply.getheader("Content-Type") or ""
    finally:
        conn.close()


def test_the_repository_is_served_to_its_own_cluster_only(delivery: Delivery) -> None:
    mc, repo = delivery.mc, delivery.vendor.repo
    own, credential = _enroll_directly(mc, "release-reader")
    other, other_credential = _enroll_directly(mc, "release-neighbour")
    base = f"/api/v1/clusters/{own}/releases"
    wheel = delivery.wheels[FETCHED].name

    status, body, kind = _get(mc, f"{base}/metadata/timestamp.json", credential)
    assert status == 200 and kind == "application/octet-stream"
    assert body == (repo / "metadata" / "timestamp.json").read_bytes()
    status, body, _ = _get(mc, f"{base}/targets/releases/{FETCHED}/{wheel}", credential)
    assert status == 200 and body == delivery.target(FETCHED).read_bytes()
    assert _get(mc, f"{base}/offer", credential)[:2] == (200, b'{"version":null,"offered_at":null}')

    for missing in (
        "metadata/2.root.json",  # the TUF client's "no newer root"
        "metadata/..%2F..%2Fmc.db",
        "metadata/../../mc.db",
        f"targets/releases/{FETCHED}/..%2F..%2F..%2Fmetadata%2Froot.json",
        f"targets/releases/{FETCHED}/../../../../mc.db",
        "targets/releases/..%2F..%2F..%2Fmc/mc.db",
        f"targets/releases/{FETCHED}/nothing.whl",
    ):
        status, body, _ = _get(mc, f"{base}/{missing}", credential)
        assert status in (400, 404), (missing, status)
        assert b"SQLite" not in body and b"signed" not in body, missing

    secret = credential.rsplit(".", 1)[0] + ".forged"
    for who, cred in (("anonymous", None), ("forged", secret), ("neighbour", other_credential)):
        for path in (
            f"{base}/metadata/timestamp.json",
            f"{base}/targets/releases/{FETCHED}/{wheel}",
            f"{base}/offer",
        ):
            status, body, _ = _get(mc, path, cred)
            assert status == (403 if who == "neighbour" else 401), (who, path, status)
            assert b"signed" not in body and not body.startswith(b"PK"), (who, path)
    assert other != own


def test_an_offer_names_a_published_release_of_a_known_cluster(delivery: Delivery) -> None:
    mc, repo = delivery.mc, str(delivery.vendor.repo)
    own, credential = _enroll_directly(mc, "release-offered")
    unknown = mc.cli("releases", "offer", "9.9.9", "--cluster", "release-offered", "--repo", repo)
    assert unknown.returncode == 1 and "release 9.9.9 is not published" in unknown.stderr
    assert unknown.stderr.count("\n") == 1, unknown.stderr
    nobody = mc.cli("releases", "offer", FETCHED, "--cluster", "no-such", "--repo", repo)
    assert nobody.returncode == 1 and "no cluster named 'no-such'" in nobody.stderr
    assert nobody.stderr.count("\n") == 1, nobody.stderr
    status, body, _ = _get(mc, f"/api/v1/clusters/{own}/releases/offer", credential)
    assert json.loads(body)["version"] is None  # the refusals wrote nothing

    r = mc.cli("releases", "offer", FETCHED, "--cluster", "release-offered", "--repo", repo)
    assert r.returncode == 0 and f"release {FETCHED} offered" in r.stdout, r.stderr
    status, body, _ = _get(mc, f"/api/v1/clusters/{own}/releases/offer", credential)
    assert status == 200 and json.loads(body)["version"] == FETCHED
    with sqlite3.connect(mc.base / "mc.db") as db:
        audit = db.execute("SELECT action, subject, cluster FROM audit_log").fetchall()
    assert ("release.offered", FETCHED, own) in audit


def _alerts(mc: MissionControlServer, cluster_id: str) -> list[str]:
    """The release_refused alerts Mission Control raised for the cluster (the leader delivers
    the event the refusal queued in its outbox)."""
    with sqlite3.connect(mc.base / "mc.db") as db:
        found = db.execute(
            "SELECT detail FROM alerts WHERE cluster_id = ? AND kind = 'release_refused'",
            (cluster_id,),
        ).fetchall()
    return [str(detail) for (detail,) in found]


def _audit(c: ClusterUnderTest) -> list[tuple[str, str]]:
    entries = json.loads(c.cli("audit", "log", "--json").stdout)
    return [(e["action"], e["subject"]) for e in entries if e["action"].startswith("upgrade.")]


def _ready(c: ClusterUnderTest, mc: MissionControlServer, offer_interval: str = "60") -> str:
    """One node running, enrolled at Mission Control, the vendor root pinned."""
    c.join("n1")
    c.run("n1", env={"MANAGED_OFFER_INTERVAL": offer_interval})
    assert c.wait(lambda s: s.leader is not None and len(s.live) == 1, 20), c.logs()
    c.enroll(mc)
    return str(c.snapshot().config["mission_control"]["cluster_id"])


def _pin(c: ClusterUnderTest, delivery: Delivery) -> None:
    r = c.cli("upgrade", "trust", str(delivery.vendor.repo / "metadata" / "1.root.json"))
    assert r.returncode == 0, r.stderr


def _wait_install_over(c: ClusterUnderTest) -> None:
    """The node's install attempt ended (its report is written): nothing runs at teardown."""
    client = zk.connect(c.hosts, auth=ZK_AUTH)
    try:
        assert wait_until(lambda: client.exists(c.paths.upgrade_report("n1")) is not None, 60)
    finally:
        zk.close(client)


def test_apply_fetches_from_mission_control_verifies_and_starts_the_plan(
    cluster: ClusterUnderTest, delivery: Delivery
) -> None:
    _ready(cluster, delivery.mc)
    _pin(cluster, delivery)
    unknown = cluster.cli("upgrade", "apply", "9.9.9", timeout=60)
    assert unknown.returncode == 1, unknown.stderr
    assert "release 9.9.9 is not published by Mission Control" in unknown.stderr
    assert stored_plan(cluster) is None and _audit(cluster) == [("upgrade.root_pinned", "root")]
    neither = cluster.cli("upgrade", "verify")
    assert neither.returncode == 2 and "either a release VERSION" in neither.stderr

    r = cluster.cli("upgrade", "verify", FETCHED, "--json", timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["version"] == FETCHED, r.stderr
    assert stored_plan(cluster) is None  # verified only
    r = cluster.cli("upgrade", "apply", FETCHED, timeout=60)
    assert r.returncode == 0 and f"upgrade to {FETCHED} planned: n1" in r.stdout, r.stderr
    plan = stored_plan(cluster)
    assert plan is not None and plan.version == FETCHED and plan.bundle == MISSION_CONTROL
    assert ("upgrade.verified", FETCHED) in _audit(cluster)
    assert ("upgrade.planned", FETCHED) in _audit(cluster)
    shown = json.loads(cluster.cli("upgrade", "status", "--json").stdout)
    assert shown["verified"]["version"] == FETCHED and shown["plan"]["version"] == FETCHED

    # The node fetched the release itself, over the API, into its own data directory.
    staged = cluster.base / "data" / "n1" / "versions" / FETCHED / "wheels"
    wheel = staged / delivery.wheels[FETCHED].name
    assert wait_until(wheel.is_file, 30), cluster.logs()
    published = delivery.target(FETCHED).read_bytes()
    assert hashlib.sha256(wheel.read_bytes()).digest() == hashlib.sha256(published).digest()
    _wait_install_over(cluster)


def test_a_file_tampered_on_mission_control_is_refused(
    cluster: ClusterUnderTest, delivery: Delivery
) -> None:
    cluster_id = _ready(cluster, delivery.mc)
    _pin(cluster, delivery)
    target = delivery.target(TAMPERED)
    target.write_bytes(target.read_bytes() + b"tampered")

    r = cluster.cli("upgrade", "apply", TAMPERED, timeout=60)
    assert r.returncode == 1 and "release refused (target)" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    assert stored_plan(cluster) is None
    assert ("upgrade.refused", f"Mission Control {TAMPERED}") in _audit(cluster)
    assert not any(a == "upgrade.verified" for a, _ in _audit(cluster))
    assert wait_until(lambda: _alerts(delivery.mc, cluster_id), 20), cluster.logs()
    assert "target" in _alerts(delivery.mc, cluster_id)[0]
    assert not (cluster.base / "data" / "n1" / "versions" / TAMPERED).exists()


def _release_requests(mc: MissionControlServer, cluster_id: str) -> list[str]:
    text = mc.log_path.read_text(errors="replace")
    return re.findall(rf'"GET /api/v1/clusters/{cluster_id}/releases/(\S+) HTTP', text)


def test_the_leader_installs_an_offer_only_inside_the_window(
    cluster: ClusterUnderTest, delivery: Delivery
) -> None:
    cluster_id = _ready(cluster, delivery.mc, offer_interval="0.3")
    _pin(cluster, delivery)
    repo = str(delivery.vendor.repo)
    r = delivery.mc.cli("releases", "offer", OFFERED, "--cluster", cluster.name, "--repo", repo)
    assert r.returncode == 0, r.stderr

    bad = cluster.cli("upgrade", "window", "Sun 02:00-02:00")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1, bad.stderr
    assert "window refused" in bad.stderr
    away = DAYS[(datetime.now(UTC).weekday() + 3) % 7].title()
    r = cluster.cli("upgrade", "window", f"{away} 02:00-03:00")
    assert r.returncode == 0 and f"window set: {away} 02:00-03:00 UTC" in r.stdout, r.stderr
    shown = json.loads(cluster.cli("upgrade", "status", "--json").stdout)
    assert shown["window"] == {"spec": f"{away} 02:00-03:00", "timezone": "UTC"}
    time.sleep(3)  # ten looks of the leader, every one outside the window
    assert _release_requests(delivery.mc, cluster_id) == []
    assert stored_plan(cluster) is None

    r = cluster.cli("upgrade", "window", "daily 00:00-24:00")
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: stored_plan(cluster) is not None, 30), cluster.logs()
    plan = stored_plan(cluster)
    assert plan is not None and plan.version == OFFERED and plan.bundle == MISSION_CONTROL
    assert "offer" in _release_requests(delivery.mc, cluster_id)
    assert ("upgrade.planned", OFFERED) in _audit(cluster)
    _wait_install_over(cluster)

    r = cluster.cli("upgrade", "window", "--clear")
    assert r.returncode == 0 and "window cleared" in r.stdout, r.stderr
    assert json.loads(cluster.cli("upgrade", "status", "--json").stdout)["window"] is None
    actions = [a for a, _ in _audit(cluster)]
    assert actions.count("upgrade.window_set") == 2 and "upgrade.window_cleared" in actions


def test_a_refused_offer_is_not_fetched_again_by_the_next_leader(
    cluster: ClusterUnderTest, delivery: Delivery
) -> None:
    cluster_id = _ready(cluster, delivery.mc, offer_interval="0.3")
    _pin(cluster, delivery)
    target = delivery.target(TAMPERED)
    if not target.read_bytes().endswith(b"tampered"):
        target.write_bytes(target.read_bytes() + b"tampered")
    repo = str(delivery.vendor.repo)
    r = delivery.mc.cli("releases", "offer", TAMPERED, "--cluster", cluster.name, "--repo", repo)
    assert r.returncode == 0, r.stderr
    refused = ("upgrade.refused", f"Mission Control {TAMPERED}")
    r = cluster.cli("upgrade", "window", "daily 00:00-24:00")
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: refused in _audit(cluster), 30), cluster.logs()

    # A new leader (the node restarted: nothing in memory) asks for the offer again, and
    # fetches nothing: the refusal is kept in ZooKeeper.
    cluster.processes["n1"].stop()
    asked = len(_release_requests(delivery.mc, cluster_id))
    cluster.run("n1", env={"MANAGED_OFFER_INTERVAL": "0.3"})
    assert cluster.wait(lambda s: s.leader is not None, 20), cluster.logs()

    def since() -> list[str]:
        return _release_requests(delivery.mc, cluster_id)[asked:]

    assert wait_until(lambda: since().count("offer") >= 3, 30), cluster.logs()
    assert set(since()) == {"offer"}, since()
    assert _audit(cluster).count(refused) == 1
    assert stored_plan(cluster) is None
