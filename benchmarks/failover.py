"""Failover benchmark against a real 3-server ZooKeeper ensemble and 3 real node processes.

Measures, as medians over TRIALS:
  (a) graceful handover: SIGTERM to the leader -> another node holds the lock and has written
      the health summary with the new epoch (it is acting);
  (b) SIGKILL failover: same end point, reported next to the configured session timeout;
  (c) start-up: `managed node run` launched -> the node is live in `cluster status`,
      next to a baseline measured in the same run: a bare Python process that imports kazoo,
      connects and creates an ephemeral znode.

Usage: python benchmarks/failover.py [--trials N]   (N >= 5, default 5)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cluster import roster, zk
from cluster.dev.processes import Process, free_port, start, wait_until
from cluster.dev.zookeeper import Ensemble
from cluster.paths import ClusterPaths
from cluster.zk.client import CA_ENV

SESSION_TIMEOUT = 2.0
ZK_AUTH = "bench:bench-secret"
TIMING = {
    "MANAGED_ZK_AUTH": ZK_AUTH,
    "MANAGED_SESSION_TIMEOUT": str(SESSION_TIMEOUT),
    "MANAGED_LOOP_INTERVAL": "0.5",
    "MANAGED_RETRY_TIMEOUT": "0.7",
}


def node_argv(hosts: str, cluster: str, node: str, data: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cluster",
        "--zk",
        hosts,
        "--cluster",
        cluster,
        "node",
        "run",
        node,
        "--data-dir",
        str(data / node),
    ]


def acting(client: object, paths: ClusterPaths, old: str | None) -> str | None:
    snap = zk.read_snapshot(client, paths)
    if snap.leader is None or snap.leader.node == old:
        return None
    data, _ = client.get(paths.health)  # type: ignore[attr-defined]
    summary = json.loads(data or b"{}")
    if summary.get("epoch") == snap.epoch.value and summary.get("leader") == snap.leader.node:
        return snap.leader.node
    return None


def baseline_ephemeral(hosts: str, base: Path) -> float:
    """A bare kazoo process that does what registering live takes: TLS, the credential, an
    ephemeral znode with the cluster's ACL."""
    code = (
        "import os, sys; from kazoo.client import KazooClient; "
        "from kazoo.security import make_digest_acl; u, p = sys.argv[3].split(':'); "
        "c = KazooClient(sys.argv[1], use_ssl=True, ca=os.environ['MANAGED_ZK_CA'], "
        "verify_certs=True, check_hostname=True, auth_data=[('digest', sys.argv[3])]); "
        "c.start(10); c.create('/bench-baseline/' + sys.argv[2], ephemeral=True, makepath=True, "
        "acl=[make_digest_acl(u, p, all=True)]); import time; time.sleep(30)"
    )
    client = zk.connect(hosts, auth=ZK_AUTH)
    name = f"b{time.monotonic_ns()}"
    t0 = time.monotonic()
    argv = [sys.executable, "-c", code, hosts, name, ZK_AUTH]
    p = start("baseline", argv, base / "baseline.log")
    ok = wait_until(lambda: client.exists(f"/bench-baseline/{name}") is not None, 30, 0.005)
    took = time.monotonic() - t0
    p.kill()
    zk.close(client)
    assert ok, p.log_tail()
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5, help="trials per figure (at least 5)")
    args = ap.parse_args()
    if args.trials < 5:
        ap.error("--trials must be at least 5: the figures are medians over 5 or more trials")
    base = Path(tempfile.mkdtemp(prefix="failover-bench-"))
    ensemble = Ensemble(base / "zk")
    procs: dict[str, Process] = {}
    handover: list[float] = []
    killed: list[float] = []
    startup: list[float] = []
    baseline: list[float] = []
    try:
        ensemble.start()
        ensemble.wait_ready(60)
        os.environ[CA_ENV] = str(ensemble.ca_file)  # the nodes inherit it
        hosts = ensemble.connect_string
        cluster = "bench"
        paths = ClusterPaths(cluster)
        client = zk.connect(hosts, auth=ZK_AUTH)
        nodes = ["n1", "n2", "n3"]
        for n in nodes:
            roster.join(client, paths, n, "dc1", f"127.0.0.1:{free_port()}")

        def launch(n: str) -> float:
            t0 = time.monotonic()
            procs[n] = start(n, node_argv(hosts, cluster, n, base), base / f"{n}.log", env=TIMING)
            ok = wait_until(
                lambda: zk.read_snapshot(client, paths).live_member(n) is not None, 30, 0.005
            )
            assert ok, procs[n].log_tail()
            return time.monotonic() - t0

        for n in nodes:
            startup.append(launch(n))
        assert wait_until(lambda: acting(client, paths, None) is not None, 30)
        for _ in range(args.trials):
            baseline.append(baseline_ephemeral(hosts, base))
            for how, sink in (("term", handover), ("kill", killed)):
                old = acting(client, paths, None)
                assert old is not None
                t0 = time.monotonic()
                procs[old].signal(15 if how == "term" else 9)
                assert wait_until(lambda o=old: acting(client, paths, o) is not None, 30, 0.005)
                sink.append(time.monotonic() - t0)
                procs[old].popen.wait(10)
                # bring it back (after its old session expired, for a clean live znode)
                if how == "kill":
                    wait_until(
                        lambda o=old: zk.read_snapshot(client, paths).live_member(o) is None,
                        30,
                        0.02,
                    )
                startup.append(launch(old))
        zk.close(client)
    finally:
        for p in procs.values():
            p.stop(5)
        ensemble.stop()

    def med(xs: list[float]) -> float:
        return statistics.median(xs)

    print(f"trials: {args.trials}   configured session timeout: {SESSION_TIMEOUT:.1f} s")
    print(
        f"(a) graceful handover    median {med(handover) * 1000:7.0f} ms   "
        f"max {max(handover) * 1000:6.0f} ms   goal < 1000 ms   "
        f"ratio to goal {med(handover) / 1.0:.2f}"
    )
    print(
        f"(b) SIGKILL failover     median {med(killed) * 1000:7.0f} ms   "
        f"max {max(killed) * 1000:6.0f} ms   goal < {(SESSION_TIMEOUT + 2) * 1000:.0f} ms   "
        f"ratio to session timeout {med(killed) / SESSION_TIMEOUT:.2f}"
    )
    print(
        f"(c) run -> live          median {med(startup) * 1000:7.0f} ms   "
        f"baseline (python+kazoo ephemeral) median {med(baseline) * 1000:6.0f} ms   "
        f"ratio {med(startup) / med(baseline):.2f}   goal < 1000 ms"
    )


if __name__ == "__main__":
    main()
