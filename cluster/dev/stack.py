"""`managed dev up`: a whole local stack on loopback, every process tracked by a PID file.

Layout of the state directory (0700; every file holding a secret is 0600): `pids/` (one JSON
PID file a process), `logs/`, `zk/` (the servers' data, and `zk/tls/`: the CA of ZooKeeper's TLS
port and the servers' keys), `nodes/` (each node's data directory), `mission-control/`, the
ZooKeeper credential and the backup key pair, and `stack.json` (where everything listens, with
the console user's password: 0600). Each `up` starts a fresh stack: the state a
stopped stack left there is removed first (its ports are gone, and its S3 endpoints kept
their objects in memory), and only those entries, in a directory a stack has marked as its own.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from cluster import roster, zk
from cluster.dev.processes import Process, free_port, start, stop_pidfiles, wait_until
from cluster.dev.sites import datacenter_name, ensemble_size, layout
from cluster.dev.zookeeper import Ensemble
from cluster.errors import ClusterError
from cluster.paths import ClusterPaths
from cluster.topology_store import write_topology
from cluster.zk.client import CA_ENV
from contract.audit.events import Actor, ActorKind

DEV_CLUSTER = "dev"
# Short sessions make failover quick to watch; they satisfy the loop/retry/session rule.
DEV_TIMING = {
    "MANAGED_SESSION_TIMEOUT": "4",
    "MANAGED_LOOP_INTERVAL": "1",
    "MANAGED_RETRY_TIMEOUT": "1.5",
}
# Stopped first to last: nodes hand leadership over while ZooKeeper is still there.
STOP_ORDER = ("node", "mission-control", "s3", "zk")


MARKER = ".managed-dev-stack"
STATE_ENTRIES = (
    "pids",
    "logs",
    "zk",
    "nodes",
    "mission-control",
    "stack.json",
    "zk-auth",
    "backup-key.pem",
    "backup-key.pem.pub",
    "backup-key.pem.signers",
)

# moto accepts any credentials; nodes and the CLI need some to sign S3 requests.
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "managed-dev", "AWS_SECRET_ACCESS_KEY": "managed-dev-secret"}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


class StackError(ClusterError):
    """The dev stack could not start or is in a state that needs the operator."""


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read (0600 from its first byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


@dataclass
class DevStack:
    state_dir: Path
    nodes: int = 3
    datacenters: int = 1  # 2 or more: declared data centers, two ZooKeeper servers each
    witness: bool = False  # one more ZooKeeper server, in a site of its own (no node)
    cluster: str = DEV_CLUSTER
    processes: list[Process] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def pid_dir(self) -> Path:
        return self.state_dir / "pids"

    def running(self) -> list[str]:
        return sorted(p.stem for p in self.pid_dir.glob("*.pid")) if self.pid_dir.exists() else []

    def up(self) -> dict[str, Any]:
        if self.running():
            raise StackError(
                f"a dev stack is already running in {self.state_dir}: run `managed dev down` first"
            )
        if not 1 <= self.nodes <= 9:
            raise StackError("--nodes must be between 1 and 9")
        if self.witness and self.datacenters < 2:
            raise StackError("--witness needs --datacenters 2 or more")
        self.clear_stopped()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        (self.state_dir / MARKER).touch()
        try:
            return self._up()
        except BaseException:
            self.down()
            raise

    def has_stopped_state(self) -> bool:
        """Whether a stopped stack left its state here (`stack.json` marks older ones)."""
        return not self.running() and any(
            (self.state_dir / name).exists() for name in (MARKER, "stack.json")
        )

    def clear_stopped(self) -> None:
        """Remove what a stopped stack left (only the stack's own entries)."""
        if not self.has_stopped_state():
            return
        for name in STATE_ENTRIES:
            path = self.state_dir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def _up(self) -> dict[str, Any]:
        declared = self.datacenters >= 2
        size = ensemble_size(self.datacenters, self.witness) if declared else 3
        ensemble = Ensemble(self.state_dir / "zk", size=size, pid_dir=self.pid_dir)
        ensemble.start()
        self.processes += [s.process for s in ensemble.servers if s.process]
        ensemble.wait_ready(60)
        hosts = ensemble.connect_string
        # Everything this process starts or runs reaches ZooKeeper over TLS with this CA.
        ca_file = str(ensemble.ca_file)
        os.environ[CA_ENV] = ca_file
        paths = ClusterPaths(self.cluster)
        auth = self._zk_auth()
        client = zk.connect(hosts, auth=auth)
        nodes: list[dict[str, Any]] = []
        topology = None
        try:
            if declared:
                servers = [f"127.0.0.1:{s.client_port}" for s in ensemble.servers]
                topology = layout(servers, self.datacenters, self.witness)
                write_topology(
                    client, paths, topology, Actor("dev", ActorKind.OPERATOR, via="managed dev up")
                )
            for i in range(1, self.nodes + 1):
                name = f"node{i}"
                address = f"127.0.0.1:{free_port()}"
                dc = datacenter_name((i - 1) % max(self.datacenters, 2))
                roster.join(client, paths, name, dc, address)
                nodes.append({"id": name, "api": f"http://{address}", "datacenter": dc})
        finally:
            zk.close(client)
        env = {
            "MANAGED_ZK": hosts,
            "MANAGED_CLUSTER": self.cluster,
            "MANAGED_ZK_AUTH": auth,
            CA_ENV: ca_file,
            **DEV_TIMING,
        }
        # Mission Control and the S3 endpoints do not need each other: set up side by side.
        with ThreadPoolExecutor(max_workers=2) as pool:
            mc_done = pool.submit(self._mission_control, hosts, auth)
            s3_done = pool.submit(self._s3_and_backups, hosts, auth)
            mc, s3 = mc_done.result(), s3_done.result()
        env.update(S3_CREDENTIALS)
        for n in nodes:
            data_dir = self.state_dir / "nodes" / n["id"]
            argv = [
                sys.executable,
                "-m",
                "cluster",
                "node",
                "run",
                n["id"],
                "--data-dir",
                str(data_dir),
            ]
            proc = start(
                f"node-{n['id']}",
                argv,
                self.state_dir / "logs" / f"{n['id']}.log",
                env=env,
                pid_dir=self.pid_dir,
            )
            self.processes.append(proc)
            n["data_dir"] = str(data_dir)
            n["log"] = str(proc.log_path)
        self.info = {
            "cluster": self.cluster,
            "zookeeper": hosts,
            "datacenters": topology.to_config() if topology else None,
            "nodes": nodes,
            "state_dir": str(self.state_dir),
            "zk_auth_file": str(self._auth_file),
            "zk_ca_file": ca_file,
            "mission_control": mc,
            "s3": s3,
        }
        self._wait_for_leader(hosts, paths, auth)
        write_private(self.state_dir / "stack.json", json.dumps(self.info, indent=2))
        return self.info

    @property
    def _auth_file(self) -> Path:
        return self.state_dir / "zk-auth"

    def _zk_auth(self) -> str:
        """A random ZooKeeper credential for this stack's secrets (kept in a 0600 file)."""
        if not self._auth_file.exists():
            write_private(self._auth_file, f"dev:{secrets.token_urlsafe(18)}")
        return self._auth_file.read_text().strip()

    def _mission_control(self, hosts: str, auth: str) -> dict[str, Any]:
        """Start Mission Control (SQLite, HTTPS with a dev CA) and enroll the dev cluster."""
        from cluster.dev.mcserver import MissionControlServer
        from cluster.link.enrollment import enroll

        server = MissionControlServer(self.state_dir / "mission-control", pid_dir=self.pid_dir)
        server.start()
        assert server.process is not None
        self.processes.append(server.process)
        password = f"Stack-{secrets.token_urlsafe(18)}-7"

        def cluster_with_license() -> str:
            token = server.create_cluster(self.cluster, "EU")
            year = time.gmtime().tm_year + 1
            server.cli(
                *("licenses", "set", self.cluster, "--host-units", "100"),
                *("--expires", f"{year}-12-31"),
            )
            return token

        def staff_user() -> tuple[str, str]:
            demo = server.cli("users", "add", "demo", "--role", "admin", stdin=f"{password}\n" * 2)
            staff = server.cli("tokens", "create", "--user", "demo")
            return demo.stdout.strip(), staff.stdout.strip()

        # Two independent chains of commands (each a Python start-up): side by side.
        with ThreadPoolExecutor(max_workers=2) as pool:
            cluster_done = pool.submit(cluster_with_license)
            staff_done = pool.submit(staff_user)
            token = cluster_done.result()
            totp_uri, staff_token = staff_done.result()
        client = zk.connect(hosts, auth=auth)
        try:
            enroll(
                client,
                ClusterPaths(self.cluster),
                auth,
                server.url,
                token,
                server.ca_file.read_text(),
                str(server.ca_file),
                {"health": 15, "license": 30, "consumption": 3600, "heartbeat": 5},
            )
        finally:
            zk.close(client)
        return {
            "url": server.url,
            "ca_file": str(server.ca_file),
            "db": server.db_url,
            "staff_token": staff_token,
            "staff_user": {"name": "demo", "password": password, "totp_uri": totp_uri},
            "log": str(server.process.log_path),
        }

    def _s3_and_backups(self, hosts: str, auth: str) -> dict[str, Any]:
        """Two S3 endpoints in the EU (moto_server, one per region) and hourly backups to
        eu-west-1 mirrored to eu-central-1, with a key pair kept in the state directory."""
        from cluster.dev.s3 import DevS3, create_bucket, moto_server_command

        os.environ.update(S3_CREDENTIALS)
        endpoints: dict[str, str] = {}
        for region in ("eu-west-1", "eu-central-1"):
            port = free_port()
            proc = start(
                f"s3-{region}",
                [moto_server_command(), "-H", "127.0.0.1", "-p", str(port)],
                self.state_dir / "logs" / f"s3-{region}.log",
                pid_dir=self.pid_dir,
            )
            self.processes.append(proc)
            url = f"http://127.0.0.1:{port}"
            if not wait_until(partial(_answers, f"{url}/moto-api/"), 30, 0.1):
                raise StackError(f"moto_server for {region} did not start:\n{proc.log_tail()}")
            create_bucket(DevS3(region, port, proc.pid, proc.popen), f"dev-{region}")
            endpoints[region] = url
        key = self.state_dir / "backup-key.pem"
        base = [
            sys.executable,
            "-m",
            "cluster",
            "--zk",
            hosts,
            "--cluster",
            self.cluster,
            "--zk-auth",
            auth,
            "backup",
        ]
        target = "s3://dev-{r}/backups?region={r}&endpoint={e}"
        steps = [
            [*base, "keygen", str(key)] if not key.exists() else None,
            [
                *base,
                "configure",
                "--geography",
                "EU",
                "--target",
                target.format(r="eu-west-1", e=endpoints["eu-west-1"]),
                "--mirror",
                target.format(r="eu-central-1", e=endpoints["eu-central-1"]),
                "--schedule",
                "0 * * * *",
                "--keep-last",
                "24",
                "--keep-daily",
                "7",
            ],
        ]
        for argv in steps:
            if argv is None:
                continue
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
            )
            if done.returncode != 0:
                raise StackError(f"{' '.join(argv[6:8])} failed: {done.stderr.strip()}")
        return {"endpoints": endpoints, "private_key": str(key)}

    def _wait_for_leader(self, hosts: str, paths: ClusterPaths, auth: str) -> None:
        client = zk.connect(hosts, auth=auth)
        try:
            ok = wait_until(lambda: zk.read_snapshot(client, paths).leader is not None, 30, 0.2)
        finally:
            zk.close(client)
        if not ok:
            tails = "\n".join(f"--- {p.name}\n{p.log_tail(8)}" for p in self.processes)
            raise StackError(f"no leader was elected within 30s:\n{tails}")

    def dead(self) -> list[Process]:
        return [p for p in self.processes if not p.alive()]

    def down(self) -> list[str]:
        """Stop everything this state directory's PID files name, nodes first."""
        stopped: list[str] = []
        if not self.pid_dir.exists():
            return stopped
        files = sorted(self.pid_dir.glob("*.pid"))
        for prefix in STOP_ORDER:  # each kind at once, the kinds in order
            group = [f for f in files if f.stem.startswith(prefix)]
            stopped += [f.stem for f in stop_pidfiles(group)]
        stop_pidfiles(list(self.pid_dir.glob("*.pid")))
        return stopped


def wait_forever(stack: DevStack) -> None:
    """Block until Ctrl-C, reporting processes that die meanwhile."""
    reported: set[str] = set()
    while True:
        time.sleep(1)
        for p in stack.dead():
            if p.name not in reported:
                reported.add(p.name)
                print(f"{p.name} exited ({p.popen.returncode}); log: {p.log_path}", file=sys.stderr)
