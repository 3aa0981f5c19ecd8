"""A real `mission-control serve` process over HTTPS with a throwaway dev CA, on loopback."""

from __future__ import annotations

import ssl
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cluster.dev.processes import Process, free_port, start, wait_until


@dataclass
class MissionControlServer:
    base: Path
    port: int = field(default_factory=free_port)
    pid_dir: Path | None = None
    process: Process | None = None
    access_log: bool = False  # every request on record in the log (tests count deliveries)
    releases_repo: Path | None = None  # the release repository it serves to clusters

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.base / 'mc.db'}"

    @property
    def ca_file(self) -> Path:
        return self.base / "certs" / "ca.pem"

    def _certs(self) -> None:
        from contract.certs import write_dev_ca

        certs = self.base / "certs"
        if not self.ca_file.exists():
            certs.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_dev_ca(certs, ["127.0.0.1", "localhost"])

    def cli(
        self, *args: str, timeout: float = 60, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `mission-control ARGS --db URL` against this server's database."""
        return subprocess.run(
            [sys.executable, "-m", "mission_control.cli", *args, "--db", self.db_url],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin if stdin is not None else "",
        )

    def start(self, timeout: float = 60) -> None:
        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._certs()
        # No separate `db upgrade`: `serve` migrates before it answers (its default).
        certs = self.base / "certs"
        argv = [
            sys.executable,
            "-m",
            "mission_control.cli",
            "serve",
            "--db",
            self.db_url,
            "--listen",
            f"127.0.0.1:{self.port}",
            "--tls-cert",
            str(certs / "server.pem"),
            "--tls-key",
            str(certs / "server-key.pem"),
            *(["--access-log"] if self.access_log else []),
            *(["--releases-repo", str(self.releases_repo)] if self.releases_repo else []),
        ]
        self.process = start("mission-control", argv, self.log_path, pid_dir=self.pid_dir)
        context = ssl.create_default_context(cafile=str(self.ca_file))

        def answers() -> bool:
            try:
                with urllib.request.urlopen(
                    f"{self.url}/api/v1/openapi.json", timeout=2, context=context
                ):
                    return True
            except OSError:
                return False

        if not wait_until(answers, timeout, 0.1):
            tail = self.process.log_tail(20)
            self.process.stop()
            raise RuntimeError(f"Mission Control did not answer within {timeout:g}s:\n{tail}")

    def create_cluster(self, name: str, geography: str = "EU") -> str:
        """Create a cluster record; returns its one-time enrollment token."""
        r = self.cli("clusters", "create", name, "--geography", geography)
        if r.returncode != 0:
            raise RuntimeError(f"clusters create failed: {r.stderr.strip()}")
        return r.stdout.strip()

    @property
    def log_path(self) -> Path:
        return self.base / "mission-control.log"

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=15)
