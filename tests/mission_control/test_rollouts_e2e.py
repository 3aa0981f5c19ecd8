"""A fleet rollout, for real: a `mission-control serve` process (SQLite, HTTPS, a signed
release repository) sweeping every 0.2 s, three clusters enrolled over the API that post real
health checks and events with their own credentials, and the `rollouts` CLI.

Covered: refusals of `rollouts create` (one line, nothing written); waves 1,2,3 advance only as
each wave's clusters report the release healthy (offers appear on each cluster's own offer
route); a cluster that reports the release refused pauses the rollout with a `rollout_failed`
alert; `pause`/`resume`/`show --json`/`list`. No ZooKeeper and no cluster node is started: the
clusters are API clients, as their leaders are.
"""

from __future__ import annotations

import json
import sqlite3
import ssl
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner
from mc_messages import health_json
from releasekit import Vendor

from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import wait_until
from mission_control.cli import main

OLD, NEW = "1.4.2", "1.5.0"


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def cli(mc: MissionControlServer, *args: str) -> Outcome:
    """`mission-control ARGS --db URL` against the server's database, in this process (the
    same commands without a Python start-up each; the server runs in its own process)."""
    r = CliRunner().invoke(main, [*args, "--db", mc.db_url], catch_exceptions=False)
    return Outcome(r.exit_code, r.stdout, r.stderr)


class FleetCluster:
    def __init__(self, mc: MissionControlServer, name: str) -> None:
        self.mc, self.name = mc, name
        token = cli(mc, "clusters", "create", name, "--geography", "EU").stdout.strip()
        enrolled = self._call("/api/v1/enroll", {"token": token}, None)
        self.id, self.credential = enrolled["cluster_id"], enrolled["credential"]

    def _call(self, path: str, body: dict[str, Any] | None, credential: str | None) -> Any:
        headers = {"Content-Type": "application/json"}
        if credential:
            headers["Authorization"] = f"Bearer {credential}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.mc.url}{path}", data=data, headers=headers)
        context = ssl.create_default_context(cafile=str(self.mc.ca_file))
        with urllib.request.urlopen(request, timeout=10, context=context) as reply:
            return json.load(reply)

    def report(self, version: str) -> None:
        body = health_json(nodes=3)
        for node in body["nodes"]:
            node["version"] = version
        self._call(f"/api/v1/clusters/{self.id}/health", body, self.credential)

    def refuse(self, detail: str) -> None:
        body = {"message_id": str(uuid.uuid4()), "epoch": 1, "kind": "release_refused"}
        body["detail"] = detail
        self._call(f"/api/v1/clusters/{self.id}/events", body, self.credential)

    def offered(self) -> str | None:
        path = f"/api/v1/clusters/{self.id}/releases/offer"
        found: str | None = self._call(path, None, self.credential)["version"]
        return found


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MissionControlServer]:
    base = tmp_path_factory.mktemp("fleet")
    vendor = Vendor(base / "vendor")
    r = vendor.publish(NEW)
    assert r.returncode == 0, r.stderr
    mc = MissionControlServer(base / "mc", releases_repo=vendor.repo)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MISSION_CONTROL_SWEEP_INTERVAL_S", "0.2")
        patch.setenv("MISSION_CONTROL_RELEASES_REPO", str(vendor.repo))
        mc.start()
        try:
            yield mc
        finally:
            mc.stop()


def _state(mc: MissionControlServer, rollout: str) -> str:
    """The rollout's state as stored (read without the CLI, to poll cheaply)."""
    with sqlite3.connect(mc.base / "mc.db") as db:
        row = db.execute("SELECT state FROM rollouts WHERE id = ?", (int(rollout),)).fetchone()
    return str(row[0])


def _show(mc: MissionControlServer, rollout: str) -> dict[str, Any]:
    r = cli(mc, "rollouts", "show", rollout, "--json")
    assert r.returncode == 0, r.stderr
    shown: dict[str, Any] = json.loads(r.stdout)
    return shown


def _until(check: Callable[[], bool], what: str) -> None:
    assert wait_until(check, 10, 0.1), what


def test_waves_advance_on_healthy_reports_and_a_failure_pauses(fleet: MissionControlServer) -> None:
    mc = fleet
    a, b, c = (FleetCluster(mc, n) for n in ("fleet-a", "fleet-b", "fleet-c"))
    for cluster in (a, b, c):
        cluster.report(OLD)

    for args, says in (
        (["9.9.9", "--clusters", "all", "--waves", "1"], "is not published"),
        ([NEW, "--clusters", "geography=XX", "--waves", "1"], "selection is empty"),
        ([NEW, "--clusters", "fleet-a,nope", "--waves", "1"], "no cluster named nope"),
        ([NEW, "--clusters", "all", "--waves", "1,0%"], "give counts or percentages"),
    ):
        r = cli(mc, "rollouts", "create", *args)
        assert r.returncode == 1 and says in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert cli(mc, "rollouts", "list").stdout == ""

    r = cli(
        mc, "rollouts", "create", NEW, "--clusters", "fleet-a,fleet-b,fleet-c", "--waves", "1,2,3"
    )
    assert r.returncode == 0, r.stderr
    rollout = r.stdout.split()[1].rstrip(":")
    again = cli(mc, "rollouts", "create", NEW, "--clusters", "fleet-b", "--waves", "1")
    assert again.returncode == 1 and f"already in rollout {rollout}" in again.stderr

    _until(lambda: a.offered() == NEW, "wave 1 offered")
    assert b.offered() is None and c.offered() is None
    a.report(NEW)
    _until(lambda: b.offered() == NEW, "wave 2 offered once fleet-a runs 1.5.0 healthy")
    assert c.offered() is None
    shown = _show(mc, rollout)
    assert shown["wave"] == 2 and shown["state"] == "active"
    assert [(x["name"], x["wave"]) for x in shown["clusters"]] == [
        ("fleet-a", 1),
        ("fleet-b", 2),
        ("fleet-c", 3),
    ]

    b.refuse("rolled back 1.5.0: node-1 not healthy in time")
    _until(lambda: _state(mc, rollout) == "paused", "a failure pauses")
    shown = _show(mc, rollout)
    assert [x["state"] for x in shown["clusters"]] == ["finished", "failed", "waiting"]
    assert "fleet-b refused or rolled back 1.5.0" in shown["reason"]
    alerts = cli(mc, "alerts", "list", "--json")
    assert alerts.returncode == 0, alerts.stderr
    assert any(
        x["kind"] == "rollout_failed" and x["cluster_name"] == "fleet-b"
        for x in json.loads(alerts.stdout)
    ), alerts.stdout
    assert c.offered() is None

    r = cli(mc, "rollouts", "resume", rollout)
    assert r.returncode == 0, r.stderr
    b.report(NEW)
    _until(lambda: c.offered() == NEW, "wave 3 offered after resume and fleet-b healthy")
    c.report(NEW)
    _until(lambda: _state(mc, rollout) == "completed", "the rollout completes")
    listed = cli(mc, "rollouts", "list").stdout
    assert "completed" in listed and "3/3 finished" in listed
    r = cli(mc, "rollouts", "pause", rollout)
    assert r.returncode == 1 and "is completed, not active" in r.stderr
    assert cli(mc, "rollouts", "show", "77").stderr.strip() == (
        "Error: no rollout 77: see `mission-control rollouts list`"
    )


def test_nothing_is_written_for_a_bad_rollout(fleet: MissionControlServer) -> None:
    before = mc_rows(fleet)
    r = cli(fleet, "rollouts", "create", NEW, "--clusters", "a b", "--waves", "1")
    assert r.returncode == 1 and "--clusters" in r.stderr
    assert mc_rows(fleet) == before


def mc_rows(mc: MissionControlServer) -> str:
    return cli(mc, "rollouts", "list", "--json").stdout
