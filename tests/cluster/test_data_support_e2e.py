"""Monitoring data through a support grant at a real Mission Control: the engineer's
`data sessions` reads every node through the leader, with user tags shown as `*****` unless
the operator's approval explicitly included sensitive data; finding a customer by e-mail shows
that customer's sessions only."""

from __future__ import annotations

import json
from typing import Any

from clusterkit import ClusterUnderTest
from datakit import DataCluster, beacon, load
from test_remote_support_e2e import Staff, ask, request_state

from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import wait_until


def _approved(staff: Staff, cluster: ClusterUnderTest, *flags: str) -> str:
    rid = ask(staff, cluster)

    def pending() -> bool:
        r = cluster.cli("support", "requests", "--json")
        return r.returncode == 0 and any(
            x["id"] == rid and x["state"] == "pending" for x in json.loads(r.stdout)
        )

    assert wait_until(pending, 60), cluster.logs()
    r = cluster.cli("support", "approve", rid, "--operator", "carol", *flags)
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: request_state(staff, rid) == "approved", 60), cluster.logs()
    return rid


def _run(staff: Staff, rid: str, command: str, **arguments: str) -> dict[str, Any]:
    code, cmd = staff.call(
        "POST", f"/access-requests/{rid}/commands", {"command": command, "arguments": arguments}
    )
    assert code in (200, 201), cmd
    done: list[dict[str, Any]] = []

    def answered() -> bool:
        for c in staff.call("GET", f"/access-requests/{rid}/commands")[1]["commands"]:
            if c["id"] == cmd["id"] and c["status"] != "queued":
                done.append(c)
                return True
        return False

    assert wait_until(answered, 60)
    return done[0]


def test_support_reads_data_masked_unless_the_approval_says_so(
    cluster: ClusterUnderTest, mc: MissionControlServer
) -> None:
    cluster.enroll(mc)
    dc = DataCluster.create(cluster)
    dc.start(3)
    dc.cli("env", "create", "prod")
    dc.cli("env", "app", "prod", "shop", "--user-tags")
    ingest = dc.cli("token", "create", "--env", "prod", "--scope", "ingest").strip()
    assert wait_until(lambda: dc.request("n1", "/v1/capture-rules", token=ingest)[0] == 200, 10)
    assert wait_until(lambda: dc.request("n3", "/v1/capture-rules", token=ingest)[0] == 200, 10)
    for node, session, tag in (("n1", "sess-ann-0001", "ann@example.com"),
                               ("n3", "sess-bob-0001", "bob@example.com")):  # fmt: skip
        body = beacon("shop", session, load("https://shop/cart"), user_tag=tag)
        assert dc.request(node, "/v1/beacon", body, token=ingest)[0] == 204
    alice = Staff(mc, "alice", "support-l2")

    # An approval without --sensitive-data: the grant says so, the tags are masked.
    rid = _approved(alice, cluster)
    assert alice.call("GET", f"/access-requests/{rid}")[1]["grant"]["sensitive_data"] is False
    answer = _run(alice, rid, "data sessions", env="prod")
    assert answer["status"] == "ok", answer
    assert "2 sessions of prod from 3 node(s), sensitive fields masked" in answer["summary"]
    rows = json.loads(answer["output"])
    assert {r["user_tag"] for r in rows} == {"*****"} and {r["node"] for r in rows} == {"n1", "n3"}
    assert "ann@example.com" not in answer["output"] and "bob@" not in answer["output"]
    # The help-desk case: by e-mail, that customer's session only, still masked.
    answer = _run(alice, rid, "data sessions", env="prod", user_tag="ann@example.com")
    assert [r["id"] for r in json.loads(answer["output"])] == ["sess-ann-0001"]
    assert "ann@example.com" not in answer["output"]
    # Bad arguments are refused at Mission Control before anything is queued.
    code, _ = alice.call("POST", f"/access-requests/{rid}/commands", {"command": "data sessions"})
    assert code == 422
    alice.call("POST", f"/access-requests/{rid}/end")

    # An approval that explicitly includes sensitive data: the tags are shown.
    rid = _approved(alice, cluster, "--sensitive-data")
    assert alice.call("GET", f"/access-requests/{rid}")[1]["grant"]["sensitive_data"] is True
    answer = _run(alice, rid, "data sessions", env="prod")
    assert "sensitive fields unmasked" in answer["summary"], answer
    assert {r["user_tag"] for r in json.loads(answer["output"])} == {
        "ann@example.com",
        "bob@example.com",
    }
    audit = cluster.cli("audit", "log", "--json").stdout
    assert '"sensitive_data": true' in audit
    assert "sha256:" in audit and "ann@example.com" not in audit  # the searched tag, hashed
