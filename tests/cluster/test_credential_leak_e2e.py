"""A leaked cluster credential, end to end: real nodes, a real Mission Control over HTTPS, a real
ensemble.

- A leak report revokes the credential within its one request; the leader, answered
  `credential_revoked`, renews it with its renewal secret and the link is ok again with a new
  credential, with no operator involved; Mission Control shows a `credential_leaked` alert.
- `managed mc rotate-credential` replaces the pair; the old credential stops working and the
  running leader carries on with the new one.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from clusterkit import ClusterUnderTest
from mc_exchange_kit import credential_of, exchange_state, secret_of

from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import wait_until
from cluster.link.credentials import RENEWAL_SECRET
from contract.credentials import CredentialKind, kind_of

PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def enrolled(cluster: ClusterUnderTest, mc: MissionControlServer) -> Iterator[ClusterUnderTest]:
    cluster.enroll(mc)
    cluster.start_nodes(3)
    assert wait_until(lambda: link_state(cluster) == "ok", 60), cluster.logs()
    yield cluster


def link_state(cluster: ClusterUnderTest) -> str | None:
    return exchange_state(cluster).get("link", {}).get("state")


def renewal_of(cluster: ClusterUnderTest) -> str:
    return secret_of(cluster, RENEWAL_SECRET)


def post(mc: MissionControlServer, path: str, body: bytes, token: str) -> tuple[int, object]:
    request = urllib.request.Request(
        mc.url + path,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(mc.ca_file))
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def operator_token(mc: MissionControlServer) -> str:
    added = mc.cli("users", "add", "olga", "--role", "operator", stdin=f"{PASSWORD}\n" * 2)
    assert added.returncode == 0, added.stderr
    issued = mc.cli("tokens", "create", "--user", "olga")
    assert issued.returncode == 0, issued.stderr
    return issued.stdout.strip()


def heartbeat(mc: MissionControlServer, cluster_id: str, credential: str) -> int:
    body = json.dumps({"message_id": "0b7c5a9e-3f52-4d1c-9a57-2a1f0e6c4b11", "epoch": 1})
    return post(mc, f"/api/v1/clusters/{cluster_id}/heartbeat", body.encode(), credential)[0]


def test_a_reported_leak_is_revoked_at_once_and_the_cluster_renews_by_itself(
    enrolled: ClusterUnderTest, mc: MissionControlServer
) -> None:
    leaked = credential_of(enrolled)
    renewal = renewal_of(enrolled)
    assert kind_of(leaked) is CredentialKind.CLUSTER
    assert kind_of(renewal) is CredentialKind.RENEWAL
    report = [{"token": leaked, "type": "managed_cluster_credential", "url": "", "source": ""}]
    status, verdicts = post(mc, "/api/v1/leaks", json.dumps(report).encode(), operator_token(mc))
    assert status == 200 and isinstance(verdicts, list), verdicts
    assert [v["label"] for v in verdicts] == ["true_positive"]
    cluster_id = enrolled.snapshot().config["mission_control"]["cluster_id"]
    assert heartbeat(mc, cluster_id, leaked) == 401  # refused from the report on, not later

    assert wait_until(lambda: credential_of(enrolled) != leaked, 60), enrolled.logs()
    assert wait_until(lambda: link_state(enrolled) == "ok", 60), enrolled.logs()
    assert renewal_of(enrolled) != renewal
    assert heartbeat(mc, cluster_id, credential_of(enrolled)) == 200
    assert heartbeat(mc, cluster_id, leaked) == 401
    listed = mc.cli("alerts", "list", "--cluster", enrolled.name)
    assert "credential_leaked" in listed.stdout, listed.stdout


def test_rotation_replaces_the_pair_and_the_leader_carries_on(
    enrolled: ClusterUnderTest, mc: MissionControlServer
) -> None:
    old = credential_of(enrolled)
    rotated = enrolled.cli("mc", "rotate-credential")
    assert rotated.returncode == 0 and "rotated" in rotated.stdout, rotated.stderr
    new = credential_of(enrolled)
    assert new != old and kind_of(new) is CredentialKind.CLUSTER
    cluster_id = enrolled.snapshot().config["mission_control"]["cluster_id"]
    assert heartbeat(mc, cluster_id, old) == 401
    assert heartbeat(mc, cluster_id, new) == 200
    before = exchange_state(enrolled).get("last_contact") or 0
    assert wait_until(
        lambda: (
            (exchange_state(enrolled).get("last_contact") or 0) > before
            and link_state(enrolled) == "ok"
        ),
        60,
    ), enrolled.logs()
