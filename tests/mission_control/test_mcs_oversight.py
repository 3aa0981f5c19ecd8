"""Staff revoking grants, command arguments both sides agree on, refused attempts in the audit
log, and the cluster's audit checkpoints kept at Mission Control; over the real HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mcs_support import Cluster, Support
from mcs_support import support_fixture as support_fixture  # the fixture

from cluster.support.runner import MAX_LOG_LINES
from contract.audit.chain import AuditEntry, Checkpoint, append
from contract.audit.events import SYSTEM, AuditEvent


async def running_grant(support: Support, engineer: str, role: str = "user") -> tuple[Any, Any]:
    cluster = await support.cluster(f"c-{engineer}")
    token = await support.staff(engineer, "support-l2")
    request = await support.request_access(token, f"c-{engineer}", role=role)
    await support.decide(cluster, request["id"], "approved", support.approval(cluster, request))
    return cluster, request | {"token": token}


async def test_staff_revoke_a_running_grant_and_the_cluster_learns_it(support: Support) -> None:
    cluster, request = await running_grant(support, "alice")
    rid = request["id"]
    bob = await support.staff("bob", "support-l2")
    carl = await support.staff("carl", "support-l3")
    olga = await support.staff("olga", "operator")
    admin = await support.staff("root", "admin")
    path = f"/api/v1/access-requests/{rid}/revoke"

    # Another support-l2 may neither see nor revoke it (audited, naming him).
    status, reply = await support.call("POST", path, {"reason": "mine now"}, bob)
    assert (status, reply["error"]["code"]) == (404, "not_found")
    status, reply = await support.call("POST", path, {"unknown": 1}, carl)
    assert status == 422
    revoked = await support.ok("POST", path, {"reason": "ticket closed"}, olga)
    assert revoked["state"] == "revoked" and revoked["awaiting_cluster"] is True
    grant = revoked["grant"]
    assert (grant["closed_by"], grant["close_reason"]) == ("olga", "ticket closed")
    # A second revocation is refused; a command after it too.
    assert (await support.call("POST", path, None, carl))[0] == 409
    commands = f"/api/v1/access-requests/{rid}/commands"
    assert (await support.call("POST", commands, {"command": "diagnostics"}, request["token"]))[
        0
    ] == 409

    # The next heartbeat tells the cluster who revoked it and why, until it confirms.
    (item,) = (await support.heartbeat(cluster))["support_requests"]
    assert (item["id"], item["state"], item["state_changed_by"], item["state_reason"]) == (
        rid,
        "revoked",
        "olga",
        "ticket closed",
    )
    status, _ = await support.decide(cluster, rid, "revoked", by="olga")
    assert status == 200
    assert (await support.heartbeat(cluster))["support_requests"] == []

    audit = await support.ok("GET", f"/api/v1/audit?cluster={cluster.id}", token=admin)
    actions = [(e["action"], e["actor"]["name"]) for e in audit["entries"]]
    assert ("support.revoked", "olga") in actions
    assert ("support.revoke.refused", "carl") in actions
    everything = await support.ok("GET", "/api/v1/audit?action=support.revoke.refused", token=admin)
    assert {e["actor"]["name"] for e in everything["entries"]} == {"bob", "carl"}


async def test_support_l3_revokes_any_grant_and_l2_only_their_own(support: Support) -> None:
    _, first = await running_grant(support, "alice")
    _, second = await running_grant(support, "dave")
    carl = await support.staff("carl", "support-l3")
    done = await support.ok("POST", f"/api/v1/access-requests/{first['id']}/revoke", None, carl)
    assert done["grant"]["closed_by"] == "carl"
    own = await support.ok(
        "POST", f"/api/v1/access-requests/{second['id']}/revoke", {}, second["token"]
    )
    assert own["state"] == "revoked" and own["grant"]["closed_by"] == "dave"


async def test_command_arguments_follow_the_cluster_rules(support: Support) -> None:
    cluster, request = await running_grant(support, "alice")
    token, path = request["token"], f"/api/v1/access-requests/{request['id']}/commands"

    async def issue(arguments: dict[str, Any], command: str = "config set") -> tuple[int, Any]:
        return await support.call("POST", path, {"command": command, "arguments": arguments}, token)

    for value in (120, True, None, "100MiB/s"):
        status, reply = await issue({"key": "backup.bandwidth_limit", "value": value})
        assert status == 200, reply
        assert reply["arguments"] == {"key": "backup.bandwidth_limit", "value": value}
    status, reply = await issue({"key": "geography", "value": "US"})
    assert (status, reply["error"]["code"]) == (422, "invalid_request")
    assert "support access cannot change geography" in reply["error"]["message"]
    assert (await issue({"key": "backup.part_timeout", "value": 1.5}))[0] == 422
    assert (await issue({"key": "backup.part_timeout", "value": "x" * 1025}))[0] == 422
    assert (await issue({"key": "backup.part_timeout"}))[0] == 422
    assert (await issue({"lines": MAX_LOG_LINES}, "logs tail"))[0] == 200
    assert (await issue({"lines": MAX_LOG_LINES + 1}, "logs tail"))[0] == 422
    listed = (await support.heartbeat(cluster))["commands"]
    values = sorted(repr(c["arguments"].get("value", "-")) for c in listed)  # same issue time
    assert values == sorted(repr(v) for v in (120, True, None, "100MiB/s", "-"))

    # Another engineer's command under this grant: refused and audited, naming him.
    bob = await support.staff("bob", "support-l2")
    olga = await support.staff("olga", "operator")
    assert (await support.call("POST", path, {"command": "diagnostics"}, bob))[0] == 404
    assert (await support.call("POST", path, {"command": "diagnostics"}, olga))[0] == 403
    admin = await support.staff("root", "admin")
    audit = await support.ok("GET", "/api/v1/audit?action=support.command.refused", token=admin)
    refused = {(e["actor"]["name"], e["subject"]) for e in audit["entries"]}
    assert {("bob", request["id"]), ("olga", request["id"]), ("alice", request["id"])} <= refused


AT = datetime(2030, 6, 1, 12, tzinfo=UTC)


def checkpoints(key: Ed25519PrivateKey, count: int) -> list[Checkpoint]:
    head: AuditEntry | None = None
    made = []
    for seq in range(1, count + 1):
        head = append(head, AuditEvent(AT, SYSTEM, "test", "c", str(seq)))
        made.append(Checkpoint.sign(head, AT + timedelta(seconds=seq), key))
    return made


async def send_checkpoint(support: Support, cluster: Cluster, cp: Checkpoint) -> tuple[int, Any]:
    return await support.send(cluster, "audit/checkpoint", **cp.to_json())


async def test_checkpoint_copies_are_kept_verified_and_never_replaced(support: Support) -> None:
    cluster = await support.cluster("acme")
    other = await support.cluster("other")
    first, second = checkpoints(cluster.key, 2)
    status, reply = await send_checkpoint(support, cluster, first)
    assert (status, reply["recorded"]) == (200, True)
    assert (await send_checkpoint(support, cluster, first))[1]["recorded"] is False
    # Signed by another key (the local public key replaced): refused.
    (forged,) = checkpoints(Ed25519PrivateKey.generate(), 1)
    status, reply = await send_checkpoint(support, cluster, forged)
    assert (status, reply["error"]["code"]) == (422, "invalid_request")
    # Another checkpoint for a seq already kept: refused (the log was rewritten).
    rewritten = Checkpoint.sign(
        append(None, AuditEvent(AT, SYSTEM, "rewritten", "c", "1")),
        AT,
        cluster.key,
    )
    status, reply = await send_checkpoint(support, cluster, rewritten)
    assert (status, reply["error"]["code"]) == (422, "checkpoint_conflict")
    assert (await send_checkpoint(support, cluster, second))[0] == 200

    path = f"/api/v1/clusters/{cluster.id}/audit/checkpoints"
    copies = await support.ok("GET", path, token=cluster.credential)
    assert [Checkpoint.from_json(c) for c in copies["checkpoints"]] == [first, second]
    assert "BEGIN PUBLIC KEY" in copies["public_key_pem"]
    assert (await support.call("GET", path, token=other.credential))[0] == 403
    assert (await support.call("GET", path))[0] == 401
    admin = await support.staff("root", "admin")
    audit = await support.ok("GET", "/api/v1/audit?action=audit.checkpoint.refused", token=admin)
    assert len(audit["entries"]) == 2
