"""The `managed` CLI against a real ensemble: membership, status, and one-line errors."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from clusterkit import TIMING, ZK_AUTH, ClusterUnderTest, managed

from cluster import zk
from cluster.errors import ZooKeeperAuthFailed


def test_join_is_idempotent_and_list_shows_the_roster(cluster: ClusterUnderTest) -> None:
    args = ("node", "join", "n1", "--datacenter", "dc1", "--api-address", "127.0.0.1:7001")
    first, again = cluster.cli(*args), cluster.cli(*args)
    assert first.returncode == 0 and "joined" in first.stdout
    assert again.returncode == 0 and "already in" in again.stdout
    rows = json.loads(cluster.cli("node", "list", "--json").stdout)
    assert rows == [
        {
            "id": "n1",
            "datacenter": "dc1",
            "api_address": "127.0.0.1:7001",
            "live": False,
            "leader": False,
            "drained": False,
        }
    ]


def test_malformed_join_is_refused_with_one_line_and_changes_nothing(
    cluster: ClusterUnderTest,
) -> None:
    bad = [
        ("N_1", "dc1", "127.0.0.1:7001", "node id"),
        ("n1", "DC 1", "127.0.0.1:7001", "datacenter"),
        ("n1", "dc1", "127.0.0.1", "HOST:PORT"),
        ("n1", "dc1", "127.0.0.1:70000", "port"),
    ]
    for node, dc, addr, word in bad:
        r = cluster.cli("node", "join", node, "--datacenter", dc, "--api-address", addr)
        assert r.returncode == 1, r
        assert word in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert cluster.snapshot().roster == ()


def test_conflicting_join_is_refused(cluster: ClusterUnderTest) -> None:
    assert (
        cluster.cli(
            "node", "join", "n1", "--datacenter", "dc1", "--api-address", "127.0.0.1:7001"
        ).returncode
        == 0
    )
    r = cluster.cli("node", "join", "n1", "--datacenter", "dc2", "--api-address", "127.0.0.1:7001")
    assert r.returncode == 1 and "leave first" in r.stderr
    r = cluster.cli("node", "join", "n2", "--datacenter", "dc1", "--api-address", "127.0.0.1:7001")
    assert r.returncode == 1 and "already used by node n1" in r.stderr


def test_leave_refuses_live_node_and_broken_quorum_unless_forced(cluster: ClusterUnderTest) -> None:
    cluster.start_nodes(3)
    r = cluster.cli("node", "leave", "n1")
    assert r.returncode == 1 and "is live" in r.stderr
    # Stop two nodes: removing either down node would leave 1 live of 2 needed... check both rules.
    cluster.processes["n2"].stop()
    cluster.processes["n3"].stop()
    assert cluster.wait(lambda s: len(s.live) == 1, 10)
    r = cluster.cli("node", "leave", "n3")
    assert r.returncode == 1 and "quorum" in r.stderr
    assert {e.node for e in cluster.snapshot().roster} == {"n1", "n2", "n3"}
    r = cluster.cli("node", "leave", "n3", "--force")
    assert r.returncode == 0 and "left" in r.stdout
    assert {e.node for e in cluster.snapshot().roster} == {"n1", "n2"}


def test_status_json_fields_and_text(cluster: ClusterUnderTest) -> None:
    cluster.start_nodes(3)
    doc = json.loads(cluster.cli("cluster", "status", "--json").stdout)
    # Exactly the fields DESIGN.md lists, at every level, plus the data-center ones.
    assert set(doc) - {"quorum_rule", "datacenters"} == {
        "cluster",
        "roster",
        "quorum",
        "leader",
        "epoch",
    }
    assert doc["quorum_rule"]["name"] == "majority"
    assert [(d["name"], d["nodes"]) for d in doc["datacenters"]] == [
        ("dc1", {"live": 2, "total": 2}),
        ("dc2", {"live": 1, "total": 1}),
    ]
    assert [set(r) for r in doc["roster"]] == [{"id", "datacenter", "live"}] * 3
    assert set(doc["quorum"]) == {"have", "need", "ok"}
    assert doc["cluster"] == cluster.name
    assert [r["id"] for r in doc["roster"]] == ["n1", "n2", "n3"]
    assert doc["quorum"] == {"have": 3, "need": 2, "ok": True}
    assert doc["leader"] in {"n1", "n2", "n3"} and doc["epoch"] >= 1
    text = cluster.cli("cluster", "status").stdout
    assert f"leader    {doc['leader']}" in text and "quorum    ok (3 live, 2 needed)" in text
    assert "license   not enrolled" in text  # the text adds it; scripts use `mc status --json`
    mc = json.loads(cluster.cli("mc", "status", "--json").stdout)
    assert mc["license"] == {"state": "not enrolled"}


def test_unreachable_zookeeper_and_usage_errors() -> None:
    r = managed("--zk", "127.0.0.1:1", "--zk-auth", ZK_AUTH, "cluster", "status", timeout=30)
    assert r.returncode == 1 and "cannot reach ZooKeeper" in r.stderr and r.stderr.count("\n") == 1
    # Nothing of a cluster is readable without its credential: refused before connecting.
    r = managed("--zk", "127.0.0.1:1", "cluster", "status", env={"MANAGED_ZK_AUTH": ""})
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert r.stderr.endswith("pass --zk-auth USER:PASSWORD or set MANAGED_ZK_AUTH\n")
    # A backup id that is not one (a path, say) is refused before anything is read.
    r = managed("--zk", "127.0.0.1:1", "--zk-auth", ZK_AUTH, "backup", "show", "../../runs/x")
    assert r.returncode == 1 and "is not a backup id" in r.stderr and r.stderr.count("\n") == 1
    # Nor is ZooKeeper reached without TLS.
    r = managed(
        "--zk", "127.0.0.1:1", "--zk-auth", ZK_AUTH, "cluster", "status", env={"MANAGED_ZK_CA": ""}
    )
    assert r.returncode == 1 and "over TLS only" in r.stderr and r.stderr.count("\n") == 1
    r = managed("--cluster", "Bad!", "cluster", "status")
    assert r.returncode == 2
    r = managed("node", "frobnicate")
    assert r.returncode == 2
    r = managed("--zk-auth", "nocolon", "cluster", "status")
    assert r.returncode == 2 and "USER:PASSWORD" in r.stderr
    # Ids are checked before connecting: no ZooKeeper is needed to refuse them.
    r = managed("--zk", "127.0.0.1:1", "node", "leave", "Bad_Id", timeout=30)
    assert r.returncode == 1 and "invalid" in r.stderr and r.stderr.count("\n") == 1
    r = managed(
        "--zk", "127.0.0.1:1", "node", "join", "zookeeper", "--datacenter", "dc1",
        "--api-address", "127.0.0.1:7001", timeout=30,
    )  # fmt: skip
    assert r.returncode == 1 and "reserved" in r.stderr and r.stderr.count("\n") == 1


def test_a_credential_zookeeper_refuses_is_reported_as_such(cluster: ClusterUnderTest) -> None:
    # Digest credentials are checked client-side (USER:PASSWORD); an empty one is what a
    # ZooKeeper server refuses, which must not read as "cannot reach ZooKeeper".
    with pytest.raises(ZooKeeperAuthFailed, match="refused the credential"):
        zk.connect(cluster.hosts, auth="")


def _error_lines(stderr: str) -> list[str]:
    """The CLI's error lines (a node's own log lines may precede them)."""
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def test_node_run_with_an_unusable_data_dir_is_one_line(cluster: ClusterUnderTest) -> None:
    cluster.join("n1")
    r = cluster.cli("node", "run", "n1", "--data-dir", "/proc/nope", timeout=30)
    assert r.returncode == 1, r
    assert _error_lines(r.stderr) == [
        "Error: cannot use data directory /proc/nope: No such file or directory"
    ], r.stderr


def test_node_run_on_a_port_in_use_is_one_line_and_leaves_nothing(
    cluster: ClusterUnderTest, tmp_path: Path
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = cluster.cli(
            "node", "join", "n1", "--datacenter", "dc1", "--api-address", f"127.0.0.1:{port}"
        )
        assert r.returncode == 0, r.stderr
        r = managed(
            "--zk", cluster.hosts, "--cluster", cluster.name, "node", "run", "n1",
            "--data-dir", str(tmp_path / "n1"), env={**TIMING, "MANAGED_ZK_AUTH": ZK_AUTH},
            timeout=60,
        )  # fmt: skip
    assert r.returncode == 1, r
    lines = _error_lines(r.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")
    assert cluster.snapshot().live_member("n1") is None  # its live znode went with it


def test_node_run_refuses_a_node_outside_the_roster(cluster: ClusterUnderTest) -> None:
    proc = cluster.run("ghost")
    proc.popen.wait(30)
    assert proc.popen.returncode == 1
    assert "not in the roster" in proc.log_tail()


def test_two_nodes_never_share_a_data_dir(cluster: ClusterUnderTest, tmp_path: Path) -> None:
    cluster.join("n1")
    cluster.join("n2")
    shared = tmp_path / "shared"
    p1 = cluster.run("n1", data_dir=shared)
    assert cluster.wait(lambda s: s.live_member("n1") is not None, 15), p1.log_tail()
    p2 = cluster.run("n2", data_dir=shared)
    p2.popen.wait(20)
    assert p2.popen.returncode == 1 and "in use by another process" in p2.log_tail()
    # Refused before it wrote anything: the first node's log is its own.
    node_log = (shared / "logs" / "node.log").read_text()
    assert "registered live as n1" in node_log and " n2" not in node_log
    p1.stop()
    p3 = cluster.run("n2", data_dir=shared, key="n2-again")
    p3.popen.wait(20)
    assert p3.popen.returncode == 1 and "belongs to" in p3.log_tail()
