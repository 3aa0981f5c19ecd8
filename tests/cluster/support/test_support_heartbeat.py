"""The leader applies heartbeat replies: policy on arrival, expiry, MC-side ends, commands."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from supportkit import AUTH, T0, Leader, command_item, later, request_item

from cluster.audit.store import AuditLog
from cluster.errors import FencedOut
from cluster.support.keys import load_public_key
from cluster.support.service import SupportService
from cluster.support.store import SupportStore
from cluster.zk import Fence
from contract.audit.events import ActorKind
from contract.messages import HeartbeatReply
from contract.support.approval import MemoryReplayGuard, SignedApproval, verify_approval
from contract.support.policy import SupportMode, SupportPolicy
from contract.support.requests import RequestState

BASE_CONFIG = {
    "geography": "EU",
    "backup": {"target": "file:///mnt/backups", "keep_last": 3},
    "mission_control": {"url": "https://mc.example"},
}


def set_mode(leader: Leader, mode: str, **limits: object) -> None:
    from contract.audit.events import Actor

    SupportStore(leader.client, leader.paths, auth=AUTH).set_policy(
        lambda old: SupportPolicy.from_config({**old.to_config(), "mode": mode, **limits}),
        Actor("olga", ActorKind.OPERATOR),
        T0,
    )


def state_of(leader: Leader, rid: str) -> RequestState:
    stored = SupportStore(leader.client, leader.paths).get(rid)
    assert stored is not None
    return stored.request.state


def test_mode_off_refuses_at_once_and_logs_it(leader: Leader) -> None:
    set_mode(leader, "off")
    item = request_item(cluster=leader.paths.cluster)
    leader.heartbeat(later(minutes=1), [item])
    assert state_of(leader, item["id"]) is RequestState.DENIED
    (decision,) = leader.outbox("support/decision")
    assert decision.payload["state"] == "denied"
    assert decision.payload["request_id"] == item["id"]
    assert "off" in decision.payload["reason"]
    (policy,) = leader.outbox("support/policy")
    assert policy.payload == {
        "mode": "off",
        "max_grant_seconds": 7 * 86400,
        "allowed_roles": ["admin", "user", "viewer"],
        "preapproved": [],
    }
    entries = AuditLog(leader.client, leader.paths).entries()
    assert [e.action for e in entries] == ["support.policy", "support.refused"]
    refused = entries[-1]
    assert (refused.actor.name, refused.actor.via) == ("alice", "mission-control")
    assert refused.detail["engineer_role"] == "support-l2"
    # The same reply again changes nothing.
    leader.heartbeat(later(minutes=2), [item])
    assert len(leader.outbox("support/decision")) == 1
    assert len(leader.audit_actions()) == 2


def test_mode_allowed_approves_at_once_with_a_signature_that_verifies(leader: Leader) -> None:
    set_mode(leader, "allowed", max_grant="2h")
    item = request_item(cluster=leader.paths.cluster, hours=4, role="user")
    now = later(minutes=1)
    leader.heartbeat(now, [item])
    assert state_of(leader, item["id"]) is RequestState.APPROVED
    (decision,) = leader.outbox("support/decision")
    body = decision.payload
    assert body["state"] == "approved"
    assert body["grant"]["role"] == "user"
    assert body["grant"]["starts_at"] == "2026-11-22T14:01:00.000000Z"
    assert body["grant"]["ends_at"] == "2026-11-22T16:01:00.000000Z"  # capped to max_grant
    public = load_public_key(leader.client, leader.paths)
    assert public is not None
    (key_message,) = leader.outbox("support/public-key")
    assert "BEGIN PUBLIC KEY" in key_message.payload["public_key_pem"]
    assert leader.outbox()[0].kind == "support/policy"  # the key message precedes the decision
    stored = SupportStore(leader.client, leader.paths).get(item["id"])
    assert stored is not None
    approval = SignedApproval.from_json(body["approval"])
    grant = verify_approval(
        approval, public, request=stored.request, now=now, guard=MemoryReplayGuard()
    )
    assert grant.approved_by.kind is ActorKind.SYSTEM
    tampered = dict(body["approval"], role="admin")
    with pytest.raises(Exception, match="signature"):
        verify_approval(
            SignedApproval.from_json(tampered),
            public,
            request=stored.request,
            now=now,
            guard=MemoryReplayGuard(),
        )
    assert leader.audit_actions() == ["support.policy", "support.auto_approved"]


def test_pending_request_expires_after_the_configured_time(leader: Leader) -> None:
    set_mode(leader, "approval", pending_ttl="2d")
    item = request_item(cluster=leader.paths.cluster)
    leader.heartbeat(later(minutes=1), [item])
    assert state_of(leader, item["id"]) is RequestState.PENDING
    assert leader.outbox("support/decision") == []
    leader.heartbeat(later(days=2))  # deadline is arrival + 2d: one minute short
    assert state_of(leader, item["id"]) is RequestState.PENDING
    leader.heartbeat(later(days=2, minutes=1))
    assert state_of(leader, item["id"]) is RequestState.EXPIRED
    (decision,) = leader.outbox("support/decision")
    assert decision.payload["state"] == "expired"
    assert decision.payload["by"] == "system"
    assert decision.payload["at"] == "2026-11-22T14:01:00.000000Z".replace("22T", "24T")
    # MC still lists it once (it has not seen the decision yet): nothing changes.
    leader.heartbeat(later(days=2, minutes=2), [item])
    assert len(leader.outbox("support/decision")) == 1


def test_grant_ends_when_its_window_elapses_and_later_commands_are_refused(
    leader: Leader,
) -> None:
    set_mode(leader, "allowed")
    item = request_item(cluster=leader.paths.cluster, hours=1)
    leader.heartbeat(later(minutes=1), [item])
    inside = command_item(item["id"], "diagnostics")
    leader.heartbeat(later(minutes=30), commands=[inside])
    after = command_item(item["id"], "diagnostics")
    leader.heartbeat(later(hours=1, minutes=2), commands=[after])
    assert state_of(leader, item["id"]) is RequestState.ENDED
    results = {m.payload["command_id"]: m.payload for m in leader.outbox("support/command-result")}
    assert results[inside["id"]]["status"] == "ok"
    assert "1/0 nodes" not in results[inside["id"]]["summary"]
    assert json.loads(results[inside["id"]]["output"])["health"]["written_by"] == "n1"
    assert results[after["id"]]["status"] == "refused"
    assert "closed" in results[after["id"]]["summary"]
    states = [m.payload["state"] for m in leader.outbox("support/decision")]
    assert states == ["approved", "ended"]
    assert leader.audit_actions()[-3:] == [
        "support.command",
        "support.ended",
        "support.command.refused",
    ]


def test_revoke_or_end_from_mission_control_applies_before_the_command_in_the_same_reply(
    leader: Leader,
) -> None:
    set_mode(leader, "allowed")
    first = request_item(cluster=leader.paths.cluster)
    second = request_item(cluster=leader.paths.cluster)
    leader.heartbeat(later(minutes=1), [first, second])
    revoked = dict(first, state="revoked", state_changed_by="mc-staff-bob", state_reason="oops")
    ended = dict(second, state="ended", state_changed_by="alice")
    commands = [command_item(first["id"], "diagnostics"), command_item(second["id"], "logs tail")]
    leader.heartbeat(later(minutes=5), [revoked, ended], commands)
    assert state_of(leader, first["id"]) is RequestState.REVOKED
    assert state_of(leader, second["id"]) is RequestState.ENDED
    results = [m.payload for m in leader.outbox("support/command-result")]
    assert [r["status"] for r in results] == ["refused", "refused"]
    decisions = [m.payload for m in leader.outbox("support/decision")][2:]
    assert [(d["state"], d["by"], d["reason"]) for d in decisions] == [
        ("revoked", "mc-staff-bob", "oops"),
        ("ended", "alice", "closed by the engineer"),
    ]
    entries = AuditLog(leader.client, leader.paths).entries()
    revoke_entry = next(e for e in entries if e.action == "support.revoked")
    assert revoke_entry.actor.kind is ActorKind.STAFF
    assert revoke_entry.actor.via == "mission-control"
    # Repeating the reply is harmless: commands answered once, no new transitions.
    before = len(leader.outbox())
    leader.heartbeat(later(minutes=6), [revoked, ended], commands)
    assert len(leader.outbox()) == before


def test_commands_outside_the_grant_are_refused_and_logged(leader: Leader) -> None:
    set_mode(leader, "allowed")
    item = request_item(cluster=leader.paths.cluster, role="viewer")
    leader.heartbeat(later(minutes=1), [item])
    other_cluster = SupportService(cluster_id="another-cluster-id")
    role = command_item(item["id"], "config set", key="backup.schedule", value="0 3 * * *")
    stranger = command_item(item["id"], "diagnostics", engineer="mallory")
    unknown = command_item("req-never-seen", "diagnostics")
    leader.heartbeat(later(minutes=2), commands=[role, stranger, unknown])
    foreign = command_item(item["id"], "diagnostics")
    leader.heartbeat(later(minutes=3), commands=[foreign], service=other_cluster)
    results = {m.payload["command_id"]: m.payload for m in leader.outbox("support/command-result")}
    assert {r["status"] for r in results.values()} == {"refused"}
    assert "does not allow config set" in results[role["id"]]["summary"]
    assert "belongs to alice" in results[stranger["id"]]["summary"]
    assert results[unknown["id"]]["summary"] == "no access grant"
    assert "is for cluster" in results[foreign["id"]]["summary"]
    refused = [e for e in AuditLog(leader.client, leader.paths).entries() if "refused" in e.action]
    assert len(refused) == 4
    assert {e.actor.name for e in refused} == {"alice", "mallory"}
    config = json.loads(leader.client.get(leader.paths.config)[0])
    assert "backup" not in config


def test_request_for_another_cluster_is_refused_on_arrival(leader: Leader) -> None:
    set_mode(leader, "allowed")
    item = request_item(cluster="someone-else")
    leader.heartbeat(later(minutes=1), [item])
    assert state_of(leader, item["id"]) is RequestState.DENIED
    (decision,) = leader.outbox("support/decision")
    assert "not this cluster" in decision.payload["reason"]


def test_the_enrolled_mission_control_id_names_this_cluster(leader: Leader) -> None:
    config = {"mission_control": {"url": "https://mc", "cluster_id": "mc-42"}}
    leader.client.set(leader.paths.config, json.dumps(config).encode())
    set_mode(leader, "allowed")
    by_name = request_item(cluster=leader.paths.cluster)
    by_id = request_item(cluster="mc-42")
    leader.heartbeat(later(minutes=1), [by_name, by_id])
    assert state_of(leader, by_name["id"]) is RequestState.DENIED
    assert state_of(leader, by_id["id"]) is RequestState.APPROVED
    command = command_item(by_id["id"], "config get")
    leader.heartbeat(later(minutes=2), commands=[command])
    (result,) = leader.outbox("support/command-result")
    assert result.payload["status"] == "ok"


def test_config_set_as_user_changes_the_config_once_and_never_secrets(leader: Leader) -> None:
    leader.client.set(
        leader.paths.config,
        json.dumps(BASE_CONFIG).encode(),
    )
    set_mode(leader, "allowed")
    item = request_item(cluster=leader.paths.cluster, role="user")
    leader.heartbeat(later(minutes=1), [item])
    good = command_item(item["id"], "config set", key="backup.bandwidth_limit", value="50MiB/s")
    secret = command_item(item["id"], "config set", key="backup.s3_secret_key", value="x")
    protected = command_item(item["id"], "config set", key="mission_control.url", value="evil")
    residency = command_item(item["id"], "config set", key="geography", value="US")
    target = command_item(item["id"], "config set", key="backup.target", value="s3://evil/p")
    bad_value = command_item(item["id"], "config set", key="backup.bandwidth_limit", value="9")
    commands = [good, secret, protected, residency, target, bad_value]
    leader.heartbeat(later(minutes=2), commands=commands)
    leader.heartbeat(later(minutes=3), commands=commands)  # re-listed: nothing runs twice
    config = json.loads(leader.client.get(leader.paths.config)[0])
    expected = json.loads(json.dumps(BASE_CONFIG))
    expected["backup"]["bandwidth_limit"] = "50MiB/s"
    assert config == expected
    results = {m.payload["command_id"]: m.payload for m in leader.outbox("support/command-result")}
    assert len(results) == 6 and len(leader.outbox("support/command-result")) == 6
    assert results[good["id"]]["status"] == "ok"
    assert results[good["id"]]["summary"] == 'set backup.bandwidth_limit to "50MiB/s" (was null)'
    assert "secret setting" in results[secret["id"]]["summary"]
    for refused in (protected, residency, target):
        assert "cannot change" in results[refused["id"]]["summary"]
    assert "bandwidth limit '9'" in results[bad_value["id"]]["summary"]
    actions = leader.audit_actions()
    assert actions.count("support.command") == 1
    assert actions.count("support.command.refused") == 5


def test_logs_tail_reads_the_leader_log_redacted(leader: Leader) -> None:
    log_path = leader.service.log_path
    assert log_path is not None
    log_path.parent.mkdir(parents=True)
    lines = [f"line {i}" for i in range(50)] + ["connecting with password=hunter2 to zk"]
    log_path.write_text("\n".join(lines) + "\n")
    set_mode(leader, "allowed")
    item = request_item(cluster=leader.paths.cluster)
    leader.heartbeat(later(minutes=1), [item])
    tail = command_item(item["id"], "logs tail", lines=3)
    leader.heartbeat(later(minutes=2), commands=[tail])
    (result,) = leader.outbox("support/command-result")
    assert result.payload["output"].splitlines() == [
        "line 48",
        "line 49",
        "connecting with password=[REDACTED] to zk",
    ]
    assert "hunter2" not in json.dumps(
        [e.to_json() for e in AuditLog(leader.client, leader.paths).entries()]
    )


def test_a_deposed_leader_writes_nothing(leader: Leader) -> None:
    set_mode(leader, "allowed")
    stale = Leader(
        leader.client,
        leader.paths,
        Fence(leader.fence.epoch - 1 if leader.fence else 0, -5),
        leader.cluster,
    )
    before = leader.audit_actions()
    with pytest.raises(FencedOut):
        stale.heartbeat(later(minutes=1), [request_item(cluster=leader.paths.cluster)])
    assert leader.outbox("support/decision") == []
    assert leader.audit_actions() == before
    assert SupportStore(leader.client, leader.paths).all() == []


def test_policy_defaults_to_approval(leader: Leader) -> None:
    policy, version = SupportStore(leader.client, leader.paths).policy()
    assert (policy.mode, version) == (SupportMode.APPROVAL, -1)
    assert policy.pending_ttl == timedelta(days=4)


def test_exchange_handler_and_a_missing_credential(leader: Leader) -> None:
    set_mode(leader, "allowed")
    item = request_item(cluster=leader.paths.cluster)
    reply = HeartbeatReply.model_validate({"support_requests": [item], "commands": []})
    no_key = SupportService()
    done = asyncio.run(
        no_key.handle_heartbeat(leader, leader.client, leader.paths, None, reply, later(minutes=1))
    )
    assert done == [
        "skipped: approving needs the cluster's signing key: pass --zk-auth USER:PASSWORD"
    ]
    assert SupportStore(leader.client, leader.paths).get(item["id"]) is None  # retried later
    handler = SupportService().for_exchange(AUTH)
    asyncio.run(handler(leader, reply, later(minutes=2)))
    assert state_of(leader, item["id"]) is RequestState.APPROVED
