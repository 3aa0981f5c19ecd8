"""Test kit: run real `managed node run` processes against a real ensemble and watch them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster import zk
from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import Process, free_port, start, wait_until
from cluster.model import ClusterSnapshot
from cluster.paths import ClusterPaths

# Short sessions for tests; they satisfy loop_interval + 2 * retry_timeout <= session_timeout.
SESSION_TIMEOUT = 2.0
TIMING = {
    "MANAGED_SESSION_TIMEOUT": str(SESSION_TIMEOUT),
    "MANAGED_LOOP_INTERVAL": "0.5",
    "MANAGED_RETRY_TIMEOUT": "0.7",
}
INTER_SITE_DELAY = 0.05  # seconds each way on every link between two sites
# A round trip between sites costs 100 ms and a write four crossings: the product's default
# timings (docs/architecture.md, Settings), not the 2 s session of the loopback tests, whose
# 0.7 s bound on each ZooKeeper call a loaded test machine misses across such links.
WAN_TIMING = {
    "MANAGED_SESSION_TIMEOUT": "10",
    "MANAGED_LOOP_INTERVAL": "2",
    "MANAGED_RETRY_TIMEOUT": "4",
}
ZK_AUTH = "operators:test-secret"  # opens the test clusters' secrets


def managed(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run the `managed` CLI as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "cluster", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def http_get(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = r.read()
            return r.status, json.loads(body) if body[:1] in (b"{", b"[") else body.decode()
    except urllib.error.HTTPError as e:
        body = e.read()
        return e.code, json.loads(body) if body[:1] in (b"{", b"[") else body.decode()
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None


@dataclass
class ClusterUnderTest:
    """One cluster (unique name) on a shared or private ensemble, with its node processes."""

    hosts: str
    name: str
    base: Path
    processes: dict[str, Process] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)

    @property
    def paths(self) -> ClusterPaths:
        return ClusterPaths(self.name)

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return managed(
            "--zk",
            self.hosts,
            "--cluster",
            self.name,
            "--zk-auth",
            ZK_AUTH,
            *args,
            timeout=timeout,
        )

    def join(self, node: str, datacenter: str = "dc1") -> None:
        address = f"127.0.0.1:{free_port()}"
        r = self.cli("node", "join", node, "--datacenter", datacenter, "--api-address", address)
        assert r.returncode == 0, r.stderr
        self.addresses[node] = address

    def run(
        self,
        node: str,
        data_dir: Path | None = None,
        key: str | None = None,
        hosts: str = "",
        timing: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> Process:
        """Start `managed node run NODE`; `key` names the process if one node runs twice;
        `hosts`, the node's own connect string if not the cluster's; `timing`, settings in
        place of `TIMING`; `env` adds settings (`MANAGED_*`)."""
        key = key or node
        argv = [
            sys.executable,
            "-m",
            "cluster",
            "--zk",
            hosts or self.hosts,
            "--cluster",
            self.name,
            "node",
            "run",
            node,
            "--data-dir",
            str(data_dir or self.base / "data" / node),
        ]
        env = {**(timing or TIMING), "MANAGED_ZK_AUTH": ZK_AUTH, **(env or {})}
        proc = start(key, argv, self.base / "logs" / f"{key}.log", env=env)
        self.processes[key] = proc
        return proc

    def start_nodes(self, count: int = 3, timing: dict[str, str] | None = None) -> list[str]:
        nodes = [f"n{i}" for i in range(1, count + 1)]
        for n in nodes:
            self.join(n, datacenter=f"dc{(int(n[1:]) - 1) % 2 + 1}")
        for n in nodes:
            self.run(n, timing=timing)
        assert self.wait(lambda s: s.leader is not None and len(s.live) == count, 20), self.logs()
        # A node registers live before its API is up (fast live registration); tests that
        # talk to the API right away need it serving.
        assert wait_until(lambda: all(self.status(n)[0] == 200 for n in nodes), 20), self.logs()
        return nodes

    def enroll(
        self, mc: MissionControlServer, heartbeat: str = "0.5", consumption: str | None = None
    ) -> None:
        """Create this cluster at Mission Control with a license; enroll it (short intervals;
        `consumption` seconds between consumption checks, the default if None)."""
        token = mc.create_cluster(self.name)
        r = mc.cli("licenses", "set", self.name, "--host-units", "500", "--expires", "2031-01-01")
        assert r.returncode == 0, r.stderr
        r = self.cli(
            "mc",
            "enroll",
            mc.url,
            token,
            "--ca-file",
            str(mc.ca_file),
            "--health-interval",
            "0.5",
            "--license-interval",
            "1",
            "--heartbeat-interval",
            heartbeat,
            *(["--consumption-interval", consumption] if consumption else []),
        )
        assert r.returncode == 0 and "enrolled" in r.stdout, r.stderr

    def snapshot(self) -> ClusterSnapshot:
        client = zk.connect(self.hosts, auth=ZK_AUTH)
        try:
            return zk.read_snapshot(client, self.paths)
        finally:
            zk.close(client)

    def wait(
        self, check: Callable[[ClusterSnapshot], bool], timeout: float, interval: float = 0.02
    ) -> bool:
        client = zk.connect(self.hosts, auth=ZK_AUTH)
        try:
            return wait_until(
                lambda: check(zk.read_snapshot(client, self.paths)), timeout, interval
            )
        finally:
            zk.close(client)

    def health_summary(self) -> dict[str, Any]:
        client = zk.connect(self.hosts, auth=ZK_AUTH)
        try:
            data, _ = client.get(self.paths.health)
        finally:
            zk.close(client)
        return dict(json.loads(data or b"{}"))

    def status(self, node: str) -> tuple[int, Any]:
        return http_get(f"http://{self.addresses[node]}/status")

    def api(self, node: str, path: str) -> tuple[int, Any]:
        return http_get(f"http://{self.addresses[node]}{path}")

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{p.log_tail(20)}" for n, p in self.processes.items())

    def stop(self) -> None:
        for p in self.processes.values():
            p.stop(timeout=10)


def elapsed(f: Callable[[], bool], timeout: float) -> float | None:
    t0 = time.monotonic()
    return time.monotonic() - t0 if wait_until(f, timeout, 0.01) else None
