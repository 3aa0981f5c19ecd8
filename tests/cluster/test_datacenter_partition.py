"""A data center cut off with both sides alive: a real partition, not a kill.

dc1 (zk1, zk2, n1, n2), dc2 (zk3, zk4, n3, n4) and the witness (zk5) each run in a network
namespace of their own, joined through a bridge in a hub namespace (`netns_kit`); the test
watches from outside through relays (`cluster.dev.relay`): ZooKeeper's client ports through the
hub, each data center's node APIs from inside that data center, so it still sees dc1 while dc1
is cut off. dc1 holds the leader; its link is taken off the bridge; then put back.

Twice: with the sites' links as fast as the machine's, and with 50 ms held back each way on
every crossing between two sites (`netem` on each site's link where the kernel has it, else a
delaying relay inside each site that every connection to another site's server goes through:
the servers' quorum and election, the nodes' ZooKeeper sessions; nodes do not talk to each
other). The cut is the same real cut either way: the relays are inside the sites, so the link
taken off the bridge carries their traffic too.

Skipped, with the reason, where the machine cannot create namespaces.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clusterkit import (
    INTER_SITE_DELAY,
    SESSION_TIMEOUT,
    TIMING,
    WAN_TIMING,
    ZK_AUTH,
    http_get,
    managed,
)
from mc_exchange_kit import received, rows
from netns_kit import SUBNET, SiteNetwork, unavailable

from cluster import roster, zk
from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import Process, free_port, start, wait_until
from cluster.dev.sites import DelayedLinks, layout
from cluster.dev.zookeeper import Ensemble, Route, ZkServer, ZooKeeperTLS, direct
from cluster.errors import ZooKeeperUnavailable
from cluster.paths import ClusterPaths
from cluster.topology_store import write_topology
from cluster.zk.errors import ZooKeeperError
from contract.audit.events import Actor, ActorKind

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(reason := unavailable()), reason=reason or ""),
]

SITES = ["dc1", "dc2", "witness"]
NODES = {"n1": "dc1", "n2": "dc1", "n3": "dc2", "n4": "dc2"}
SURVIVORS = ("dc2", "witness")
SITE_OF_SERVER = {1: "dc1", 2: "dc1", 3: "dc2", 4: "dc2", 5: "witness"}
# A delivery whose bytes had passed the hub before the cut may be stored just after it.
IN_FLIGHT = 0.5


@dataclass(frozen=True)
class Links:
    """The links between sites in one variant: the delay each way across them, and the timings
    that suit it (docs/architecture.md, "What the timings must satisfy")."""

    delay: float  # seconds each way on every crossing between two sites
    timing: dict[str, str]  # the nodes' MANAGED_* timings
    #: Ticks a ZooKeeper server waits for its quorum: it drops its clients after that, which
    #: must stay below the session timeout (the cut-off leader stops before dc2 may take over).
    sync_limit: int
    #: Seconds from the cut until a dc2 node acts (correctness bound, with slack for load).
    takeover_bound: float

    @property
    def session_timeout(self) -> float:
        return float(self.timing["MANAGED_SESSION_TIMEOUT"])

    #: Seconds beyond the session timeout allowed for the cut-off leader to stop, for load.
    fence_slack: float = 0.0

    @property
    def fence_bound(self) -> float:
        """The issue asks for the session timeout: the node stops leader work after two thirds
        of it without an answer from ZooKeeper. With 2 s: 1.0-2.0 s measured at load 10-15; at
        load 17-18 one run took 2.75 s, hence the slack on the short session. What must never
        fail is the order, asserted below: stopped before the other side acts."""
        return self.session_timeout + self.fence_slack


# Test timings: 1 s (2 ticks) for a server to drop its clients, against a 2 s session; the
# takeover bound as for a killed data center (test_datacenters.py).
DIRECT = Links(0.0, TIMING, sync_limit=2, takeover_bound=SESSION_TIMEOUT + 2 + 4, fence_slack=2)
# 100 ms a round trip between sites: the product's default timings (10 s session), as for the
# killed data center across such links (test_datacenters.py); 2 s for a server to drop its
# clients leaves the quorum room for a slow round trip on a loaded machine. Taking over needs
# both dc2 nodes live (the data-center rule), and a dc2 node whose session is on a dc1 server
# must first notice ZooKeeper's silence (two thirds of the session) and reconnect, each try on
# a server behind the cut costing kazoo's connect timeout (the session timeout); figures in
# docs/architecture.md. Bound: four sessions and 5 s for load.
ACROSS_50_MS = Links(INTER_SITE_DELAY, WAN_TIMING, sync_limit=4, takeover_bound=45)


@dataclass
class Partitioned:
    """The whole set-up: namespaces, ensemble, relays, nodes; `close` removes all of it."""

    base: Path
    net: SiteNetwork
    tls: ZooKeeperTLS
    links: Links
    ensemble: Ensemble | None = None
    zk_hosts: dict[str, str] = field(default_factory=dict)  # site -> its nodes' connect string
    delayed_by: str = "nothing"  # what holds back the traffic between sites
    relays: list[Process] = field(default_factory=list)
    nodes: dict[str, Process] = field(default_factory=dict)
    api: dict[str, str] = field(default_factory=dict)  # node -> relay HOST:PORT
    paths: ClusterPaths = field(default_factory=lambda: ClusterPaths("cut"))

    def hosts(self, sites: tuple[str, ...] = tuple(SITES)) -> str:
        """The connect string for this process to the servers of `sites`: their client ports
        through the hub's relay."""
        assert self.ensemble is not None
        return ",".join(
            f"127.0.0.1:{s.reach[1]}"
            for s in self.ensemble.servers
            if s.reach and SITE_OF_SERVER[s.myid] in sites
        )

    def connect(self, sites: tuple[str, ...] = tuple(SITES)) -> zk.ZooKeeper:
        """A session to the servers of `sites` (the survivors': it sees through the cut)."""
        hosts = self.hosts(sites)
        return zk.connect(hosts, auth=ZK_AUTH, ca_file=str(self.tls.ca_cert), timeout=5)

    def relay(self, netns: str, pairs: list[str], option: str = "--netns", *extra: str) -> None:
        """A relay listening here and reaching into `netns` (option "--listen-netns": the other
        way round; "": started inside `netns`, both ends there); `extra`: more options."""
        where = option and [option, netns]
        inside = [] if option else ["ip", "netns", "exec", netns]
        argv = [*inside, sys.executable, "-m", "cluster.dev.relay", *where, *extra, *pairs]
        name = f"relay-{netns}-{len(self.relays)}"
        proc = start(name, argv, self.base / "logs" / f"{name}.log")
        self.relays.append(proc)
        assert wait_until(lambda: "relaying" in proc.log_tail(), 20), proc.log_tail()

    def status(self, node: str) -> dict[str, Any]:
        code, body = http_get(f"http://{self.api[node]}/status", timeout=1)
        return body if code == 200 and isinstance(body, dict) else {}

    def close(self) -> None:
        for p in [*self.nodes.values(), *self.relays]:
            p.stop(timeout=5)
        if self.ensemble is not None:
            self.ensemble.stop()
        self.net.destroy()


@pytest.fixture(
    params=[pytest.param(DIRECT, id="direct"), pytest.param(ACROSS_50_MS, id="50ms-between-sites")]
)
def cut_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Partitioned]:
    net = SiteNetwork(SITES)
    hosts = ["127.0.0.1", "localhost", *(net.address(s) for s in SITES)]
    tls = ZooKeeperTLS.create(tmp_path / "tls", hosts)
    setup = Partitioned(tmp_path, net, tls, request.param)
    try:
        net.create()
        servers = []
        for myid, site in SITE_OF_SERVER.items():
            # Each server's ports are its own; it listens on its site's address.
            server = ZkServer(myid, 2281 + myid, 2880 + myid, 3880 + myid, tmp_path / "zk", tls)
            server.host, server.netns = net.address(site), net.ns(site)
            server.reach = ("127.0.0.1", free_port())
            servers.append(server)
        route = delay_between_sites(setup, servers)
        setup.ensemble = Ensemble(
            tmp_path / "zk",
            size=5,
            tls=tls,
            servers=servers,
            sync_limit=setup.links.sync_limit,
            route=route,
        )
        setup.relay(net.hub, [f"127.0.0.1:{s.reach[1]}={s.address}" for s in servers if s.reach])
        setup.ensemble.start()
        setup.ensemble.wait_ready(90)
        for site in ("dc1", "dc2"):
            mine = [n for n, dc in NODES.items() if dc == site]
            for n in mine:
                setup.api[n] = f"127.0.0.1:{free_port()}"
            pairs = [f"{setup.api[n]}={net.address(site)}:{8100 + int(n[1:])}" for n in mine]
            setup.relay(net.ns(site), pairs)
        yield setup
    finally:
        setup.close()


def delay_between_sites(setup: Partitioned, servers: list[ZkServer]) -> Route:
    """Hold back `setup.links.delay` on every crossing between two sites: with `netem` on each
    site's link where the kernel has it, else with a delaying relay inside each site that every
    connection to another site's server goes through. Sets each site's connect string for its
    nodes and what delays (`setup.delayed_by`); returns how the servers reach each other."""
    every = ",".join(s.address for s in servers)
    setup.zk_hosts = {site: every for site in set(NODES.values())}
    delay = setup.links.delay
    if not delay:
        return direct
    no_netem = setup.net.delay(SITES[0], delay)
    if no_netem is None:
        for site in SITES[1:]:
            if failed := setup.net.delay(site, delay):
                raise RuntimeError(failed)
        setup.delayed_by = "netem on each site's link"
        return direct
    links = DelayedLinks(SITE_OF_SERVER)
    for a in servers:  # every route asked for now, so that each relay knows all of its own
        for b in servers:
            links.route(a, b)
    setup.zk_hosts = {site: links.connect_string(site, servers) for site in setup.zk_hosts}
    # dc1's nodes get only the other sites' servers: the cut-off leader's session is then on a
    # server across the cut, the case kazoo never reports SUSPENDED for while the node keeps
    # asking (docs/architecture.md): the node's own bound on ZooKeeper's silence must stop it.
    # dc2's nodes get every server: one whose session is on a dc1 server must notice the same
    # silence and reconnect to its own side, or dc2 never takes over.
    outside_dc1 = [s for s in servers if SITE_OF_SERVER[s.myid] != "dc1"]
    setup.zk_hosts["dc1"] = links.connect_string("dc1", outside_dc1)
    setup.zk_hosts["dc2"] = links.connect_string("dc2", servers)
    # Reaching a server behind the cut waits on the client's own timeout, as on a real cut
    # (kazoo: its session timeout), not on the relay's.
    between_sites = ("--delay", str(delay), "--connect-timeout", "60")
    for site in SITES:
        setup.relay(setup.net.ns(site), links.pairs(servers, site), "", *between_sites)
    setup.delayed_by = f"a relay inside each site (no netem here: {no_netem})"
    return links.route


def reach_mission_control(setup: Partitioned, mc: MissionControlServer) -> None:
    """Make `mc` (on the host's loopback) answer at its own URL inside each data center, only
    through the hub: cutting a data center's link cuts it off from Mission Control too."""
    hub = f"{SUBNET}.254:4443"
    setup.relay(setup.net.hub, [f"{hub}=127.0.0.1:{mc.port}"], "--listen-netns")
    for site in ("dc1", "dc2"):
        setup.relay(setup.net.ns(site), [f"127.0.0.1:{mc.port}={hub}"], "")


def enroll(setup: Partitioned, mc: MissionControlServer) -> None:
    """Create the cluster at Mission Control with a license and enroll it (short intervals)."""
    token = mc.create_cluster(setup.paths.cluster)
    r = mc.cli(
        "licenses", "set", setup.paths.cluster, "--host-units", "500", "--expires", "2031-01-01"
    )
    assert r.returncode == 0, r.stderr
    r = managed(
        *("--zk", setup.hosts(), "--cluster", setup.paths.cluster, "--zk-auth", ZK_AUTH),
        *("mc", "enroll", mc.url, token, "--ca-file", str(mc.ca_file)),
        *("--health-interval", "0.5", "--license-interval", "1", "--heartbeat-interval", "0.5"),
        env={"MANAGED_ZK_CA": str(setup.tls.ca_cert)},
    )
    assert r.returncode == 0 and "enrolled" in r.stdout, r.stderr


def stored(mc: MissionControlServer) -> list[tuple[float, int, str]]:
    """(received at, epoch, kind) of every message Mission Control accepted and stored, in
    the order it received them."""
    found = rows(mc, "SELECT received_at, epoch, kind FROM messages ORDER BY received_at")
    return [(_seconds(at), int(epoch), kind) for at, epoch, kind in found]


def _seconds(at: str) -> float:
    when = datetime.fromisoformat(at)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def start_node(setup: Partitioned, node: str) -> None:
    site = NODES[node]
    assert setup.ensemble is not None
    argv = [
        *setup.net.exec_prefix(site),
        sys.executable,
        "-m",
        "cluster",
        "node",
        "run",
        node,
        "--data-dir",
        str(setup.base / "data" / node),
    ]
    env = {
        **setup.links.timing,
        "MANAGED_ZK": setup.zk_hosts[site],
        "MANAGED_CLUSTER": setup.paths.cluster,
        "MANAGED_ZK_AUTH": ZK_AUTH,
        "MANAGED_ZK_CA": str(setup.tls.ca_cert),
    }
    setup.nodes[node] = start(node, argv, setup.base / "logs" / f"{node}.log", env=env)


def logs(setup: Partitioned) -> str:
    procs = [*setup.nodes.values(), *setup.relays]
    return "\n".join(f"--- {p.name}\n{p.log_tail(15)}" for p in procs)


def diagnose(client: zk.ZooKeeper, setup: Partitioned) -> str:
    """What each side shows, for a failure's message."""
    seen: dict[str, Any] = {n: setup.status(n) for n in NODES}
    try:
        snap = zk.read_snapshot(client, setup.paths, timeout=2)
        data, _ = client.get(setup.paths.health)
        seen["zookeeper"] = (snap.leader, snap.epoch, sorted(snap.live_ids), data[:200])
    except (ZooKeeperError, ZooKeeperUnavailable) as e:
        seen["zookeeper"] = repr(e)
    return json.dumps(seen, indent=1, default=str) + "\n" + logs(setup)


def acting(client: zk.ZooKeeper, setup: Partitioned) -> tuple[str, int] | None:
    """(leader, epoch) once the leader has written the health summary with its epoch."""
    try:
        snap = zk.read_snapshot(client, setup.paths, timeout=2)
        data, _ = client.get(setup.paths.health)
    except (ZooKeeperError, ZooKeeperUnavailable):
        return None
    summary = json.loads(data or b"{}")
    if snap.leader is None or (summary.get("leader"), summary.get("epoch")) != (
        snap.leader.node,
        snap.epoch.value,
    ):
        return None
    return snap.leader.node, snap.epoch.value


class SummaryWatch:
    """Every (epoch, leader) the health summary shows, as ZooKeeper accepted it."""

    def __init__(self, setup: Partitioned) -> None:
        self.seen: list[tuple[int, str]] = []
        self._setup = setup
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        client: zk.ZooKeeper | None = None
        while not self._stop.is_set():
            try:
                client = client or self._setup.connect(SURVIVORS)
                data, _ = client.get(self._setup.paths.health)
                s = json.loads(data or b"{}")
                entry = (int(s.get("epoch", 0)), str(s.get("leader", "")))
                if not self.seen or self.seen[-1] != entry:
                    self.seen.append(entry)
            except (ZooKeeperError, ZooKeeperUnavailable):
                if client is not None:  # maybe on the cut-off side: another server next time
                    zk.close(client)
                client = None
            self._stop.wait(0.05)
        if client is not None:
            zk.close(client)

    def close(self) -> list[tuple[int, str]]:
        self._stop.set()
        self._thread.join(10)
        return self.seen


def test_a_cut_off_data_center_is_fenced_and_the_other_leads(
    cut_cluster: Partitioned, mc: MissionControlServer
) -> None:
    setup = cut_cluster
    assert setup.ensemble is not None
    client = setup.connect()
    survivors = setup.connect(SURVIVORS)  # watches dc2's side, which keeps ZooKeeper's quorum
    try:
        topology = layout([s.address for s in setup.ensemble.servers], 2, True)
        write_topology(client, setup.paths, topology, Actor("test", ActorKind.OPERATOR))
        reach_mission_control(setup, mc)
        enroll(setup, mc)
        for node, site in NODES.items():
            address = f"{setup.net.address(site)}:{8100 + int(node[1:])}"
            roster.join(client, setup.paths, node, site, address)
        for n in ("n1", "n2"):  # dc1 first: it takes the lead
            start_node(setup, n)
        assert wait_until(lambda: (acting(client, setup) or ("",))[0] in ("n1", "n2"), 30), logs(
            setup
        )
        for n in ("n3", "n4"):
            start_node(setup, n)
        assert wait_until(lambda: len(zk.read_snapshot(client, setup.paths).live) == 4, 30)
        assert wait_until(lambda: all(setup.status(n) for n in NODES), 20), logs(setup)
        got = acting(client, setup)
        assert got is not None
        old, old_epoch = got
        assert setup.status(old)["leader_work_active"] is True
        watch = SummaryWatch(setup)
        assert wait_until(lambda: bool(watch.seen), 10)
        has = lambda epoch: any(e == epoch for _, e, _ in stored(mc))  # noqa: E731
        assert wait_until(lambda: has(old_epoch), 30), logs(setup)

        cut_at = time.time()
        setup.net.cut("dc1")
        t0 = time.monotonic()
        # The side without ZooKeeper's quorum stops leader-only work (watched from inside dc1).
        assert wait_until(lambda: setup.status(old).get("leader_work_active") is False, 30)
        fenced = time.monotonic() - t0
        found: list[tuple[str, int]] = []

        def dc2_acting() -> bool:
            got = acting(survivors, setup)
            if got is None or NODES[got[0]] != "dc2" or got[1] <= old_epoch:
                return False
            found.append(got)
            return True

        assert wait_until(dc2_acting, setup.links.takeover_bound + 10, 0.05), diagnose(
            survivors, setup
        )
        took = time.monotonic() - t0
        new, new_epoch = found[-1]
        cut = datetime.fromtimestamp(cut_at, UTC).strftime("%H:%M:%S.%f")[:-3]
        links = setup.links
        print(f"{links.delay * 1000:g} ms each way between sites, by {setup.delayed_by};")
        print(f"session {links.session_timeout:g} s. dc1 cut off at {cut} UTC (to read against")
        print(f"the node logs): {old} stopped after {fenced:.2f} s,", end=" ")
        print(f"{new} acting after {took:.2f} s")
        assert fenced <= links.fence_bound, fenced
        assert took <= links.takeover_bound, took
        assert fenced < took  # never both sides at once
        # While cut off, dc1 still has its processes, and none of them acts.
        assert all(setup.nodes[n].alive() for n in NODES)
        assert not any(setup.status(n).get("leader_work_active") for n in ("n1", "n2"))

        setup.net.heal("dc1")
        assert wait_until(lambda: len(zk.read_snapshot(survivors, setup.paths).live) == 4, 40), (
            logs(setup)
        )
        roles = lambda: {n: setup.status(n).get("role") for n in NODES}  # noqa: E731
        assert wait_until(lambda: list(roles().values()).count("leader") == 1, 20), roles()
        assert wait_until(lambda: roles()[new] == "leader", 10), roles()
        assert acting(survivors, setup) == (new, new_epoch)
        healed_at = time.time()
        after_heal = lambda: any(at > healed_at + 1 for at, _, _ in stored(mc))  # noqa: E731
        assert wait_until(lambda: has(new_epoch) and after_heal(), 30), logs(setup)
    finally:
        zk.close(client)
        zk.close(survivors)
    seen = watch.close()
    # What ZooKeeper accepted: the old leader up to the cut, then only the new one.
    assert seen[0] == (old_epoch, old) and seen[-1] == (new_epoch, new), seen
    assert [e for e in seen if e != (old_epoch, old) and e != (new_epoch, new)] == [], seen
    assert seen.count((old_epoch, old)) == 1 and seen.count((new_epoch, new)) == 1, seen
    # What Mission Control accepted: never an older epoch after a newer one; after the cut only
    # the new leader's (its epoch) but for a delivery already past the hub when dc1 was cut.
    accepted = stored(mc)
    epochs = [e for _, e, _ in accepted]
    assert epochs == sorted(epochs), accepted
    late = [(at - cut_at, e, k) for at, e, k in accepted if at > cut_at and e != new_epoch]
    assert all(e == old_epoch and after <= IN_FLIGHT for after, e, _ in late), late
    assert rows(mc, "SELECT last_epoch FROM clusters")[0][0] == new_epoch
    # Anything else the old leader sent after the new epoch arrived was refused as stale (409).
    answers = Counter(status for _, status in received(mc))
    assert set(answers) <= {200, 409}, answers
    by_epoch = dict(Counter(epochs))
    print(f"Mission Control stored {by_epoch} by epoch, answered {dict(answers)}, late {late}")
