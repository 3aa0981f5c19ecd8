"""A real ZooKeeper ensemble on loopback, from the Debian package's jars, over TLS only.

Each server gets its own dataDir (0700: its transaction logs hold the cluster's secrets), myid
and ports, and runs as plain `java ... QuorumPeerMain zoo.cfg` (zkServer.sh loses the logs).
Clients reach it only on its TLS port (`secureClientPort`; there is no plain client port), and
the servers talk to each other over TLS too (`sslQuorum`, both ends authenticated), all with
certificates from one CA (`ZooKeeperTLS`). The ensemble is ready when every server's `srvr`
(asked over TLS) reports `Mode: leader` or `Mode: follower` (`ruok` answers even without quorum).

Debian's `zookeeper.jar` lists most of Netty on its class path but not `netty-codec` and
`netty-resolver`, without which the TLS port drops every connection: they are added here.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cluster.dev.processes import Process, free_port, start, wait_until
from cluster.zk import probe
from contract.certs import DEFAULT_HOSTS, write_dev_ca

CLASSPATH = ":".join(
    (
        "/usr/share/java/zookeeper.jar",
        "/usr/share/java/slf4j-log4j12.jar",
        "/usr/share/java/log4j-1.2.jar",
        # Not on zookeeper.jar's own class path; the TLS port needs them.
        "/usr/share/java/netty-codec.jar",
        "/usr/share/java/netty-resolver.jar",
    )
)
LOG4J = "/etc/zookeeper/conf/log4j.properties"


@dataclass(frozen=True)
class ZooKeeperTLS:
    """The certificates of an ensemble on loopback: the CA clients trust (`ca_cert`, what
    `--zk-ca` / `MANAGED_ZK_CA` name) and each server's key and certificate chain in one PEM
    file (`keystore`, 0600), valid for 127.0.0.1 and localhost."""

    ca_cert: Path
    keystore: Path

    @classmethod
    def create(
        cls, directory: Path, hosts: list[str] | None = None, *, overwrite: bool = True
    ) -> ZooKeeperTLS:
        """New material in `directory` (0700) for `hosts` (default: loopback), replacing what
        a previous run left there unless `overwrite` is false (FileExistsError then)."""
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        made = write_dev_ca(directory, hosts or DEFAULT_HOSTS, overwrite=overwrite)
        keystore = directory / "keystore.pem"
        fd = os.open(keystore, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(made.server_key.read_bytes() + made.server_cert.read_bytes())
        return cls(made.ca_cert, keystore)

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))


def mode(port: int, tls: ZooKeeperTLS, host: str = "127.0.0.1") -> str | None:
    """A server's mode, asked over TLS (`srvr`)."""
    return probe.mode(host, port, tls.client_context())


@dataclass
class ZkServer:
    myid: int
    client_port: int  # the TLS client port (`secureClientPort`)
    peer_port: int
    election_port: int
    base: Path
    tls: ZooKeeperTLS
    process: Process | None = None
    host: str = "127.0.0.1"  # where it listens (an address inside `netns`, if given)
    netns: str | None = None  # a network namespace to run in (`ip netns exec`)
    #: Where this process reaches the client port (a relay into the namespace): HOST, PORT.
    reach: tuple[str, int] | None = None

    @property
    def address(self) -> str:
        """HOST:PORT of the client port, as the cluster's nodes reach it."""
        return f"{self.host}:{self.client_port}"

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
        host, port = self.reach or (self.host, self.client_port)
        return mode(port, self.tls, host) in ("leader", "follower", "standalone")


#: How server `a` reaches server `b`'s quorum and election ports (HOST, PEER, ELECTION): the
#: default is `b`'s own; a delaying relay between sites gives another.
Route = Callable[[ZkServer, ZkServer], tuple[str, int, int]]


def direct(_a: ZkServer, b: ZkServer) -> tuple[str, int, int]:
    return b.host, b.peer_port, b.election_port


@dataclass
class Ensemble:
    """`size` servers under `base`. `start()` then `wait_ready()`; `stop()` always. Without
    `tls`, the ensemble makes certificates of its own under `base/tls`."""

    base: Path
    size: int = 3
    tick_time: int = 500
    pid_dir: Path | None = None
    tls: ZooKeeperTLS | None = None
    servers: list[ZkServer] = field(default_factory=list)
    route: Route = direct
    #: Ticks a follower waits for its leader: a server cut off from its quorum drops its
    #: clients after `sync_limit * tick_time` ms, which must stay below the nodes' session
    #: timeout so that a cut-off leader stops before the other side can take over.
    sync_limit: int = 4

    def __post_init__(self) -> None:
        if self.tls is None:
            self.tls = ZooKeeperTLS.create(self.base / "tls")
        if not self.servers:
            self.servers = [
                ZkServer(i, free_port(), free_port(), free_port(), self.base, self.tls)
                for i in range(1, self.size + 1)
            ]

    @property
    def ca_file(self) -> Path:
        """The CA a client trusts for this ensemble (`--zk-ca`, `MANAGED_ZK_CA`)."""
        assert self.tls is not None
        return self.tls.ca_cert

    @property
    def connect_string(self) -> str:
        return ",".join(s.address for s in self.servers)

    def _write_config(self, server: ZkServer) -> None:
        server.data_dir.mkdir(parents=True, exist_ok=True)
        server.data_dir.chmod(0o700)  # snapshots and transaction logs hold the secrets
        (server.data_dir / "myid").write_text(f"{server.myid}\n")
        tls = server.tls
        lines = [
            f"tickTime={self.tick_time}",
            "initLimit=10",
            f"syncLimit={self.sync_limit}",
            f"dataDir={server.data_dir}",
            # TLS only: a secure client port and no plain one; quorum and election over TLS.
            f"secureClientPort={server.client_port}",
            f"secureClientPortAddress={server.host}",
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
            f"ssl.keyStore.location={tls.keystore}",
            "ssl.keyStore.type=PEM",
            f"ssl.trustStore.location={tls.ca_cert}",
            "ssl.trustStore.type=PEM",
            # Clients prove who they are with the cluster's digest credential, not a certificate.
            "ssl.clientAuth=none",
            "sslQuorum=true",
            f"ssl.quorum.keyStore.location={tls.keystore}",
            "ssl.quorum.keyStore.type=PEM",
            f"ssl.quorum.trustStore.location={tls.ca_cert}",
            "ssl.quorum.trustStore.type=PEM",
            "admin.enableServer=false",
            "4lw.commands.whitelist=srvr,ruok,mntr",
            "autopurge.purgeInterval=1",
            # a single server keeps serving as standalone; an ensemble needs its quorum
            f"standaloneEnabled={'true' if self.size == 1 else 'false'}",
        ]
        if self.size > 1:
            for peer in self.servers:
                # A server binds its own entry: only the others' go through `route`.
                host, quorum, election = (direct if peer is server else self.route)(server, peer)
                lines.append(f"server.{peer.myid}={host}:{quorum}:{election}")
        server.config_path.write_text("\n".join(lines) + "\n")

    def start_server(self, server: ZkServer) -> None:
        self._write_config(server)
        argv = [
            *(["ip", "netns", "exec", server.netns] if server.netns else []),
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
                f"zk{s.myid} (port {s.client_port}): mode={mode(s.client_port, s.tls)}\n"
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
