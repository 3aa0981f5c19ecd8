"""Data-center loss against a single node's loss, on a real 2+2+1 ZooKeeper ensemble (two data
centers and a witness, declared) with 4 real node processes (two a data center).

Measures, over TRIALS each, in the same run (so the machine's load weighs on both alike):
  (a) single leader SIGKILL: the leader's process killed -> another node is acting (holds the
      lock and has written the health summary with the new epoch), as benchmarks/failover.py;
  (b) data-center loss: every node *and* both ZooKeeper servers of the leader's data center
      SIGKILLed at once -> a node of the other data center is acting;
both next to the configured session timeout. Goal: (b) costs at most 1 s more than (a).
Between trials the killed processes are restarted and the cluster is whole again.

With `--delay S`, every link between two sites holds each chunk back S seconds each way (a
relay, `cluster.dev.relay`; this kernel has no netem), and the nodes run with the product's
default timings (10 s session), as tests/cluster/test_datacenters.py does.

Usage: python benchmarks/datacenter.py [--trials N] [--delay 0.05]   (N >= 5, default 5)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from failover import TIMING, ZK_AUTH, acting, node_argv

from cluster import roster, zk
from cluster.dev.processes import Process, free_port, start, wait_until
from cluster.dev.sites import DelayedLinks, layout, site_layout
from cluster.dev.zookeeper import Ensemble, direct
from cluster.errors import ZooKeeperUnavailable
from cluster.paths import ClusterPaths
from cluster.topology_store import write_topology
from cluster.zk.client import CA_ENV
from cluster.zk.errors import ZooKeeperError
from contract.audit.events import Actor, ActorKind

SITE_OF_NODE = {"n1": "dc1", "n2": "dc1", "n3": "dc2", "n4": "dc2"}
WAN_TIMING = {
    "MANAGED_ZK_AUTH": ZK_AUTH,
    "MANAGED_SESSION_TIMEOUT": "10",
    "MANAGED_LOOP_INTERVAL": "2",
    "MANAGED_RETRY_TIMEOUT": "4",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5, help="trials per figure (at least 5)")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds each way between sites")
    args = ap.parse_args()
    if args.trials < 5:
        ap.error("--trials must be at least 5: the figures are medians over 5 or more trials")
    base = Path(tempfile.mkdtemp(prefix="datacenter-bench-"))
    links = DelayedLinks(site_layout(5, witness=True))
    ensemble = Ensemble(base / "zk", size=5, route=links.route if args.delay else direct)
    timing = WAN_TIMING if args.delay else TIMING
    session_timeout = float(timing["MANAGED_SESSION_TIMEOUT"])
    procs: dict[str, Process] = {}
    single: list[float] = []
    lost: list[float] = []
    try:
        ensemble.start()
        if args.delay:
            for site in ("dc1", "dc2"):
                links.connect_string(site, ensemble.servers)
            argv = [sys.executable, "-m", "cluster.dev.relay", "--delay", str(args.delay)]
            procs["relay"] = start("relay", argv + links.pairs(ensemble.servers), base / "r.log")
        ensemble.wait_ready(90)
        os.environ[CA_ENV] = str(ensemble.ca_file)  # the nodes inherit it
        hosts = ensemble.connect_string
        cluster = "bench"
        paths = ClusterPaths(cluster)
        client = zk.connect(hosts, auth=ZK_AUTH, timeout=30)
        servers = [s.address for s in ensemble.servers]
        write_topology(client, paths, layout(servers, 2, True), Actor("bench", ActorKind.OPERATOR))
        site_servers = {
            site.name: [s for s in ensemble.servers if s.address in site.zookeeper]
            for site in layout(servers, 2, True).sites
        }
        for n, site in SITE_OF_NODE.items():
            roster.join(client, paths, n, site, f"127.0.0.1:{free_port()}")

        def own_hosts(n: str) -> str:
            return links.connect_string(SITE_OF_NODE[n], ensemble.servers) if args.delay else hosts

        def launch(n: str) -> None:
            argv = node_argv(own_hosts(n), cluster, n, base)
            procs[n] = start(n, argv, base / f"{n}.log", env=timing)

        def safe_acting(old: str | None) -> str | None:
            try:
                return acting(client, paths, old)
            except (ZooKeeperError, ZooKeeperUnavailable):
                return None

        def whole() -> None:
            """Every node live again (after the killed sessions expired) and one acting."""
            assert wait_until(lambda: len(zk.read_snapshot(client, paths).live) == 4, 120, 0.05), (
                "the cluster did not become whole"
            )
            assert wait_until(lambda: safe_acting(None) is not None, 60)

        for n in SITE_OF_NODE:
            launch(n)
        whole()
        for _ in range(args.trials):
            # (a) the leader's process alone
            old = safe_acting(None)
            assert old is not None
            epoch = zk.read_snapshot(client, paths).epoch.value
            t0 = time.monotonic()
            procs[old].kill()
            assert wait_until(
                lambda o=old, e=epoch: (
                    safe_acting(o) is not None and zk.read_snapshot(client, paths).epoch.value > e
                ),
                60,
                0.005,
            )
            single.append(time.monotonic() - t0)
            wait_until(lambda o=old: zk.read_snapshot(client, paths).live_member(o) is None, 60)
            launch(old)
            whole()

            # (b) the leader's whole data center: its nodes and its ZooKeeper servers
            old = safe_acting(None)
            assert old is not None
            site = SITE_OF_NODE[old]
            epoch = zk.read_snapshot(client, paths).epoch.value
            t0 = time.monotonic()
            for n, s in SITE_OF_NODE.items():
                if s == site:
                    procs[n].kill()
            for server in site_servers[site]:
                ensemble.kill(server)
            assert wait_until(
                lambda s=site, e=epoch: (
                    SITE_OF_NODE.get(safe_acting(None) or "", s) != s
                    and zk.read_snapshot(client, paths).epoch.value > e
                ),
                60,
                0.005,
            )
            lost.append(time.monotonic() - t0)
            for server in site_servers[site]:
                ensemble.start_server(server)
            ensemble.wait_ready(90)
            for n, s in SITE_OF_NODE.items():
                if s == site:
                    wait_until(
                        lambda n=n: zk.read_snapshot(client, paths).live_member(n) is None, 60
                    )
                    launch(n)
            whole()
        zk.close(client)
    finally:
        for p in procs.values():
            p.stop(5)
        ensemble.stop()

    med_single, med_lost = statistics.median(single), statistics.median(lost)
    print(
        f"trials: {args.trials}   delay between sites: {args.delay * 1000:.0f} ms each way   "
        f"configured session timeout: {session_timeout:.1f} s"
    )
    print(
        f"(a) leader SIGKILL        median {med_single * 1000:7.0f} ms   "
        f"max {max(single) * 1000:6.0f} ms   ratio to session timeout "
        f"{med_single / session_timeout:.2f}"
    )
    print(
        f"(b) data center lost      median {med_lost * 1000:7.0f} ms   "
        f"max {max(lost) * 1000:6.0f} ms   ratio to session timeout "
        f"{med_lost / session_timeout:.2f}"
    )
    extra = med_lost - med_single
    verdict = "met" if extra <= 1 else "MISSED"
    print(
        f"data-center loss costs {extra * 1000:+.0f} ms over a single leader's loss "
        f"(ratio {med_lost / med_single:.2f}); goal <= +1000 ms: {verdict}"
    )


if __name__ == "__main__":
    main()
