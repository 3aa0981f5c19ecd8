"""The soak's real services: 5 ZooKeeper servers (TLS), 5 nodes, Mission Control on
PostgreSQL behind the recording proxy, and two S3 regions (moto_server, one per region).

Every process is started here, tracked by PID, and can be killed, paused and started again on
the same port (the nemesis does). `close` stops all of them by PID; `leftovers` names any
process still running that was started from this soak's state directory.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psutil
from soak_history import History
from soak_proxy import RecordingProxy
from soak_sites import Sites

from cluster import roster, zk
from cluster.dev.mcserver import MissionControlServer
from cluster.dev.processes import Process, free_port, start, wait_until
from cluster.dev.s3 import DevS3, create_bucket, moto_server_command
from cluster.dev.stack import S3_CREDENTIALS
from cluster.dev.zookeeper import Ensemble, ZkServer
from cluster.paths import ClusterPaths
from cluster.zk.client import CA_ENV

CLUSTER = "soak"
ZK_AUTH = "soak:soak-secret"
#: Node timing: loop_interval + 2 * retry_timeout <= session_timeout.
SESSION_TIMEOUT = 4.0
TIMING = {
    "MANAGED_SESSION_TIMEOUT": str(SESSION_TIMEOUT),
    "MANAGED_LOOP_INTERVAL": "1",
    "MANAGED_RETRY_TIMEOUT": "1.5",
}
REGIONS = ("eu-west-1", "eu-central-1")
PLANTED = "soak-planted.bin"
#: A znode of the cluster's tree the soak writes once, so the `zookeeper` part has bytes to match.
PLANTED_ZNODE = "soak-planted"


def planted_bytes(seed: int, part: str) -> bytes:
    """What the soak plants in backup part `part` (a node's data directory, as PLANTED, or
    `zookeeper`, as PLANTED_ZNODE) and a restore must bring back byte for byte (the rest of
    both changes all the time). The same seed and part always give the same bytes."""
    size = 16 * 1024 if part == "zookeeper" else 256 * 1024
    return random.Random(f"{seed}-{part}").randbytes(size)


class PostgresMissionControl(MissionControlServer):
    """`MissionControlServer` on a PostgreSQL database instead of its SQLite file."""

    def __init__(self, base: Path, db: str, pid_dir: Path) -> None:
        super().__init__(base, pid_dir=pid_dir)
        self.db = db

    @property
    def db_url(self) -> str:
        return self.db


@dataclass
class S3Endpoint:
    region: str
    port: int
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


@dataclass
class SoakStack:
    base: Path
    history: History
    db_url: str
    seed: int
    ensemble: Ensemble | None = None
    mc: PostgresMissionControl | None = None
    proxy: RecordingProxy | None = None
    s3: dict[str, S3Endpoint] = field(default_factory=dict)
    nodes: dict[str, Process] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)
    staff_token: str = ""
    engineer_token: str = ""
    sites: Sites | None = None

    @property
    def pid_dir(self) -> Path:
        return self.base / "pids"

    @property
    def hosts(self) -> str:
        """The connect string for the soak itself (observer, operator's CLI): through the
        hub's relay where the servers run in namespaces."""
        assert self.ensemble is not None
        reach = [f"127.0.0.1:{s.reach[1]}" for s in self.ensemble.servers if s.reach]
        return ",".join(reach) or self.ensemble.connect_string

    @property
    def paths(self) -> ClusterPaths:
        return ClusterPaths(CLUSTER)

    @property
    def key_file(self) -> Path:
        return self.base / "backup-key.pem"

    def env(self, hosts: str | None = None) -> dict[str, str]:
        assert self.ensemble is not None
        return {
            "MANAGED_ZK": hosts or self.hosts,
            "MANAGED_CLUSTER": CLUSTER,
            "MANAGED_ZK_AUTH": ZK_AUTH,
            CA_ENV: str(self.ensemble.ca_file),
            **TIMING,
            **S3_CREDENTIALS,
        }

    # --- start ------------------------------------------------------------------------------

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.sites = Sites.plan(self.base, self.pid_dir)
        self.history.record("stack", "sites", "info", {"cut_skipped": self.sites.skipped})
        tls = self.sites.tls(self.base / "zk" / "tls")
        servers = self.sites.servers(self.base / "zk", tls)
        self.ensemble = Ensemble(
            self.base / "zk", size=5, pid_dir=self.pid_dir, tls=tls, servers=servers
        )
        self.sites.create(servers)
        self.ensemble.start()
        self.ensemble.wait_ready(120)
        os.environ[CA_ENV] = str(self.ensemble.ca_file)
        os.environ.update(S3_CREDENTIALS)
        for region in REGIONS:
            self.s3[region] = S3Endpoint(region, free_port())
            self.start_s3(region)
        self.mc = PostgresMissionControl(self.base / "mission-control", self.db_url, self.pid_dir)
        self.mc.start(120)
        assert self.mc.process is not None
        self.proxy = RecordingProxy(
            self.history,
            free_port(),
            self.mc.url,
            self.mc.base / "certs" / "server.pem",
            self.mc.base / "certs" / "server-key.pem",
            self.mc.ca_file,
        )
        self.proxy.start()
        self.sites.reach_host([self.proxy.port, *(e.port for e in self.s3.values())])
        client = zk.connect(self.hosts, auth=ZK_AUTH, timeout=20)
        try:
            for i in range(1, 6):
                self._join(client, f"n{i}")
            client.create(
                f"{self.paths.base}/{PLANTED_ZNODE}", planted_bytes(self.seed, "zookeeper")
            )
        finally:
            zk.close(client)
        self._enroll()
        self._configure_backups()
        for i in range(1, 6):
            self.start_node(f"n{i}")
        if not self.wait_leader(60):
            raise RuntimeError("no leader within 60 s:\n" + self.node_logs())

    def _join(self, client: zk.ZooKeeper, node: str) -> None:
        assert self.sites is not None
        address = self.sites.node_address(node)
        roster.join(client, self.paths, node, f"dc{int(node[1:]) % 2 + 1}", address)
        self.addresses[node] = address

    def _mc_cli(self, *args: str, stdin: str | None = None) -> str:
        assert self.mc is not None
        done = self.mc.cli(*args, stdin=stdin)
        if done.returncode != 0:
            raise RuntimeError(f"mission-control {' '.join(args[:2])}: {done.stderr.strip()}")
        return done.stdout.strip()

    def _enroll(self) -> None:
        assert self.mc is not None and self.proxy is not None
        token = self.mc.create_cluster(CLUSTER, "EU")
        year = time.gmtime().tm_year + 1
        self._mc_cli(
            "licenses", "set", CLUSTER, "--host-units", "500", "--expires", f"{year}-12-31"
        )
        password = f"Soak-{secrets.token_urlsafe(12)}-7"
        for user, role in (("soak-admin", "admin"), ("soak-engineer", "support-l2")):
            self._mc_cli("users", "add", user, "--role", role, stdin=f"{password}\n" * 2)
        self.staff_token = self._mc_cli("tokens", "create", "--user", "soak-admin")
        self.engineer_token = self._mc_cli("tokens", "create", "--user", "soak-engineer")
        done = self.cli(
            "mc",
            "enroll",
            self.proxy.url,
            token,
            "--ca-file",
            str(self.mc.ca_file),
            "--health-interval",
            "2",
            "--license-interval",
            "5",
            "--heartbeat-interval",
            "1",
            "--consumption-interval",
            "10",
        )
        if done.returncode != 0:
            raise RuntimeError(f"enroll failed: {done.stderr.strip()}")

    def _configure_backups(self) -> None:
        target = "s3://soak-{r}/backups?region={r}&endpoint={e}"
        steps = [
            ("backup", "keygen", str(self.key_file)),
            (
                "backup",
                "configure",
                "--geography",
                "EU",
                "--target",
                target.format(r=REGIONS[0], e=self.s3[REGIONS[0]].url),
                "--mirror",
                target.format(r=REGIONS[1], e=self.s3[REGIONS[1]].url),
                "--schedule",
                "off",
                "--keep-last",
                "100",
                "--part-timeout",
                "60",
            ),
        ]
        for argv in steps:
            done = self.cli(*argv, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(argv[:2])} failed: {done.stderr.strip()}")

    # --- processes ----------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`managed ARGS` against the soak cluster, as an operator runs it."""
        try:
            return subprocess.run(
                [sys.executable, "-m", "cluster", *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**os.environ, **self.env()},
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(e.cmd, 124, "", f"timed out after {timeout:g} s")

    def data_dir(self, node: str) -> Path:
        return self.base / "data" / node

    def start_node(self, node: str) -> None:
        assert self.sites is not None and self.ensemble is not None
        argv = [*self.sites.node_prefix(node), sys.executable, "-m", "cluster", "node", "run"]
        argv += [node, "--data-dir", str(self.data_dir(node))]
        self.nodes[node] = start(
            f"node-{node}",
            argv,
            self.base / "logs" / f"{node}.log",
            env=self.env(self.ensemble.connect_string),  # inside its site: the servers' own
            pid_dir=self.pid_dir,
        )
        self.history.record("stack", "spawn", "info", {"name": node, "pid": self.nodes[node].pid})
        planted = self.data_dir(node) / PLANTED
        if not planted.exists() and wait_until(
            lambda: (self.data_dir(node) / "node.json").exists(), 30
        ):
            # Bytes a restore must bring back exactly (the rest of a data directory changes).
            tmp = planted.with_suffix(".tmp")
            tmp.write_bytes(planted_bytes(self.seed, node))
            tmp.rename(planted)

    def start_s3(self, region: str) -> None:
        endpoint = self.s3[region]
        endpoint.process = start(
            f"s3-{region}",
            [moto_server_command(), "-H", "127.0.0.1", "-p", str(endpoint.port)],
            self.base / "logs" / f"s3-{region}.log",
            pid_dir=self.pid_dir,
        )
        if not wait_until(partial(_answers, f"{endpoint.url}/moto-api/"), 30, 0.1):
            raise RuntimeError(f"moto_server for {region} did not start")
        create_bucket(
            DevS3(region, endpoint.port, endpoint.process.pid, endpoint.process.popen),
            f"soak-{region}",
        )

    def start_zk(self, server: ZkServer) -> None:
        assert self.ensemble is not None
        self.ensemble.start_server(server)

    def restart_mc(self, kill: bool) -> None:
        assert self.mc is not None and self.mc.process is not None
        if kill:
            self.mc.process.kill()
        else:
            self.mc.process.stop(timeout=15)
        self.mc.start(120)

    def wait_leader(self, timeout: float) -> bool:
        def has_leader() -> bool:
            try:
                client = zk.connect(self.hosts, auth=ZK_AUTH, timeout=3)
            except Exception:
                return False
            try:
                return zk.read_snapshot(client, self.paths).leader is not None
            except Exception:
                return False
            finally:
                zk.close(client)

        return wait_until(has_leader, timeout, 0.5)

    def node_logs(self, lines: int = 15) -> str:
        return "\n".join(f"--- {n}\n{p.log_tail(lines)}" for n, p in self.nodes.items())

    # --- stop ---------------------------------------------------------------------------------

    def all_processes(self) -> list[Process]:
        found = list(self.nodes.values())
        if self.mc is not None and self.mc.process is not None:
            found.append(self.mc.process)
        found += [e.process for e in self.s3.values() if e.process is not None]
        if self.ensemble is not None:
            found += [s.process for s in self.ensemble.servers if s.process is not None]
        if self.sites is not None:
            found += self.sites.relays
        return found

    def close(self) -> None:
        for p in self.nodes.values():
            p.stop(timeout=10)
        if self.proxy is not None:
            self.proxy.stop()
        for p in self.all_processes():
            p.stop(timeout=10)

    def leftovers(self) -> list[dict[str, Any]]:
        """Processes still running that this soak started (by PID, or run from its state
        directory: a child a killed process left behind)."""
        alive = [{"pid": p.pid, "name": p.name} for p in self.all_processes() if p.alive()]
        mine = str(self.base)
        ancestors = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
        for proc in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error):
                cmdline = " ".join(proc.info["cmdline"] or [])
                known = any(a["pid"] == proc.pid for a in alive)
                if mine in cmdline and proc.pid not in ancestors and not known:
                    alive.append({"pid": proc.pid, "name": cmdline[:120]})
        if self.sites is not None:  # anything still inside a namespace the soak made
            known_pids = {a["pid"] for a in alive}
            alive += [a for a in self.sites.leftovers() if a["pid"] not in known_pids]
        return alive

    def kill_leftovers(self, found: list[dict[str, Any]]) -> None:
        for entry in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry["pid"]), signal.SIGKILL)

    def destroy_sites(self) -> None:
        """Remove the namespaces (after every process in them has stopped)."""
        if self.sites is not None:
            self.sites.destroy()
