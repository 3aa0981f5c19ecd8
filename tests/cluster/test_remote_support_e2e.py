"""Remote support end to end: a real ensemble and nodes, a real Mission Control over HTTPS,
an engineer with password + TOTP, and a cluster operator with the `managed` CLI."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from clusterkit import ZK_AUTH, ClusterUnderTest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cluster import zk
from cluster.audit.store import AuditLog, Head
from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import wait_until
from cluster.secrets import read_secret
from cluster.support.keys import public_pem
from contract.audit.chain import AuditEntry, Checkpoint, append
from contract.messages import cluster_id_of
from contract.support.approval import SignedApproval, sign_approval
from contract.support.requests import AccessGrant

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
        # The very code the login used (read again later, it may be the next step's).
        self.used_code = self.totp.now()
        code, body = self.call(
            "POST", "/login", {"username": name, "password": PASSWORD, "totp": self.used_code}
        )
        assert code == 200, body
        self.token = body["token"]

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
    rewrite_history_and_verify(cluster, mc)


def _cluster_id(credential: str) -> str:
    """The cluster a credential names (whatever its format)."""
    cluster_id = cluster_id_of(credential)
    assert cluster_id is not None, "not a cluster credential"
    return cluster_id


def rewrite_history_and_verify(cluster: ClusterUnderTest, mc: MissionControlServer) -> None:
    """Someone who can write ZooKeeper (even with the credential) rewrites the whole log
    consistently: entries re-hashed, head, checkpoints re-signed with a new key that replaces
    support/public-key. Only Mission Control's copies and pinned key can tell."""
    credential = secret(cluster, "mc-credential").decode()
    cluster_id = _cluster_id(credential)
    staff = Staff.__new__(Staff)
    staff.mc, staff.token = mc, credential

    def copies() -> list[Any]:
        code, reply = staff.call("GET", f"/clusters/{cluster_id}/audit/checkpoints")
        assert code == 200, reply
        return list(reply["checkpoints"])

    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        log = AuditLog(client, cluster.paths)
        local, _ = log.checkpoints()
        assert local
        assert wait_until(lambda: len(copies()) >= len(local), 60), cluster.logs()
        ok = cluster.cli("audit", "verify")
        assert ok.returncode == 0 and "checkpoint copies at Mission Control" in ok.stdout, ok
        for node in list(cluster.processes):  # nobody appends while we rewrite
            cluster.processes[node].stop(timeout=10)
        entries = log.entries()
        rewritten: list[AuditEntry] = []
        for e in entries:
            event = e.event()
            if e.seq == 1:
                event = replace(event, detail={**event.detail, "after": {"mode": "off"}})
            rewritten.append(append(rewritten[-1] if rewritten else None, event))
        forger = Ed25519PrivateKey.generate()
        for e in rewritten:
            client.set(cluster.paths.audit_entry(e.seq), json.dumps(e.to_json()).encode())
        new_cps = [Checkpoint.sign(rewritten[c.seq - 1], c.at, forger) for c in local]
        for c in new_cps:
            client.set(cluster.paths.audit_checkpoint(c.seq), json.dumps(c.to_json()).encode())
        head = Head(rewritten[-1], new_cps[-1], -1)
        client.set(cluster.paths.audit_head, head.to_bytes())
        client.set(cluster.paths.support_public_key, public_pem(forger.public_key()).encode())
    finally:
        zk.close(client)
    fooled = cluster.cli("audit", "verify", "--offline")
    assert fooled.returncode == 0 and "local copy only (--offline)" in fooled.stdout
    found = cluster.cli("audit", "verify")
    assert found.returncode == 1, found.stdout
    assert "entry 1" in found.stderr and "Mission Control" in found.stderr, found.stderr
    assert "not the key Mission Control pinned" in found.stderr
    as_json = json.loads(cluster.cli("audit", "verify", "--json").stdout)
    assert as_json["ok"] is False and as_json["problem"]["seq"] == 1


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
    entries = json.loads(cluster.cli("audit", "log", "--json").stdout)
    (entry,) = [e for e in entries if e["subject"] == refused]
    assert (entry["action"], entry["actor"]["name"]) == ("support.refused", "bob")
    assert entry["detail"]["note"] == "remote support is off on this cluster"
    assert [e["action"] for e in entries if e["subject"] == allowed] == ["support.auto_approved"]


def ask(staff: Staff, cluster: ClusterUnderTest, duration: str = "1h") -> str:
    body = {
        "cluster": cluster.name,
        "reason": "ticket 7: check",
        "role": "user",
        "duration": duration,
    }
    code, req = staff.call("POST", "/access-requests", body)
    assert code in (200, 201), req
    return str(req["id"])


def cluster_view(cluster: ClusterUnderTest, rid: str) -> dict[str, Any]:
    r = cluster.cli("support", "requests", "--json")
    assert r.returncode == 0, r.stderr
    found = [x for x in json.loads(r.stdout) if x["id"] == rid]
    return found[0] if found else {}


def cluster_actions(cluster: ClusterUnderTest, rid: str) -> list[str]:
    entries = json.loads(cluster.cli("audit", "log", "--json").stdout)
    return [e["action"] for e in entries if e["subject"] == rid]


def run_command(staff: Staff, rid: str, command: str = "diagnostics") -> tuple[int, Any]:
    return staff.call("POST", f"/access-requests/{rid}/commands", {"command": command})


def final_status(staff: Staff, rid: str, command_id: str) -> str | None:
    for c in staff.call("GET", f"/access-requests/{rid}/commands")[1]["commands"]:
        if c["id"] == command_id and c["status"] != "queued":
            return str(c["status"])
    return None


def secret(cluster: ClusterUnderTest, name: str) -> bytes:
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        found = read_secret(client, cluster.paths, ZK_AUTH, name)
    finally:
        zk.close(client)
    assert found is not None
    return found


def as_cluster(
    mc: MissionControlServer, cluster_id: str, credential: str, kind: str, body: Any
) -> tuple[int, Any]:
    """POST a message as a cluster would (its own credential; a high epoch passes fencing)."""
    staff = Staff.__new__(Staff)
    staff.mc, staff.token = mc, credential
    return staff.call("POST", f"/clusters/{cluster_id}/{kind}", body)


def test_revoke_from_either_side_and_forged_replayed_or_foreign_approvals(
    cluster: ClusterUnderTest, mc: MissionControlServer, tmp_path: Path
) -> None:
    cluster.enroll(mc)
    cluster.start_nodes(3)
    alice = Staff(mc, "alice", "support-l2")
    olga = Staff(mc, "olga", "operator")
    assert cluster.cli("support", "mode", "allowed").returncode == 0

    # Revoked by the cluster's operator: the next command is refused, wherever it is caught.
    first = ask(alice, cluster)
    assert wait_until(lambda: request_state(alice, first) == "approved", 60), cluster.logs()
    code, cmd = run_command(alice, first)
    assert code == 200
    assert wait_until(lambda: final_status(alice, first, cmd["id"]) == "ok", 60), cluster.logs()
    r = cluster.cli("support", "revoke", first, "--reason", "done", "--operator", "carol", "--yes")
    assert r.returncode == 0, r.stderr
    code, cmd = run_command(alice, first)  # Mission Control may not know yet
    if code == 200:
        assert wait_until(lambda: final_status(alice, first, cmd["id"]) == "refused", 60)
    assert wait_until(lambda: request_state(alice, first) == "revoked", 60)
    assert cluster_actions(cluster, first)[-2:] in (
        ["support.command", "support.revoked"],
        ["support.revoked", "support.command.refused"],
    )
    assert run_command(alice, first)[0] == 409

    # Revoked by Mission Control staff: applied by the cluster before any later command.
    second = ask(alice, cluster)
    assert wait_until(lambda: request_state(alice, second) == "approved", 60), cluster.logs()
    code, done = olga.call("POST", f"/access-requests/{second}/revoke", {"reason": "audit"})
    assert code == 200 and done["state"] == "revoked", done
    assert run_command(alice, second)[0] == 409
    assert wait_until(lambda: cluster_view(cluster, second).get("state") == "revoked", 60)
    closed = cluster_view(cluster, second)["grant"]
    assert (closed["closed_by"], closed["close_reason"]) == ("olga", "audit")
    assert wait_until(
        lambda: alice.call("GET", f"/access-requests/{second}")[1]["awaiting_cluster"] is False, 60
    )

    # Forged and replayed approvals, posted with the cluster's own credential.
    assert cluster.cli("support", "mode", "approval").returncode == 0
    credential = secret(cluster, "mc-credential").decode()
    cluster_id = _cluster_id(credential)
    key = serialization.load_pem_private_key(secret(cluster, "support-signing-key"), None)
    assert isinstance(key, Ed25519PrivateKey)
    approved = json.loads(zk_get(cluster, cluster.paths.support_request(first)))["approval"]

    def decide(rid: str, approval: dict[str, Any]) -> tuple[int, Any]:
        body = {
            "message_id": str(uuid.uuid4()),
            "epoch": 10**9,
            "request_id": rid,
            "state": "approved",
            "by": "mallory",
            "approval": approval,
        }
        return as_cluster(mc, cluster_id, credential, "support/decision", body)

    def grant_for(rid: str, approval_id: str) -> AccessGrant:
        now = datetime.now(UTC)
        return AccessGrant(
            grant_id=approval_id,
            request_id=rid,
            cluster_id=cluster_id,
            engineer="alice",
            role="user",  # type: ignore[arg-type]
            starts_at=now,
            ends_at=now + timedelta(minutes=30),
            approved_by=SignedApproval.from_json(approved).grant.approved_by,
        )

    third = ask(alice, cluster)
    assert wait_until(lambda: cluster_view(cluster, third).get("state") == "pending", 60)
    forged = sign_approval(grant_for(third, uuid.uuid4().hex), Ed25519PrivateKey.generate())
    code, reply = decide(third, forged.to_json())
    assert (code, reply["error"]["code"]) == (422, "approval_rejected"), reply
    fourth = ask(alice, cluster)
    replayed = sign_approval(grant_for(fourth, approved["approval_id"]), key).to_json()
    code, reply = decide(fourth, replayed)
    assert (code, reply["error"]["code"]) == (422, "approval_replayed"), reply
    # Both are logged at Mission Control; the requests are denied there and the cluster,
    # told by the heartbeat, closes them too.
    code, audit = olga.call("GET", "/audit?action=support.decision.refused")
    assert {e["subject"] for e in audit["entries"]} >= {third, fourth}
    for rid in (third, fourth):
        assert request_state(alice, rid) == "denied"
        assert wait_until(lambda rid=rid: cluster_view(cluster, rid).get("state") == "denied", 60)
        assert "support.approval.refused" in cluster_actions(cluster, rid)

    # Another cluster's grant does not work here: cluster two cannot use cluster one's approval.
    other = ClusterUnderTest(
        hosts=cluster.hosts, name=f"t{uuid.uuid4().hex[:12]}", base=tmp_path / "other"
    )
    other.enroll(mc)
    other_credential = secret(other, "mc-credential").decode()
    body = {
        "message_id": str(uuid.uuid4()),
        "epoch": 10**9,
        "request_id": first,
        "state": "approved",
        "by": "mallory",
        "approval": approved,
    }
    other_id = _cluster_id(other_credential)
    code, reply = as_cluster(mc, other_id, other_credential, "support/decision", body)
    assert code == 404, reply
    code, reply = as_cluster(mc, cluster_id, other_credential, "support/decision", body)
    assert code == 403, reply
    assert cluster.cli("audit", "verify").returncode == 0
    assert mc.cli("audit", "verify").returncode == 0


def zk_get(cluster: ClusterUnderTest, path: str) -> bytes:
    client = zk.connect(cluster.hosts, auth=ZK_AUTH)
    try:
        return bytes(client.get(path)[0])
    finally:
        zk.close(client)


def test_expiry_of_a_pending_request_and_of_a_grant(
    cluster: ClusterUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mission Control with a short pending deadline (its real setting, set through the
    environment) and a sweep every second; a grant of a few seconds. No clock is faked: the
    waits are short."""
    monkeypatch.setenv("MISSION_CONTROL_SUPPORT_PENDING_TTL_S", "6")
    monkeypatch.setenv("MISSION_CONTROL_SWEEP_INTERVAL_S", "1")
    mc = MissionControlServer(tmp_path / "mc")
    mc.start()
    try:
        cluster.enroll(mc)
        cluster.start_nodes(3)
        bob = Staff(mc, "bob", "support-l3")
        waiting = ask(bob, cluster)
        # The cluster keeps Mission Control's deadline, not its own 4 days.
        assert wait_until(lambda: cluster_view(cluster, waiting).get("state") == "pending", 60)
        deadline = cluster_view(cluster, waiting)["pending_until"]
        code, req = bob.call("GET", f"/access-requests/{waiting}")
        assert deadline[:19] == req["pending_until"][:19]
        assert wait_until(lambda: request_state(bob, waiting) == "expired", 30)
        assert wait_until(lambda: cluster_view(cluster, waiting).get("state") == "expired", 30)
        r = cluster.cli("support", "approve", waiting, "--operator", "carol")
        assert r.returncode == 1 and "expired" in r.stderr, r.stderr
        assert "support.expired" in cluster_actions(cluster, waiting)

        assert cluster.cli("support", "mode", "allowed").returncode == 0
        short = ask(bob, cluster, duration="5s")
        assert wait_until(lambda: request_state(bob, short) == "approved", 30), cluster.logs()
        assert wait_until(lambda: request_state(bob, short) == "ended", 30)
        assert run_command(bob, short)[0] == 409
        assert wait_until(lambda: cluster_view(cluster, short).get("state") == "ended", 30)
        # The view derives "ended" from the clock at once; the leader's sweep records it.
        assert wait_until(lambda: cluster_actions(cluster, short)[-1] == "support.ended", 30)
    finally:
        mc.stop()
