"""Remote support end to end: a real ensemble and nodes, a real Mission Control over HTTPS,
an engineer with password + TOTP, and a cluster operator with the `managed` CLI."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pyotp
from clusterkit import ClusterUnderTest

from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import wait_until

PASSWORD = "correct horse battery staple 42"


class Staff:
    """One logged-in Mission Control user, speaking the staff API."""

    def __init__(self, mc: MissionControlServer, name: str, role: str) -> None:
        self.mc = mc
        self.name = name
        r = mc.cli("users", "add", name, "--role", role, stdin=f"{PASSWORD}\n{PASSWORD}\n")
        assert r.returncode == 0, r.stderr
        self.totp = pyotp.parse_uri(r.stdout.strip())
        self.token = ""
        code, body = self.call(
            "POST", "/login", {"username": name, "password": PASSWORD, "totp": self.totp.now()}
        )
        assert code == 200, body
        self.token = body["token"]
        self.used_code = self.totp.now()

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        ctx = ssl.create_default_context(cafile=str(self.mc.ca_file))
        req = urllib.request.Request(
            f"{self.mc.url}/api/v1{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {self.token}"} if self.token else {}),
            },
        )
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=20) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


def request_state(staff: Staff, rid: str) -> str:
    return str(staff.call("GET", f"/access-requests/{rid}")[1]["state"])


def test_request_approve_run_end_and_audit(
    cluster: ClusterUnderTest, mc: MissionControlServer
) -> None:
    cluster.enroll(mc)
    cluster.start_nodes(3)
    alice = Staff(mc, "alice", "support-l2")
    olga = Staff(mc, "olga", "operator")

    # A TOTP code is never accepted twice; an operator may not ask for access.
    code, _ = alice.call(
        "POST", "/login", {"username": "alice", "password": PASSWORD, "totp": alice.used_code}
    )
    assert code == 401
    code, _ = olga.call(
        "POST",
        "/access-requests",
        {"cluster": cluster.name, "reason": "x", "role": "viewer", "duration": "1h"},
    )
    assert code == 403

    code, req = alice.call(
        "POST",
        "/access-requests",
        {
            "cluster": cluster.name,
            "reason": "ticket 4711: slow ingest",
            "role": "viewer",
            "duration": "1h",
        },
    )
    assert code in (200, 201), req
    rid = req["id"]
    assert req["state"] == "pending"

    def pending_on_cluster() -> bool:
        r = cluster.cli("support", "requests", "--json")
        return r.returncode == 0 and any(
            x.get("id") == rid and x.get("state") == "pending" for x in json.loads(r.stdout)
        )

    assert wait_until(pending_on_cluster, 60), cluster.logs()
    r = cluster.cli("support", "approve", rid, "--operator", "carol")
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: request_state(alice, rid) == "approved", 60), cluster.logs()
    grant = alice.call("GET", f"/access-requests/{rid}")[1]["grant"]
    assert grant["approved_by"] == "carol"

    code, cmd = alice.call("POST", f"/access-requests/{rid}/commands", {"command": "diagnostics"})
    assert code in (200, 201), cmd

    def diagnostics_done() -> Any:
        for c in alice.call("GET", f"/access-requests/{rid}/commands")[1]["commands"]:
            if c["id"] == cmd["id"] and c.get("status") == "ok":
                return c
        return None

    assert wait_until(lambda: diagnostics_done() is not None, 60), cluster.logs()
    assert "n1" in str(diagnostics_done())

    # A viewer may not change config; refused before anything runs.
    code, _ = alice.call(
        "POST",
        f"/access-requests/{rid}/commands",
        {"command": "config set", "arguments": {"key": "x", "value": "1"}},
    )
    assert code in (403, 409, 422)

    # The engineer ends the grant early; further commands are refused.
    code, _ = alice.call("POST", f"/access-requests/{rid}/end")
    assert code == 200
    assert wait_until(lambda: request_state(alice, rid) == "ended", 30)
    code, _ = alice.call("POST", f"/access-requests/{rid}/commands", {"command": "diagnostics"})
    assert code in (403, 409, 422)

    # Both audit logs hold the story, naming the people, and verify.
    r = cluster.cli("audit", "log", "--json")
    assert r.returncode == 0, r.stderr
    log = r.stdout
    assert "alice" in log and "carol" in log and "diagnostics" in log
    assert cluster.cli("audit", "verify").returncode == 0
    assert mc.cli("audit", "verify").returncode == 0
    code, audit = olga.call("GET", "/audit?actor=alice")
    assert code == 200 and "alice" in json.dumps(audit)


def test_modes_off_and_allowed(cluster: ClusterUnderTest, mc: MissionControlServer) -> None:
    cluster.enroll(mc)
    cluster.start_nodes(3)
    bob = Staff(mc, "bob", "support-l3")

    def ask() -> str:
        code, req = bob.call(
            "POST",
            "/access-requests",
            {"cluster": cluster.name, "reason": "check", "role": "viewer", "duration": "30m"},
        )
        assert code in (200, 201), req
        return str(req["id"])

    assert cluster.cli("support", "mode", "off").returncode == 0
    refused = ask()
    assert wait_until(lambda: request_state(bob, refused) == "denied", 60), cluster.logs()
    assert cluster.cli("support", "mode", "allowed").returncode == 0
    allowed = ask()
    assert wait_until(lambda: request_state(bob, allowed) == "approved", 60), cluster.logs()
    assert (
        "refused" in cluster.cli("audit", "log").stdout.lower()
        or refused in cluster.cli("audit", "log").stdout
    )
