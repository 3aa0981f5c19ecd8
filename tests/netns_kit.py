"""Test kit: sites in network namespaces joined through a bridge, and cut apart for real.

Each site gets a namespace of its own with one veth link to a hub namespace, where a bridge
joins them; every address (link-local 169.254.77.x) lives only inside those namespaces. Cutting
a site takes its link off the bridge: its packets are dropped silently, as in a real partition
(no reset, no "link down"). Everything is created by the test and removed by `destroy`, also
after a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field

SUBNET = "169.254.77"


def run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


def unavailable() -> str | None:
    """Why this machine cannot run the namespace tests (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"m{uuid.uuid4().hex[:8]}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"`ip netns add` fails here: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@dataclass
class SiteNetwork:
    """Namespaces for `sites` (in order: addresses .1, .2, ...) and the hub (.254)."""

    sites: list[str]
    prefix: str = field(default_factory=lambda: f"m{uuid.uuid4().hex[:6]}")
    created: list[str] = field(default_factory=list)

    @property
    def hub(self) -> str:
        return f"{self.prefix}-hub"

    def ns(self, site: str) -> str:
        return f"{self.prefix}-{site}"

    def address(self, site: str) -> str:
        return f"{SUBNET}.{self.sites.index(site) + 1}"

    def _port(self, site: str) -> str:
        return f"h{self.sites.index(site)}"

    def create(self) -> None:
        run("ip", "netns", "add", self.hub)
        self.created.append(self.hub)
        hub = ("ip", "-n", self.hub)
        run(*hub, "link", "set", "lo", "up")
        run(*hub, "link", "add", "br0", "type", "bridge")
        run(*hub, "addr", "add", f"{SUBNET}.254/24", "dev", "br0")
        run(*hub, "link", "set", "br0", "up")
        for site in self.sites:
            ns = self.ns(site)
            run("ip", "netns", "add", ns)
            self.created.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run(
                *hub,
                "link",
                "add",
                self._port(site),
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns,
            )
            run(*hub, "link", "set", self._port(site), "master", "br0", "up")
            run("ip", "-n", ns, "addr", "add", f"{self.address(site)}/24", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")

    def cut(self, site: str) -> None:
        """Take the site's link off the bridge: its packets go nowhere."""
        run("ip", "-n", self.hub, "link", "set", self._port(site), "nomaster")

    def heal(self, site: str) -> None:
        run("ip", "-n", self.hub, "link", "set", self._port(site), "master", "br0")

    def delay(self, site: str, seconds: float) -> str | None:
        """Hold back every packet leaving `site` by `seconds` (`tc ... netem` on its link): each
        crossing between two sites then takes that much longer one way, while a site's own
        traffic (its loopback) does not. Returns why it cannot be done here (None: done)."""
        if shutil.which("tc") is None:
            return "the `tc` command (iproute2) is not installed"
        delay = f"{seconds * 1000:g}ms"
        argv = ["tc", "-n", self.ns(site), "qdisc", "add", "dev", "eth0", "root", "netem"]
        done = subprocess.run([*argv, "delay", delay], capture_output=True, text=True, timeout=30)
        return None if done.returncode == 0 else f"`tc ... netem`: {done.stderr.strip()}"

    def exec_prefix(self, site: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns(site)]

    def destroy(self) -> None:
        """Remove every namespace created (their links go with them)."""
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self.created.clear()
