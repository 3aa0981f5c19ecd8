"""The operator's side: `managed support ...` as a subprocess against the real ensemble."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from clusterkit import managed
from supportkit import Leader, command_item, request_item

from cluster.audit.store import AuditLog
from cluster.support.keys import load_public_key
from cluster.support.store import SupportStore
from contract.support.approval import MemoryReplayGuard, SignedApproval, verify_approval


def now() -> datetime:
    return datetime.now(UTC)


def test_operator_approves_with_narrowing_then_revokes_before_the_next_command(
    leader: Leader,
) -> None:
    item = request_item(
        cluster=leader.paths.cluster,
        role="user",
        hours=4,
        requested_at=now() - timedelta(minutes=5),
    )
    leader.heartbeat(now(), [item])
    listed = leader.cli("support", "requests", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["id"], row["state"], row["engineer"]) == (item["id"], "pending", "alice")
    assert (row["role"], row["duration"], row["reason"]) == ("user", "4h", item["reason"])
    text = leader.cli("support", "requests")
    assert item["id"] in text.stdout and "ticket 4711" in text.stdout

    approved = leader.cli_process(
        "support", "approve", item["id"], "--for", "1h", "--role", "viewer", "--operator", "olga"
    )
    assert approved.returncode == 0, approved.stderr
    assert "approved by olga: viewer" in approved.stdout
    (decision,) = leader.outbox("support/decision")
    body = decision.payload
    assert (body["state"], body["by"], body["grant"]["role"]) == ("approved", "olga", "viewer")
    stored = SupportStore(leader.client, leader.paths).get(item["id"])
    assert stored is not None
    public = load_public_key(leader.client, leader.paths)
    assert public is not None
    grant = verify_approval(
        SignedApproval.from_json(body["approval"]),
        public,
        request=stored.request,
        now=now(),
        guard=MemoryReplayGuard(),
    )
    assert grant.ends_at - grant.starts_at == timedelta(hours=1)
    grants = json.loads(leader.cli("support", "grants", "--json").stdout)
    assert [g["id"] for g in grants] == [item["id"]]

    diag = command_item(item["id"], "diagnostics")
    leader.heartbeat(now(), commands=[diag])
    revoked = leader.cli(
        "support", "revoke", item["id"], "--reason", "done", "--operator", "olga", "--yes"
    )
    assert revoked.returncode == 0, revoked.stderr
    after = command_item(item["id"], "config get")
    leader.heartbeat(now(), commands=[after])
    results = [m.payload for m in leader.outbox("support/command-result")]
    assert [(r["command_id"], r["status"]) for r in results] == [
        (diag["id"], "ok"),
        (after["id"], "refused"),
    ]
    assert json.loads(leader.cli("support", "grants", "--json").stdout) == []
    states = [m.payload["state"] for m in leader.outbox("support/decision")]
    assert states == ["approved", "revoked"]
    entries = AuditLog(leader.client, leader.paths).entries()
    assert [(e.action, e.actor.name) for e in entries] == [
        ("support.requested", "alice"),
        ("support.approved", "olga"),
        ("support.command", "alice"),
        ("support.revoked", "olga"),
        ("support.command.refused", "alice"),
    ]


def test_deny_needs_a_reason_and_bad_input_changes_nothing(leader: Leader) -> None:
    item = request_item(cluster=leader.paths.cluster, requested_at=now())
    leader.heartbeat(now(), [item])
    missing = leader.cli("support", "deny", item["id"])
    assert missing.returncode == 2
    wider = leader.cli_process(
        "support", "approve", item["id"], "--role", "admin", "--operator", "o"
    )
    assert wider.returncode == 1
    assert wider.stderr.strip().startswith("Error: cannot grant admin")
    assert "Traceback" not in wider.stderr
    unknown = leader.cli("support", "approve", "req-nope", "--operator", "olga")
    assert (unknown.returncode, unknown.stderr.strip()) == (
        1,
        "Error: no support request req-nope on this cluster",
    )
    bad_for = leader.cli("support", "approve", item["id"], "--for", "soon")
    assert bad_for.returncode == 1 and "invalid duration" in bad_for.stderr
    assert leader.outbox("support/decision") == []
    denied = leader.cli("support", "deny", item["id"], "--reason", "freeze", "--operator", "olga")
    assert denied.returncode == 0, denied.stderr
    assert denied.stdout.strip() == f"request {item['id']} denied by olga: freeze"
    again = leader.cli("support", "deny", item["id"], "--reason", "x", "--operator", "olga")
    assert again.returncode == 1 and "it is denied, not pending" in again.stderr
    (decision,) = leader.outbox("support/decision")
    assert (decision.payload["state"], decision.payload["reason"]) == ("denied", "freeze")


def test_approve_without_the_credential_is_one_clear_line(leader: Leader) -> None:
    item = request_item(cluster=leader.paths.cluster, requested_at=now())
    leader.heartbeat(now(), [item])
    c = leader.cluster
    r = managed("--zk", c.hosts, "--cluster", c.name, "support", "approve", item["id"])
    assert r.returncode == 1
    assert r.stderr.strip().endswith("--zk-auth USER:PASSWORD or set MANAGED_ZK_AUTH")


def test_mode_shows_validates_and_records_the_operator(leader: Leader) -> None:
    shown = json.loads(leader.cli("support", "mode", "--json").stdout)
    assert shown["mode"] == "approval" and shown["pending_ttl"] == "4d"
    bad = leader.cli("support", "mode", "allowed", "--max-grant", "9d")
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        "Error: invalid support setting max_grant: must be between 1s and 7d"
    )
    assert leader.cli("support", "mode", "sometimes").returncode == 2
    changed = leader.cli(
        "support",
        "mode",
        "allowed",
        "--max-grant",
        "8h",
        "--roles",
        "viewer,user",
        "--preapproved",
        "erik",
        "--operator",
        "olga",
    )
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.startswith("mode          allowed (changed)")
    (message,) = leader.outbox("support/policy")
    assert message.payload == {
        "mode": "allowed",
        "max_grant_seconds": 8 * 3600,
        "allowed_roles": ["user", "viewer"],
        "preapproved": ["erik"],
    }
    (entry,) = AuditLog(leader.client, leader.paths).entries()
    assert (entry.action, entry.actor.name, entry.actor.kind.value) == (
        "support.policy",
        "olga",
        "cluster-operator",
    )
    # The operator name comes from MANAGED_OPERATOR when --operator is not given.
    r = leader.cli("support", "mode", "off", env={"MANAGED_OPERATOR": "pat"})
    assert r.returncode == 0, r.stderr
    last = AuditLog(leader.client, leader.paths).entries()[-1]
    assert (last.actor.name, last.detail["after"]["mode"]) == ("pat", "off")  # type: ignore[index]
