"""The operator verbs on a real ensemble with real node processes: switchover to a named node
(now and at a set time), drain, and the leadership history across a switchover, a SIGKILL
failover and a SIGTERM handover. (Maintenance pausing a scheduled backup is in
`backup_orchestration/test_maintenance.py`.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from clusterkit import SESSION_TIMEOUT, ClusterUnderTest

from cluster.dev.processes import wait_until
from cluster.history import LOST_WITHOUT_HANDOVER


def _leader(c: ClusterUnderTest) -> str | None:
    snap = c.snapshot()
    return snap.leader.node if snap.leader else None


def _refused(c: ClusterUnderTest, *args: str) -> str:
    r = c.cli(*args)
    assert r.returncode == 1, (args, r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    return r.stderr


def _history(c: ClusterUnderTest) -> list[dict[str, Any]]:
    r = c.cli("cluster", "history", "--json")
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout))


def test_switchover_now_and_at_a_time_and_history_across_a_sigkill(
    cluster: ClusterUnderTest,
) -> None:
    nodes = cluster.start_nodes(3)
    first = _leader(cluster)
    target, third = [n for n in nodes if n != first]

    # Refusals change nothing and say why in one line.
    assert "not in the roster" in _refused(cluster, "switchover", "--to", "stranger")
    assert "already leads" in _refused(cluster, "switchover", "--to", first)
    assert "is in the past" in _refused(cluster, "switchover", "--to", target, "--at", "2001-01-01")
    assert "not a time" in _refused(cluster, "switchover", "--to", target, "--at", "soon")
    assert _leader(cluster) == first and cluster.snapshot().switchover is None

    r = cluster.cli("switchover", "--to", target)
    assert r.returncode == 0, r.stderr + cluster.logs()
    assert f"switched over: {target} leads" in r.stdout
    assert _leader(cluster) == target

    # At a set time: nothing happens before it, the named node leads after it.
    at = datetime.now(UTC) + timedelta(seconds=12)  # a CLI may take seconds to start here
    r = cluster.cli("switchover", "--to", third, "--at", at.isoformat())
    assert r.returncode == 0 and "scheduled" in r.stdout, r.stderr
    assert "already scheduled" in _refused(cluster, "switchover", "--to", first)
    assert "switchover to" in cluster.cli("cluster", "status").stdout
    assert _leader(cluster) == target
    assert wait_until(lambda: _leader(cluster) == third, 30), cluster.logs()
    assert datetime.now(UTC) >= at
    # A leader's entry is opened by its first fenced write, a moment after it takes the lock
    # (a node killed in between has no entry: cluster/history.py says so).
    assert wait_until(lambda: _history(cluster)[-1]["node"] == third, 10), _history(cluster)

    # SIGKILL the leader: the next one records that the lock was lost without a handover.
    cluster.processes[third].kill()
    assert wait_until(lambda: _leader(cluster) not in (None, third), SESSION_TIMEOUT + 10), (
        cluster.logs()
    )
    fourth = _leader(cluster)
    assert wait_until(lambda: len(_history(cluster)) == 4, 10), _history(cluster)
    # A target that is down is refused.
    assert "is not live" in _refused(cluster, "switchover", "--to", third)

    entries = _history(cluster)
    assert [(e["node"], e["ended"]) for e in entries] == [
        (first, f"switchover to {target}: handing the lock over"),
        (target, f"switchover to {third}: handing the lock over"),
        (third, LOST_WITHOUT_HANDOVER),
        (fourth, ""),
    ]
    epochs = [e["epoch"] for e in entries]
    assert epochs == sorted(set(epochs))
    for earlier, later in zip(entries, entries[1:], strict=False):
        assert earlier["end"] is not None and earlier["start"] <= earlier["end"]
        assert earlier["end"] <= later["start"] + 1.0
    assert entries[-1]["end"] is None
    text = cluster.cli("cluster", "history").stdout
    assert "leading" in text and LOST_WITHOUT_HANDOVER in text

    # A graceful stop closes the entry with its reason.
    cluster.processes[fourth].stop(timeout=10)
    # (two of three nodes down: no quorum, nobody takes over; the entry is closed anyway)
    assert wait_until(lambda: _history(cluster)[-1]["end"] is not None, 10)
    assert _history(cluster)[-1]["ended"] == "handed over on shutdown (SIGTERM)"


def test_drain_hands_over_at_once_and_the_drained_node_never_leads(
    cluster: ClusterUnderTest,
) -> None:
    nodes = cluster.start_nodes(3)
    first = _leader(cluster)
    r = cluster.cli("node", "drain", first)
    assert r.returncode == 0, r.stderr + cluster.logs()
    second = _leader(cluster)
    assert second != first and f"{second} leads" in r.stdout
    rows = json.loads(cluster.cli("node", "list", "--json").stdout)
    assert {row["id"] for row in rows if row["drained"]} == {first}
    code, status = cluster.status(first)
    assert code == 200 and status["drained"] is True

    # The leader stops: the lock goes to the one node that is not drained.
    other = next(n for n in nodes if n not in (first, second))
    cluster.processes[second].stop(timeout=10)
    assert wait_until(lambda: _leader(cluster) == other, 10), cluster.logs()
    # Draining the last node that could lead is refused; so is a switchover to a drained one.
    assert "no other node could lead" in _refused(cluster, "node", "drain", other)
    assert "is drained" in _refused(cluster, "switchover", "--to", first)
    assert "not in the roster" in _refused(cluster, "node", "drain", "stranger")

    r = cluster.cli("node", "undrain", first)
    assert r.returncode == 0 and "may lead again" in r.stdout, r.stderr
    # A scheduled switchover can be cancelled before it is due; then nothing happens.
    assert "no scheduled switchover" in _refused(cluster, "switchover", "--cancel")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = cluster.cli("switchover", "--to", first, "--at", later)
    assert r.returncode == 0, r.stderr
    r = cluster.cli("switchover", "--cancel")
    assert r.returncode == 0 and "cancelled" in r.stdout, r.stderr
    s = cluster.snapshot().switchover
    assert s is not None and s.state == "cancelled" and _leader(cluster) == other
    r = cluster.cli("switchover", "--to", first)
    assert r.returncode == 0, r.stderr + cluster.logs()
    assert _leader(cluster) == first
    history = _history(cluster)
    assert history[0]["ended"] == f"{first} is drained: handing the lock over"

    audit = cluster.cli("audit", "log", "--json")
    assert audit.returncode == 0, audit.stderr
    actions = [e["action"] for e in json.loads(audit.stdout)]
    assert actions.count("node.drained") == 1 and actions.count("node.undrained") == 1
    assert actions.count("cluster.switchover") == 2
    assert actions.count("cluster.switchover.cancelled") == 1
