"""A real ZooKeeper ensemble on loopback, from the Debian package's jars.

Each server gets its own dataDir, myid and ports, and runs as plain `java ... QuorumPeerMain
zoo.cfg` (zkServer.sh loses the logs). The ensemble is ready when every server's `srvr` reports
`Mode: leader` or `Mode: follower` (`ruok` answers even without quorum).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from cluster.dev.processes import Process, free_port, start, wait_until

CLASSPATH = ":".join(
    (
        "/usr/share/java/zookeeper.jar",
        "/usr/share/java/slf4j-log4j12.jar",
        "/usr/share/java/log4j-1.2.jar",
    )
)
LOG4J = "/etc/zookeeper/conf/log4j.properties"


def four_letter(port: int, word: str, timeout: float = 1.0) -> str:
    """Send a four-letter command; '' when the server does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while chunk := s.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


def mode(port: int) -> str | None:
    for line in four_letter(port, "srvr").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


@dataclass
class ZkServer:
    myid: int
    client_port: int
    peer_port: int
    election_port: int
    base: Path
    process: Process | None = None

    @property
    def data_dir(self) -> Path:
        return self.base / f"zk{self.myid}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "zoo.cfg"

    @property
    def log_path(self) -> Path:
        return self.base / "logs" / f"zk{self.myid}.log"

    def ready(self) -> bool:
        return mode(self.client_port) in ("leader", "follower", "standalone")


@dataclass
class Ensemble:
    """`size` servers under `base`. `start()` then `wait_ready()`; `stop()` always."""

    base: Path
    size: int = 3
    tick_time: int = 500
    pid_dir: Path | None = None
    servers: list[ZkServer] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.servers:
            self.servers = [
                ZkServer(i, free_port(), free_port(), free_port(), self.base)
                for i in range(1, self.size + 1)
            ]

    @property
    def connect_string(self) -> str:
        return ",".join(f"127.0.0.1:{s.client_port}" for s in self.servers)

    def _write_config(self, server: ZkServer) -> None:
        server.data_dir.mkdir(parents=True, exist_ok=True)
        (server.data_dir / "myid").write_text(f"{server.myid}\n")
        lines = [
            f"tickTime={self.tick_time}",
            "initLimit=10",
            "syncLimit=4",  # a server cut off from its quorum drops its clients within 2 s
            f"dataDir={server.data_dir}",
            f"clientPort={server.client_port}",
            "clientPortAddress=127.0.0.1",
            "admin.enableServer=false",
            "4lw.commands.whitelist=srvr,ruok,mntr",
            "autopurge.purgeInterval=1",
            # a single server keeps serving as standalone; an ensemble needs its quorum
            f"standaloneEnabled={'true' if self.size == 1 else 'false'}",
        ]
        if self.size > 1:
            lines += [
                f"server.{s.myid}=127.0.0.1:{s.peer_port}:{s.election_port}" for s in self.servers
            ]
        server.config_path.write_text("\n".join(lines) + "\n")

    def start_server(self, server: ZkServer) -> None:
        self._write_config(server)
        argv = [
            "java",
            "-Xmx128m",
            f"-Dlog4j.configuration=file:{LOG4J}",
            "-Dzookeeper.root.logger=INFO,CONSOLE",
            "-cp",
            CLASSPATH,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            str(server.config_path),
        ]
        server.process = start(f"zk{server.myid}", argv, server.log_path, pid_dir=self.pid_dir)

    def start(self) -> None:
        if not Path("/usr/share/java/zookeeper.jar").exists():
            raise RuntimeError(
                "ZooKeeper is not installed: run `make demo` or "
                "`apt-get install --no-install-recommends zookeeper`"
            )
        for server in self.servers:
            self.start_server(server)

    def wait_ready(self, timeout: float = 30.0, servers: list[ZkServer] | None = None) -> None:
        targets = servers if servers is not None else self.servers
        if not wait_until(lambda: all(s.ready() for s in targets), timeout, 0.1):
            details = "\n".join(
                f"zk{s.myid} (port {s.client_port}): mode={mode(s.client_port)}\n"
                + (s.process.log_tail(10) if s.process else "")
                for s in targets
            )
            raise RuntimeError(f"ZooKeeper ensemble not ready after {timeout:g}s:\n{details}")

    def kill(self, server: ZkServer) -> None:
        if server.process is not None:
            server.process.kill()

    def stop(self) -> None:
        for server in self.servers:
            if server.process is not None:
                server.process.stop(timeout=5)
