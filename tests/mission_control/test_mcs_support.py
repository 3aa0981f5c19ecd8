"""Remote support through the HTTP API of a real in-process server: requests, the heartbeat
reply, signed decisions, commands and their results, ending a grant, expiry at Mission Control."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mcs_support import Support, public_pem
from mcs_support import support_fixture as support_fixture  # the fixture

from contract.audit.canonical import format_time


async def test_operators_and_admins_cannot_request_access(support: Support) -> None:
    cluster = await support.cluster("acme")
    for role in ("operator", "admin"):
        token = await support.staff(f"boss-{role}", role)
        body = {"cluster": cluster.id, "reason": "curious", "role": "viewer", "duration": "1h"}
        status, reply = await support.call("POST", "/api/v1/access-requests", body, token)
        assert (status, reply["error"]["code"]) == (403, "forbidden")
    assert (await support.heartbeat(cluster))["support_requests"] == []


async def test_bad_requests_are_refused_before_anything_is_stored(support: Support) -> None:
    await support.cluster("acme")
    token = await support.staff("alice", "support-l2")
    for body, status in (
        ({"cluster": "acme", "reason": " ", "role": "user", "duration": "1h"}, 422),
        ({"cluster": "acme", "reason": "x", "role": "root", "duration": "1h"}, 422),
        ({"cluster": "acme", "reason": "x", "role": "user", "duration": "8d"}, 422),
        ({"cluster": "acme", "reason": "x", "role": "user", "duration": "soon"}, 422),
        ({"cluster": "nope", "reason": "x", "role": "user", "duration": "1h"}, 404),
    ):
        assert (await support.call("POST", "/api/v1/access-requests", body, token))[0] == status
    assert (await support.ok("GET", "/api/v1/access-requests", token=token))["requests"] == []


async def test_request_heartbeat_signed_approval_and_window(support: Support) -> None:
    cluster = await support.cluster("acme")
    alice = await support.staff("alice", "support-l2")
    request = await support.request_access(alice, "acme", role="user", duration="4h")
    assert (request["state"], request["cluster_name"], request["grant"]) == (
        "pending",
        "acme",
        None,
    )

    beat = await support.heartbeat(cluster)
    assert beat["commands"] == []
    (listed,) = beat["support_requests"]
    assert listed == {
        "id": request["id"],
        "cluster": cluster.id,
        "engineer": "alice",
        "engineer_role": "support-l2",
        "reason": "ticket 4711: slow ingest",
        "role": "user",
        "duration_seconds": 14400,
        "requested_at": format_time(support.clock.now),
        "pending_until": format_time(support.clock.now + timedelta(days=4)),
        "state": "pending",
        "state_changed_by": None,
        "state_reason": None,
    }

    support.clock.advance(hours=20)  # the window starts at approval, not at the request
    approval = support.approval(cluster, request, role="viewer", seconds=3600)
    grant = {"role": "viewer", "starts_at": approval["starts_at"], "ends_at": approval["ends_at"]}
    status, reply = await support.decide(cluster, request["id"], "approved", approval, grant=grant)
    assert (status, reply["recorded"]) == (200, True)

    seen = await support.ok("GET", f"/api/v1/access-requests/{request['id']}", token=alice)
    assert seen["state"] == "approved" and seen["decided_by"] == "olga"
    assert seen["grant"]["role"] == "viewer" and seen["grant"]["approved_by"] == "olga"
    assert seen["grant"]["starts_at"].startswith("2030-06-02T08:00:00")
    assert seen["grant"]["ends_at"].startswith("2030-06-02T09:00:00")
    assert (await support.heartbeat(cluster))["support_requests"] == []  # decided: not listed

    # The same approval under a new message id is already honoured: nothing changes.
    status, reply = await support.decide(cluster, request["id"], "approved", approval)
    assert (status, reply["recorded"]) == (200, False)


async def test_forged_replayed_and_foreign_approvals_are_refused(support: Support) -> None:
    # Refusals of cluster messages are 422, never 409: a cluster's outbox reads 409 as epoch
    # fencing and stops delivering, while other 4xx set the one message aside. Each refused
    # approval also denies the request here and tells the cluster (listed `revoked` by system).
    acme = await support.cluster("acme")
    other = await support.cluster("other")
    alice = await support.staff("alice", "support-l3")
    admin = await support.staff("root", "admin")

    async def fresh(cluster: str = "acme") -> Any:
        return await support.request_access(alice, cluster)

    target = await fresh()
    forged = support.approval(acme, target, key=Ed25519PrivateKey.generate())
    status, reply = await support.decide(acme, target["id"], "approved", forged)
    assert (status, reply["error"]["code"]) == (422, "approval_rejected")
    assert "signature does not verify" in reply["error"]["message"]
    seen = await support.ok("GET", f"/api/v1/access-requests/{target['id']}", token=alice)
    assert seen["state"] == "denied" and "refused the approval" in seen["note"]
    (told,) = [r for r in (await support.heartbeat(acme))["support_requests"]]
    assert (told["id"], told["state"], told["state_changed_by"]) == (
        target["id"],
        "revoked",
        "system",
    )
    assert "signature does not verify" in told["state_reason"]
    # The cluster confirms (it closed the grant it believed running): no longer listed.
    status, _ = await support.decide(acme, target["id"], "revoked", by="system")
    assert status == 200
    assert (await support.heartbeat(acme))["support_requests"] == []

    target = await fresh()
    altered = support.approval(acme, target)
    altered["role"] = "admin"
    assert (await support.decide(acme, target["id"], "approved", altered))[0] == 422

    target = await fresh()
    wider = support.approval(acme, target, seconds=target["duration_seconds"] + 60)
    assert (await support.decide(acme, target["id"], "approved", wider))[0] == 422

    # Cluster acme cannot decide other's request, with any key.
    foreign = await fresh("other")
    status, _ = await support.decide(
        acme, foreign["id"], "approved", support.approval(acme, foreign)
    )
    assert status == 404
    seen = await support.ok("GET", f"/api/v1/access-requests/{foreign['id']}", token=alice)
    assert seen["state"] == "pending"  # another cluster's message changes nothing here
    # An approval acme signed for one request does not approve another.
    first, second = await fresh(), await fresh()
    status, reply = await support.decide(
        acme, second["id"], "approved", support.approval(acme, first)
    )
    assert status == 422 and "another request" in reply["error"]["message"]
    # Signed by other's key for acme's request: does not verify with acme's pinned key.
    target = await fresh()
    stolen = support.approval(acme, target, key=other.key)
    assert (await support.decide(acme, target["id"], "approved", stolen))[0] == 422

    good = support.approval(acme, first, approval_id="a" * 32)
    assert (await support.decide(acme, first["id"], "approved", good))[0] == 200
    third = await fresh()
    replay = support.approval(acme, third, approval_id="a" * 32)
    status, reply = await support.decide(acme, third["id"], "approved", replay)
    assert (status, reply["error"]["code"]) == (422, "approval_replayed")
    seen = await support.ok("GET", f"/api/v1/access-requests/{third['id']}", token=alice)
    assert seen["state"] == "denied" and "already used" in seen["note"]

    refused = await support.ok("GET", "/api/v1/audit?action=support.decision.refused", token=admin)
    assert len(refused["entries"]) == 7
    assert {e["cluster"] for e in refused["entries"]} == {acme.id}


async def test_a_cluster_clock_a_little_slow_is_tolerated(support: Support) -> None:
    cluster = await support.cluster("acme")
    alice = await support.staff("alice", "support-l2")
    request = await support.request_access(alice, "acme")
    # The cluster's clock is 20 s behind Mission Control's when it approves.
    slow = support.approval(cluster, request, starts_at=support.clock.now - timedelta(seconds=20))
    status, reply = await support.decide(cluster, request["id"], "approved", slow)
    assert (status, reply["recorded"]) == (200, True)


async def test_public_key_is_pinned_once(support: Support) -> None:
    cluster = await support.cluster("acme", pin=False)
    alice = await support.staff("alice", "support-l2")
    request = await support.request_access(alice, "acme")
    status, reply = await support.decide(
        cluster, request["id"], "approved", support.approval(cluster, request)
    )
    assert (status, reply["error"]["code"]) == (422, "public_key_conflict")
    pem = public_pem(cluster.key)
    assert (await support.send(cluster, "support/public-key", public_key_pem=pem))[1]["recorded"]
    assert not (await support.send(cluster, "support/public-key", public_key_pem=pem))[1][
        "recorded"
    ]
    intruder = public_pem(Ed25519PrivateKey.generate())
    status, reply = await support.send(cluster, "support/public-key", public_key_pem=intruder)
    assert (status, reply["error"]["code"]) == (422, "public_key_conflict")
    status, _ = await support.send(cluster, "support/public-key", public_key_pem="not a key")
    assert status == 422
    # The approval refused before the key was pinned denied that request; a new one works.
    again = await support.request_access(alice, "acme")
    status, _ = await support.decide(
        cluster, again["id"], "approved", support.approval(cluster, again)
    )
    assert status == 200


async def test_commands_flow_through_the_heartbeat(support: Support) -> None:
    cluster = await support.cluster("acme")
    alice = await support.staff("alice", "support-l2")
    bob = await support.staff("bob", "support-l2")
    request = await support.request_access(alice, "acme", role="viewer", duration="2h")
    path = f"/api/v1/access-requests/{request['id']}/commands"
    status, _ = await support.call("POST", path, {"command": "diagnostics"}, alice)
    assert status == 409  # not approved yet
    await support.decide(cluster, request["id"], "approved", support.approval(cluster, request))

    status, reply = await support.call(
        "POST",
        path,
        {"command": "config set", "arguments": {"key": "ingest.threads", "value": "8"}},
        alice,
    )
    assert (status, reply["error"]["code"]) == (403, "command_refused")
    assert "viewer does not allow config set" in reply["error"]["message"]
    assert (await support.call("POST", path, {"command": "diagnostics"}, bob))[0] == 404
    assert (await support.call("POST", path, {"command": "shell"}, alice))[0] == 422

    diag = await support.ok("POST", path, {"command": "diagnostics"}, alice)
    support.clock.advance(seconds=1)
    tail = await support.ok(
        "POST", path, {"command": "logs tail", "arguments": {"lines": 50}}, alice
    )
    assert diag["status"] == "queued"
    beat = await support.heartbeat(cluster)
    assert [(c["id"], c["command"], c["arguments"]) for c in beat["commands"]] == [
        (diag["id"], "diagnostics", {}),
        (tail["id"], "logs tail", {"lines": 50}),
    ]
    assert beat["commands"][0]["engineer"] == "alice"
    assert beat["commands"][0]["request_id"] == request["id"]

    result = {
        "command_id": diag["id"],
        "request_id": request["id"],
        "status": "ok",
        "summary": "3 nodes healthy",
        "output": "node-0 ok\npassword=[REDACTED]\n",
        "at": format_time(support.clock.now),
    }
    status, reply = await support.send(cluster, "support/command-result", **result)
    assert (status, reply["recorded"]) == (200, True)
    assert not (await support.send(cluster, "support/command-result", **result))[1]["recorded"]
    beat = await support.heartbeat(cluster)
    assert [c["id"] for c in beat["commands"]] == [tail["id"]]  # answered ones are not listed
    wrong = {**result, "command_id": tail["id"], "request_id": str(uuid.uuid4())}
    assert (await support.send(cluster, "support/command-result", **wrong))[0] == 422
    big = {**result, "command_id": tail["id"], "output": "x" * (64 * 1024 + 1)}
    assert (await support.send(cluster, "support/command-result", **big))[0] == 422

    listed = (await support.ok("GET", path, token=alice))["commands"]
    assert [(c["command"], c["status"], c["summary"], c["output"]) for c in listed] == [
        ("diagnostics", "ok", "3 nodes healthy", "node-0 ok\npassword=[REDACTED]\n"),
        ("logs tail", "queued", None, None),
    ]
    actions = [
        e["action"]
        for e in (await support.ok("GET", "/api/v1/audit?actor=alice", token=alice))["entries"]
    ]
    assert actions.count("support.command") == 2
    assert actions.count("support.command.refused") == 2  # not yet approved; role
    assert "support.command.result" in actions


async def test_ending_a_grant_reaches_the_cluster_and_stops_commands(support: Support) -> None:
    cluster = await support.cluster("acme")
    alice = await support.staff("alice", "support-l3")
    bob = await support.staff("bob", "support-l3")
    request = await support.request_access(alice, "acme", role="admin", duration="8h")
    rid = request["id"]
    await support.decide(cluster, rid, "approved", support.approval(cluster, request))
    assert (await support.call("POST", f"/api/v1/access-requests/{rid}/end", token=bob))[0] == 404
    ended = await support.ok("POST", f"/api/v1/access-requests/{rid}/end", token=alice)
    assert ended["state"] == "ended" and ended["awaiting_cluster"] is True
    assert ended["grant"]["closed_by"] == "alice"
    status, reply = await support.call(
        "POST", f"/api/v1/access-requests/{rid}/commands", {"command": "diagnostics"}, alice
    )
    assert (status, reply["error"]["code"]) == (409, "invalid_state")
    assert (await support.call("POST", f"/api/v1/access-requests/{rid}/end", token=alice))[0] == 409

    (listed,) = (await support.heartbeat(cluster))["support_requests"]
    assert (listed["id"], listed["state"], listed["state_changed_by"]) == (rid, "ended", "alice")
    assert listed["state_reason"] == "closed by the engineer"
    status, reply = await support.decide(cluster, rid, "ended", reason="closed by the engineer")
    assert (status, reply["recorded"]) == (200, True)
    assert (await support.heartbeat(cluster))["support_requests"] == []
    seen = await support.ok("GET", f"/api/v1/access-requests/{rid}", token=alice)
    assert (seen["state"], seen["awaiting_cluster"]) == ("ended", False)


async def test_cluster_revocation_and_denial(support: Support) -> None:
    cluster = await support.cluster("acme")
    alice = await support.staff("alice", "support-l2")
    granted = await support.request_access(alice, "acme")
    denied = await support.request_access(alice, "acme")
    await support.decide(cluster, granted["id"], "approved", support.approval(cluster, granted))
    revoked = {"request_id": granted["id"], "state": "revoked", "by": "olga", "reason": "done here"}
    assert (await support.send(cluster, "support/decision", **revoked, at=None))[0] == 200
    assert (await support.decide(cluster, denied["id"], "denied", reason="maintenance window"))[
        0
    ] == 200
    assert (await support.decide(cluster, denied["id"], "revoked"))[0] == 422
    seen = {
        r["id"]: r
        for r in (await support.ok("GET", "/api/v1/access-requests", token=alice))["requests"]
    }
    assert seen[granted["id"]]["state"] == "revoked"
    assert seen[granted["id"]]["grant"]["close_reason"] == "done here"
    assert (seen[denied["id"]]["state"], seen[denied["id"]]["note"]) == (
        "denied",
        "maintenance window",
    )
    status, _ = await support.call(
        "POST",
        f"/api/v1/access-requests/{granted['id']}/commands",
        {"command": "diagnostics"},
        alice,
    )
    assert status == 409
    assert (await support.decide(cluster, str(uuid.uuid4()), "denied"))[0] == 404


async def test_pending_requests_expire_at_mission_control(support: Support) -> None:
    from mission_control.service.support.access_requests import sweep

    cluster = await support.cluster("acme")
    alice = await support.staff("alice", "support-l2")
    request = await support.request_access(alice, "acme")
    support.clock.advance(days=4)
    assert (await support.heartbeat(cluster))["support_requests"] == []
    seen = await support.ok("GET", f"/api/v1/access-requests/{request['id']}", token=alice)
    assert seen["state"] == "expired"
    assert await sweep(support.ctx) == 1
    assert await sweep(support.ctx) == 0
    admin = await support.staff("root", "admin")
    expired = await support.ok("GET", "/api/v1/audit?action=support.expired", token=admin)
    assert [(e["actor"]["name"], e["subject"]) for e in expired["entries"]] == [
        ("system", request["id"])
    ]
    late = support.approval(cluster, request)
    assert (await support.decide(cluster, request["id"], "approved", late))[0] == 422


async def test_requests_are_visible_to_their_engineer_and_to_operators(support: Support) -> None:
    await support.cluster("acme")
    alice = await support.staff("alice", "support-l2")
    bob = await support.staff("bob", "support-l2")
    ops = await support.staff("ops", "operator")
    request = await support.request_access(alice, "acme")
    assert (await support.call("GET", f"/api/v1/access-requests/{request['id']}", token=bob))[
        0
    ] == 404
    assert (await support.ok("GET", "/api/v1/access-requests", token=bob))["requests"] == []
    assert (
        len(
            (await support.ok("GET", "/api/v1/access-requests?cluster=acme", token=ops))["requests"]
        )
        == 1
    )
    assert (await support.call("GET", "/api/v1/access-requests"))[0] == 401


async def test_policy_is_stored(support: Support) -> None:
    cluster = await support.cluster("acme")
    policy = {
        "mode": "allowed",
        "max_grant_seconds": 28800,
        "allowed_roles": ["viewer"],
        "preapproved": [],
    }
    status, reply = await support.send(cluster, "support/policy", **policy)
    assert (status, reply["recorded"]) == (200, True)
    status, _ = await support.send(cluster, "support/policy", **{**policy, "mode": "sometimes"})
    assert status == 422
