"""Retention on a real node: the node itself deletes what is older than each environment's
retention (its data service sweeps when it starts and every minute after), and nothing an
environment still keeps. The test restarts the node to see a sweep without waiting a minute."""

from __future__ import annotations

import json
import time
import urllib.error

from clusterkit import ClusterUnderTest
from datakit import DataCluster

from cluster.dev.processes import wait_until

DAY_MS = 86_400_000


def _lines(*records: tuple[str, float]) -> bytes:
    return "\n".join(json.dumps({"message": m, "timestamp": at}) for m, at in records).encode()


def test_a_node_deletes_what_is_past_each_environments_retention(
    cluster: ClusterUnderTest,
) -> None:
    dc = DataCluster.create(cluster)
    dc.start(1)
    dc.cli("env", "create", "short", "--retention-days", "1")
    dc.cli("env", "create", "long", "--retention-days", "30")
    tokens = {
        env: dc.cli("token", "create", "--env", env, "--scope", "ingest").strip()
        for env in ("short", "long")
    }
    reader = dc.cli("token", "create", "--scope", "read", "--for", "alice").strip()
    dc.wait_token_known(reader, ["n1"])

    now_ms = time.time() * 1000
    for env, token in tokens.items():
        body = _lines((f"{env} three days old", now_ms - 3 * DAY_MS), (f"{env} fresh", now_ms))
        status, answer = dc.request("n1", "/v1/logs", body, token=token)
        assert (status, answer["stored"]) == (200, 2), answer

    def messages(env: str) -> set[str]:
        return {r["message"] for r in dc.read("logs", "--env", env, token=reader)["rows"]}

    assert messages("short") == {"short three days old", "short fresh"}

    cluster.processes["n1"].stop(timeout=10)
    dc.run("n1")  # same data directory: the store is the one written above

    def swept() -> bool:
        try:
            return messages("short") == {"short fresh"}
        except (AssertionError, urllib.error.URLError, OSError):
            return False  # not serving yet

    assert wait_until(swept, 30), cluster.logs()
    assert messages("long") == {"long three days old", "long fresh"}
