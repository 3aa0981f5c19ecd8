"""Where the soak's ZooKeeper servers and nodes run: three sites in network namespaces, so the
nemesis can cut links for real (`netns_kit`), or all on loopback where the machine cannot.

Site `a` holds zk1, zk2, n1, n2 (and the sixth node), `b` zk3, zk4, n3, n4, `w` zk5 and n5.
Cutting one site takes a minority of ZooKeeper off the others (its processes live on and must
fence themselves); cutting `a` and `b` leaves no side with a majority (a majority outage).
Links to Mission Control and S3 are not cut: those stay on the host's loopback, and each site
reaches them through a relay started inside it that connects out on the host
(`cluster.dev.relay --netns /proc/PID/ns/net`), on the same ports, so every URL stays as it is.
The soak itself (observer, operator's CLI) reaches the servers through a relay into the hub.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from netns_kit import SiteNetwork, unavailable

from cluster.dev.processes import Process, free_port, start, wait_until
from cluster.dev.zookeeper import ZkServer, ZooKeeperTLS

SITES = ("a", "b", "w")
SITE_OF_SERVER = {1: "a", 2: "a", 3: "b", 4: "b", 5: "w"}
SITE_OF_NODE = {"n1": "a", "n2": "a", "n3": "b", "n4": "b", "n5": "w", "n6": "a"}
#: What a `cut` may isolate: one site (a minority) or `a` and `b` apart (no majority anywhere).
CUTS: tuple[tuple[str, ...], ...] = (("a",), ("b",), ("w",), ("a", "b"))


@dataclass
class Sites:
    base: Path
    pid_dir: Path
    net: SiteNetwork | None = None
    skipped: str | None = None  # why links cannot be cut here (None: they can)
    relays: list[Process] = field(default_factory=list)

    @classmethod
    def plan(cls, base: Path, pid_dir: Path) -> Sites:
        reason = unavailable()
        net = None if reason else SiteNetwork(list(SITES))
        return cls(base, pid_dir, net, reason)

    def tls(self, directory: Path) -> ZooKeeperTLS:
        hosts = ["127.0.0.1", "localhost"]
        if self.net is not None:
            hosts += [self.net.address(s) for s in SITES]
        return ZooKeeperTLS.create(directory, hosts)

    def servers(self, directory: Path, tls: ZooKeeperTLS) -> list[ZkServer]:
        found = []
        for myid, site in SITE_OF_SERVER.items():
            server = ZkServer(myid, free_port(), free_port(), free_port(), directory, tls)
            if self.net is not None:
                server.host, server.netns = self.net.address(site), self.net.ns(site)
                server.reach = ("127.0.0.1", free_port())
            found.append(server)
        return found

    def create(self, servers: list[ZkServer]) -> None:
        """The namespaces, and the soak's way in to the servers' client ports (before they
        start: `ready` probes through it)."""
        if self.net is None:
            return
        self.net.create()
        pairs = [f"127.0.0.1:{s.reach[1]}={s.address}" for s in servers if s.reach]
        self._relay(
            "hub", [sys.executable, "-m", "cluster.dev.relay", "--netns", self.net.hub, *pairs]
        )

    def reach_host(self, ports: list[int]) -> None:
        """In every site, the host's loopback services on `ports` (Mission Control's proxy,
        S3): nodes inside use the same URLs as outside."""
        if self.net is None:
            return
        pairs = [f"127.0.0.1:{p}=127.0.0.1:{p}" for p in ports]
        for site in SITES:
            argv = [*self.net.exec_prefix(site), sys.executable, "-m", "cluster.dev.relay"]
            self._relay(site, [*argv, "--netns", f"/proc/{os.getpid()}/ns/net", *pairs])

    def _relay(self, name: str, argv: list[str]) -> None:
        log = self.base / "logs" / f"relay-{name}.log"
        proc = start(f"relay-{name}", argv, log, pid_dir=self.pid_dir)
        self.relays.append(proc)
        if not wait_until(lambda: "relaying" in proc.log_tail(), 20):
            raise RuntimeError(f"relay {name} did not start: {proc.log_tail()}")

    def node_prefix(self, node: str) -> list[str]:
        return [] if self.net is None else self.net.exec_prefix(SITE_OF_NODE[node])

    def node_address(self, node: str) -> str:
        """A node's API address: on its site's link (so a cut cuts it too)."""
        host = "127.0.0.1" if self.net is None else self.net.address(SITE_OF_NODE[node])
        return f"{host}:{free_port()}"

    def cut(self, sites: tuple[str, ...]) -> None:
        assert self.net is not None
        for site in sites:
            self.net.cut(site)

    def heal(self, sites: tuple[str, ...]) -> None:
        assert self.net is not None
        for site in sites:
            self.net.heal(site)

    def leftovers(self) -> list[dict[str, Any]]:
        """Any process still running inside a site's or the hub's namespace."""
        found: list[dict[str, Any]] = []
        for ns in self.net.created if self.net is not None else []:
            done = subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=30
            )
            for pid in done.stdout.split():
                name = ns
                with contextlib.suppress(psutil.Error):
                    name = f"{ns}: " + " ".join(psutil.Process(int(pid)).cmdline())[:100]
                found.append({"pid": int(pid), "name": name})
        return found

    def destroy(self) -> None:
        if self.net is not None:
            self.net.destroy()
