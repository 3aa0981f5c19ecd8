"""Test kit for signed releases: the vendor's `mission-control releases` CLI with a 2-of-3
root, publishing stand-in files or real wheels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from clusterkit import ZK_AUTH, ClusterUnderTest

from cluster import zk
from cluster.upgrade.plan import Plan


def vendor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mission_control.cli", "releases", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def wheel(tmp: Path, version: str, body: bytes = b"") -> Path:
    """A file standing for the project's wheel (installing real wheels is not tested here)."""
    path = tmp / f"managed_orchestrator-{version}-py3-none-any.whl"
    path.write_bytes(b"PK wheel of " + version.encode() + body)
    return path


class Vendor:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.repo = base / "repo"
        self.keys = [base / f"vendor-{i}.pem" for i in range(3)]
        base.mkdir(parents=True, exist_ok=True)
        for key in self.keys:
            r = vendor("keygen", str(key))
            assert r.returncode == 0, r.stderr
            assert key.stat().st_mode & 0o777 == 0o600
        r = vendor("init", "--repo", str(self.repo), *self._keys(3), "--threshold", "2")
        assert r.returncode == 0 and "threshold 2" in r.stdout, r.stderr

    def _keys(self, n: int) -> list[str]:
        return [a for k in self.keys[:n] for a in ("--key", str(k))]

    def publish(
        self, version: str, keys: int = 2, files: list[Path] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Publish `files` (a stand-in wheel when None) as release `version`."""
        dists = [str(f) for f in files or [wheel(self.base, version)]]
        return vendor(
            "publish", *dists, "--version", version, "--repo", str(self.repo), *self._keys(keys)
        )

    def bundle(self, version: str, files: list[Path] | None = None) -> Path:
        r = self.publish(version, files=files)
        assert r.returncode == 0, r.stderr
        return self.repo / "bundles" / f"managed-{version}.tar"


def stored_plan(c: ClusterUnderTest) -> Plan | None:
    """The cluster's rolling upgrade plan as stored in ZooKeeper, None when there is none."""
    client = zk.connect(c.hosts, auth=ZK_AUTH)
    try:
        got = client.find(c.paths.upgrade_plan)
    finally:
        zk.close(client)
    return Plan.from_bytes(got[0]) if got else None
